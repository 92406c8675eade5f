import { describe, expect, it } from "vitest";
import { makeEdge } from "./graphFormat";
import { autoLayout } from "./layout";
import type { FlowNode } from "./types";

function node(id: string): FlowNode {
  return { id, type: "nodeloom", position: { x: 0, y: 0 }, data: { nodeType: "util.debug", label: "", params: {}, literals: {} } };
}

describe("auto-layout", () => {
  it("places each link's target to the right of its source", () => {
    const nodes = [node("c"), node("a"), node("b")];
    const edges = [
      makeEdge({ source: "a", sourceHandle: "value", target: "b", targetHandle: "value" }),
      makeEdge({ source: "b", sourceHandle: "value", target: "c", targetHandle: "value" }),
    ];
    const laid = Object.fromEntries(autoLayout(nodes, edges).map((n) => [n.id, n.position]));
    expect(laid.a.x).toBeLessThan(laid.b.x);
    expect(laid.b.x).toBeLessThan(laid.c.x);
  });

  it("keeps unlinked nodes from overlapping and handles an empty graph", () => {
    const laid = autoLayout([node("a"), node("b")], []);
    const [a, b] = laid.map((n) => n.position);
    expect(a.x !== b.x || Math.abs(a.y - b.y) >= 120).toBe(true);
    expect(autoLayout([], [])).toEqual([]);
  });
});
