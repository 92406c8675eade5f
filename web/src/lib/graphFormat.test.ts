import { describe, expect, it } from "vitest";
import type { Graph } from "../api/types";
import { edgeId, fromApiGraph, isLink, toApiGraph } from "./graphFormat";

const SAMPLE: Graph = {
  nodes: [
    { id: "prompt", type: "input.text", params: { name: "prompt", default: "a red fox" }, position: { x: 0, y: 0 } },
    {
      id: "gen",
      type: "generate.flux_2_pro",
      inputs: { prompt: { from: "prompt", output: "text" }, seed: 42 },
      params: { aspectRatio: "1:1" },
      position: { x: 300, y: 0 },
      label: "Hero image",
    },
    { id: "out", type: "output.image", inputs: { image: { from: "gen", output: "image" } }, params: { name: "image" }, position: { x: 600, y: 10 } },
  ],
};

describe("graph format", () => {
  it("recognises links and leaves literals alone", () => {
    expect(isLink({ from: "a", output: "b" })).toBe(true);
    expect(isLink({ from: "a" })).toBe(false);
    expect(isLink("text")).toBe(false);
    expect(isLink([1, 2])).toBe(false);
  });

  it("turns links into edges and literals into node literals", () => {
    const loaded = fromApiGraph(SAMPLE);
    expect(loaded.needsLayout).toBe(false);
    expect(loaded.nodes.map((node) => node.id)).toEqual(["prompt", "gen", "out"]);
    expect(loaded.edges).toEqual([
      expect.objectContaining({ source: "prompt", sourceHandle: "text", target: "gen", targetHandle: "prompt" }),
      expect.objectContaining({ source: "gen", sourceHandle: "image", target: "out", targetHandle: "image" }),
    ]);
    const gen = loaded.nodes[1];
    expect(gen.data).toEqual({ nodeType: "generate.flux_2_pro", label: "Hero image", params: { aspectRatio: "1:1" }, literals: { seed: 42 } });
    expect(gen.position).toEqual({ x: 300, y: 0 });
  });

  it("round-trips the API graph", () => {
    const loaded = fromApiGraph(SAMPLE);
    expect(toApiGraph(loaded.nodes, loaded.edges)).toEqual(SAMPLE);
  });

  it("asks for a layout when positions are missing and drops dangling links", () => {
    const loaded = fromApiGraph({
      nodes: [{ id: "a", type: "util.debug", inputs: { value: { from: "ghost", output: "x" } } }],
    });
    expect(loaded.needsLayout).toBe(true);
    expect(loaded.edges).toEqual([]);
    expect(fromApiGraph(undefined).nodes).toEqual([]);
  });

  it("omits empty inputs and labels, drops undefined params and rounds positions", () => {
    const loaded = fromApiGraph({ nodes: [{ id: "a", type: "util.debug", params: { x: 1 }, position: { x: 1.4, y: 2.6 } }] });
    loaded.nodes[0].data.params.y = undefined;
    expect(toApiGraph(loaded.nodes, [])).toEqual({
      nodes: [{ id: "a", type: "util.debug", params: { x: 1 }, position: { x: 1, y: 3 } }],
    });
  });

  it("names edges after both ends", () => {
    expect(edgeId({ source: "a", sourceHandle: "o", target: "b", targetHandle: "i" })).toBe("a:o->b:i");
  });
});
