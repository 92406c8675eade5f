// Rules about which links the canvas accepts, and the ports each node shows.

import type { FieldSchema } from "../api/types";
import { edgeId } from "./graphFormat";
import { canFeed, incompatibilityReason, isForeign, listElement } from "./portTypes";
import type { Catalog, FlowEdge, FlowNode } from "./types";

export interface Connection {
  source: string;
  sourceHandle: string | null | undefined;
  target: string;
  targetHandle: string | null | undefined;
}

export type ConnectionCheck =
  | { ok: true; edgeId: string; /** the edge already feeding that input, which the new link replaces */ replaces: string | null }
  | { ok: false; reason: string };

function findPort(ports: readonly FieldSchema[] | undefined, name: string): FieldSchema | undefined {
  return ports?.find((port) => port.name === name);
}

/** Is there a path of edges from `from` to `to`? */
export function reaches(edges: readonly FlowEdge[], from: string, to: string): boolean {
  const next = new Map<string, string[]>();
  for (const edge of edges) next.set(edge.source, [...(next.get(edge.source) ?? []), edge.target]);
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (current === to) return true;
    if (seen.has(current)) continue;
    seen.add(current);
    stack.push(...(next.get(current) ?? []));
  }
  return false;
}

/** A ComfyUI node's IMAGE/MASK input (a batch, `list<image>`) also takes one native image or mask: a batch of one. */
export function takesOneAsBatch(nodeType: string, source: string, target: string): boolean {
  if (!nodeType.startsWith("comfyui.")) return false;
  const element = listElement(target);
  if (element === null || isForeign(source) || listElement(source) !== null) return false;
  return (element === "image" || element === "mask") && canFeed(source, element);
}

export function checkConnection(args: {
  nodes: readonly FlowNode[];
  edges: readonly FlowEdge[];
  catalog: Catalog;
  connection: Connection;
}): ConnectionCheck {
  const { nodes, edges, catalog, connection } = args;
  const { source, target } = connection;
  const sourceHandle = connection.sourceHandle ?? "";
  const targetHandle = connection.targetHandle ?? "";
  const sourceNode = nodes.find((node) => node.id === source);
  const targetNode = nodes.find((node) => node.id === target);
  if (!sourceNode) return { ok: false, reason: `No node "${source}".` };
  if (!targetNode) return { ok: false, reason: `No node "${target}".` };
  if (source === target) return { ok: false, reason: "A node cannot feed itself." };
  const sourceDef = catalog[sourceNode.data.nodeType];
  const targetDef = catalog[targetNode.data.nodeType];
  if (!sourceDef) return { ok: false, reason: `Unknown node type "${sourceNode.data.nodeType}".` };
  if (!targetDef) return { ok: false, reason: `Unknown node type "${targetNode.data.nodeType}".` };
  const output = findPort(sourceDef.outputs, sourceHandle);
  if (!output) return { ok: false, reason: `"${source}" has no output "${sourceHandle}".` };
  const input = findPort(targetDef.inputs, targetHandle);
  if (!input) return { ok: false, reason: `"${target}" has no input "${targetHandle}".` };
  if (!canFeed(output.type, input.type) && !takesOneAsBatch(targetNode.data.nodeType, output.type, input.type)) return { ok: false, reason: incompatibilityReason(output.type, input.type)! };
  const id = edgeId({ source, sourceHandle, target, targetHandle });
  if (edges.some((edge) => edge.id === id)) return { ok: false, reason: "These ports are already linked." };
  if (reaches(edges, target, source)) return { ok: false, reason: "That link would make a cycle." };
  const existing = edges.find((edge) => edge.target === target && edge.targetHandle === targetHandle);
  return { ok: true, edgeId: id, replaces: existing?.id ?? null };
}

/** The type of a node's port, or null when the node type or port is unknown. */
export function portType(args: {
  catalog: Catalog;
  node: FlowNode | undefined;
  direction: "input" | "output";
  name: string;
}): string | null {
  const def = args.node ? args.catalog[args.node.data.nodeType] : undefined;
  const ports = args.direction === "input" ? def?.inputs : def?.outputs;
  return findPort(ports, args.name)?.type ?? null;
}
