// Conversion between the API's graph format and the canvas's nodes and edges.
// API: {nodes: [{id, type, params, inputs: {name: {from, output} | literal}, position, label}]}
// Canvas: one FlowNode per node; one edge per link (source=from, sourceHandle=output,
// target=node id, targetHandle=input name); literal inputs stay on the node as `literals`.

import type { Graph, GraphNode, Link } from "../api/types";
import type { FlowEdge, FlowNode } from "./types";

export function isLink(value: unknown): value is Link {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate.from === "string" && typeof candidate.output === "string";
}

export function edgeId(link: { source: string; sourceHandle: string; target: string; targetHandle: string }): string {
  return `${link.source}:${link.sourceHandle}->${link.target}:${link.targetHandle}`;
}

export function makeEdge(link: { source: string; sourceHandle: string; target: string; targetHandle: string }): FlowEdge {
  return {
    id: edgeId(link),
    source: link.source,
    sourceHandle: link.sourceHandle,
    target: link.target,
    targetHandle: link.targetHandle,
  };
}

function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) if (value !== undefined) out[key] = value;
  return out;
}

/** The canvas as the API graph, nodes in canvas order (validation paths index into this order). */
export function toApiGraph(nodes: readonly FlowNode[], edges: readonly FlowEdge[]): Graph {
  const linksByTarget = new Map<string, Record<string, Link>>();
  for (const edge of edges) {
    if (!edge.sourceHandle || !edge.targetHandle) continue;
    const links = linksByTarget.get(edge.target) ?? {};
    links[edge.targetHandle] = { from: edge.source, output: edge.sourceHandle };
    linksByTarget.set(edge.target, links);
  }
  return {
    nodes: nodes.map((node): GraphNode => {
      const inputs = { ...withoutUndefined(node.data.literals), ...(linksByTarget.get(node.id) ?? {}) };
      const apiNode: GraphNode = {
        id: node.id,
        type: node.data.nodeType,
        params: withoutUndefined(node.data.params),
      };
      if (Object.keys(inputs).length > 0) apiNode.inputs = inputs;
      apiNode.position = { x: Math.round(node.position.x), y: Math.round(node.position.y) };
      if (node.data.label) apiNode.label = node.data.label;
      return apiNode;
    }),
  };
}

export interface LoadedGraph {
  nodes: FlowNode[];
  edges: FlowEdge[];
  /** True when some node came without a position: the caller should lay the graph out. */
  needsLayout: boolean;
}

/** The API graph as canvas nodes and edges. Links to missing nodes are dropped (the server reports them). */
export function fromApiGraph(graph: Graph | null | undefined): LoadedGraph {
  const apiNodes = Array.isArray(graph?.nodes) ? graph.nodes : [];
  const ids = new Set(apiNodes.map((node) => node.id));
  let needsLayout = false;
  const nodes: FlowNode[] = [];
  const edges: FlowEdge[] = [];
  apiNodes.forEach((apiNode, index) => {
    const literals: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(apiNode.inputs ?? {})) {
      if (isLink(value)) {
        if (ids.has(value.from)) {
          edges.push(makeEdge({ source: value.from, sourceHandle: value.output, target: apiNode.id, targetHandle: name }));
        }
      } else {
        literals[name] = value;
      }
    }
    const position = apiNode.position;
    const hasPosition = !!position && Number.isFinite(position.x) && Number.isFinite(position.y);
    if (!hasPosition) needsLayout = true;
    nodes.push({
      id: apiNode.id,
      type: "nodeloom",
      position: hasPosition ? { x: position.x, y: position.y } : { x: index * 260, y: 0 },
      data: {
        nodeType: apiNode.type,
        label: apiNode.label ?? "",
        params: { ...(apiNode.params ?? {}) },
        literals,
      },
    });
  });
  return { nodes, edges, needsLayout };
}
