// Copy and paste of canvas selections: pure functions over nodes and edges.

import { copyId } from "./ids";
import { edgeId } from "./graphFormat";
import type { FlowEdge, FlowNode, XY } from "./types";

export interface ClipboardContent {
  nodes: FlowNode[];
  /** Only the edges between copied nodes. */
  edges: FlowEdge[];
}

export function copySelection(nodes: readonly FlowNode[], edges: readonly FlowEdge[], ids: ReadonlySet<string>): ClipboardContent | null {
  const copied = nodes.filter((node) => ids.has(node.id));
  if (copied.length === 0) return null;
  return {
    nodes: copied.map((node) => structuredClone(stripRuntime(node))),
    edges: edges.filter((edge) => ids.has(edge.source) && ids.has(edge.target)).map((edge) => ({ ...edge })),
  };
}

function stripRuntime(node: FlowNode): FlowNode {
  return { id: node.id, type: node.type, position: { ...node.position }, data: node.data };
}

/** New nodes and edges for a paste: fresh ids, shifted by `offset`, selected; links among them kept. */
export function pasteContent(content: ClipboardContent, takenIds: ReadonlySet<string>, offset: XY): ClipboardContent {
  const taken = new Set(takenIds);
  const renamed = new Map<string, string>();
  const nodes = content.nodes.map((node) => {
    const id = copyId(node.id, taken);
    taken.add(id);
    renamed.set(node.id, id);
    return {
      ...structuredClone(node),
      id,
      position: { x: node.position.x + offset.x, y: node.position.y + offset.y },
      selected: true,
    };
  });
  const edges = content.edges.map((edge) => {
    const source = renamed.get(edge.source)!;
    const target = renamed.get(edge.target)!;
    const link = { source, sourceHandle: edge.sourceHandle ?? "", target, targetHandle: edge.targetHandle ?? "" };
    return { ...edge, ...link, id: edgeId(link), selected: false };
  });
  return { nodes, edges };
}
