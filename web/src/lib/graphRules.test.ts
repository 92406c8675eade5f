import { describe, expect, it } from "vitest";
import { CATALOG } from "../test/fixtures";
import { makeEdge } from "./graphFormat";
import { checkConnection, portType, reaches } from "./graphRules";
import type { Catalog, FlowNode } from "./types";

const catalog: Catalog = Object.fromEntries(CATALOG.map((def) => [def.type, def]));

function node(id: string, nodeType: string): FlowNode {
  return { id, type: "nodeloom", position: { x: 0, y: 0 }, data: { nodeType, label: "", params: {}, literals: {} } };
}

const nodes = [
  node("prompt", "input.text"),
  node("gen", "generate.flux_2_pro"),
  node("resize", "image.resize"),
  node("split", "image.split"),
  node("debug", "util.debug"),
  node("num", "input.integer"),
  node("mystery", "vendor.unknown"),
];

const check = (source: string, sourceHandle: string, target: string, targetHandle: string, edges = [] as ReturnType<typeof makeEdge>[]) =>
  checkConnection({ nodes, edges, catalog, connection: { source, sourceHandle, target, targetHandle } });

describe("checkConnection", () => {
  it("accepts matching types", () => {
    expect(check("prompt", "text", "gen", "prompt")).toMatchObject({ ok: true, edgeId: "prompt:text->gen:prompt", replaces: null });
  });

  it("refuses incompatible types with a reason", () => {
    const result = check("prompt", "text", "resize", "image");
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/text output cannot feed a image input/);
  });

  it("applies the any, integer→number and fan-out rules", () => {
    expect(check("prompt", "text", "debug", "value").ok).toBe(true);
    expect(check("debug", "value", "resize", "image").ok).toBe(true);
    expect(check("num", "value", "resize", "width").ok).toBe(true);
    expect(check("split", "tiles", "resize", "image").ok).toBe(true);
  });

  it("refuses unknown ports, unknown nodes and types, self links and cycles", () => {
    expect(check("prompt", "nope", "gen", "prompt")).toMatchObject({ ok: false });
    expect(check("prompt", "text", "gen", "nope")).toMatchObject({ ok: false });
    expect(check("ghost", "text", "gen", "prompt")).toMatchObject({ ok: false });
    expect(check("mystery", "x", "gen", "prompt")).toMatchObject({ ok: false });
    expect(check("resize", "image", "resize", "image")).toMatchObject({ ok: false });
    const edges = [makeEdge({ source: "resize", sourceHandle: "image", target: "split", targetHandle: "image" })];
    const cycle = check("split", "tiles", "resize", "image", edges);
    expect(!cycle.ok && cycle.reason).toMatch(/cycle/);
  });

  it("replaces the link already feeding an input and refuses an exact duplicate", () => {
    const edges = [makeEdge({ source: "gen", sourceHandle: "image", target: "resize", targetHandle: "image" })];
    expect(check("split", "tiles", "resize", "image", edges)).toMatchObject({ ok: true, replaces: "gen:image->resize:image" });
    expect(check("gen", "image", "resize", "image", edges)).toMatchObject({ ok: false });
  });
});

describe("graph helpers", () => {
  it("finds paths and port types", () => {
    const edges = [makeEdge({ source: "a", sourceHandle: "o", target: "b", targetHandle: "i" }), makeEdge({ source: "b", sourceHandle: "o", target: "c", targetHandle: "i" })];
    expect(reaches(edges, "a", "c")).toBe(true);
    expect(reaches(edges, "c", "a")).toBe(false);
    expect(portType({ catalog, node: nodes[1], direction: "output", name: "image" })).toBe("image");
    expect(portType({ catalog, node: nodes[1], direction: "input", name: "nope" })).toBeNull();
  });
});
