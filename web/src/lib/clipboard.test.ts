import { describe, expect, it } from "vitest";
import { copySelection, pasteContent } from "./clipboard";
import { makeEdge } from "./graphFormat";
import type { FlowNode } from "./types";

function node(id: string, x = 0): FlowNode {
  return { id, type: "nodeloom", position: { x, y: 0 }, selected: true, data: { nodeType: "util.debug", label: "", params: { p: [1] }, literals: {} } };
}

describe("clipboard", () => {
  const nodes = [node("a"), node("b", 100), node("c", 200)];
  const edges = [
    makeEdge({ source: "a", sourceHandle: "value", target: "b", targetHandle: "value" }),
    makeEdge({ source: "b", sourceHandle: "value", target: "c", targetHandle: "value" }),
  ];

  it("copies the chosen nodes and only the edges among them", () => {
    const content = copySelection(nodes, edges, new Set(["a", "b"]))!;
    expect(content.nodes.map((n) => n.id)).toEqual(["a", "b"]);
    expect(content.edges.map((e) => e.id)).toEqual(["a:value->b:value"]);
    expect(copySelection(nodes, edges, new Set())).toBeNull();
  });

  it("pastes with fresh ids, shifted, selected, links rewired, data deep-copied", () => {
    const content = copySelection(nodes, edges, new Set(["a", "b"]))!;
    const pasted = pasteContent(content, new Set(["a", "b", "c"]), { x: 40, y: 40 });
    expect(pasted.nodes.map((n) => n.id)).toEqual(["a_2", "b_2"]);
    expect(pasted.nodes[1].position).toEqual({ x: 140, y: 40 });
    expect(pasted.nodes.every((n) => n.selected)).toBe(true);
    expect(pasted.edges).toEqual([expect.objectContaining({ id: "a_2:value->b_2:value", source: "a_2", target: "b_2" })]);
    (pasted.nodes[0].data.params.p as number[]).push(2);
    expect(nodes[0].data.params.p).toEqual([1]);
  });
});
