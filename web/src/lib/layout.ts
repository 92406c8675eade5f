// Auto-layout with dagre: left-to-right layers, sized from what React Flow measured.

import dagre from "@dagrejs/dagre";
import type { FlowEdge, FlowNode } from "./types";

export const DEFAULT_NODE_WIDTH = 240;
export const DEFAULT_NODE_HEIGHT = 120;

export function autoLayout(
  nodes: readonly FlowNode[],
  edges: readonly FlowEdge[],
  options: { direction?: "LR" | "TB"; nodeGap?: number; rankGap?: number } = {},
): FlowNode[] {
  if (nodes.length === 0) return [];
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: options.direction ?? "LR", nodesep: options.nodeGap ?? 40, ranksep: options.rankGap ?? 80 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) {
    graph.setNode(node.id, { width: sizeOf(node).width, height: sizeOf(node).height });
  }
  for (const edge of edges) {
    if (graph.hasNode(edge.source) && graph.hasNode(edge.target)) graph.setEdge(edge.source, edge.target);
  }
  dagre.layout(graph);
  return nodes.map((node) => {
    const placed = graph.node(node.id) as { x: number; y: number } | undefined;
    if (!placed) return node;
    const { width, height } = sizeOf(node);
    // dagre gives centres; React Flow positions are top-left corners.
    return { ...node, position: { x: Math.round(placed.x - width / 2), y: Math.round(placed.y - height / 2) } };
  });
}

function sizeOf(node: FlowNode): { width: number; height: number } {
  return {
    width: node.measured?.width ?? node.width ?? DEFAULT_NODE_WIDTH,
    height: node.measured?.height ?? node.height ?? DEFAULT_NODE_HEIGHT,
  };
}
