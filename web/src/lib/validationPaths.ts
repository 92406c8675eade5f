// Maps validation paths ("nodes[2].inputs.width") onto canvas nodes and fields.
// Indexes refer to the graph as it was sent, so callers pass that same graph.

import type { ErrorDetail, Graph } from "../api/types";

export type FieldKind = "inputs" | "params" | "outputs";

export interface NodeIssue {
  path: string;
  message: string;
  /** The input, param or output the message is about, when the path names one. */
  field: { kind: FieldKind; name: string } | null;
}

export interface MappedIssues {
  byNode: Record<string, NodeIssue[]>;
  /** Messages about the graph as a whole, or paths that name no known node. */
  general: ErrorDetail[];
}

const NODE_PATH = /^(?:body\.)?(?:graph\.)?nodes(?:\[(?:"([^"]+)"|'([^']+)'|([^\]]+))\]|\.([A-Za-z0-9_-]+))(.*)$/;
const FIELD_PATH = /^\.(inputs|params|outputs)(?:\.([^.[\]]+)|\[["']?([^\]"']+)["']?\])?/;

/** The node id and field a path points at, or null for a path about the whole graph. */
export function resolvePath(path: string, graph: Graph): { nodeId: string; field: NodeIssue["field"] } | null {
  const match = NODE_PATH.exec(path.trim());
  if (!match) return null;
  const key = match[1] ?? match[2] ?? match[3] ?? match[4] ?? "";
  const rest = match[5] ?? "";
  let nodeId: string | undefined;
  if (/^\d+$/.test(key)) {
    nodeId = graph.nodes[Number(key)]?.id;
  }
  if (nodeId === undefined && graph.nodes.some((node) => node.id === key)) nodeId = key;
  if (nodeId === undefined) return null;
  const fieldMatch = FIELD_PATH.exec(rest);
  const field = fieldMatch && (fieldMatch[2] ?? fieldMatch[3])
    ? { kind: fieldMatch[1] as FieldKind, name: (fieldMatch[2] ?? fieldMatch[3])! }
    : null;
  return { nodeId, field };
}

export function mapValidationErrors(errors: readonly ErrorDetail[], graph: Graph): MappedIssues {
  const byNode: Record<string, NodeIssue[]> = {};
  const general: ErrorDetail[] = [];
  for (const error of errors) {
    const resolved = typeof error.path === "string" ? resolvePath(error.path, graph) : null;
    if (!resolved) {
      general.push(error);
      continue;
    }
    (byNode[resolved.nodeId] ??= []).push({ path: error.path, message: error.message, field: resolved.field });
  }
  return { byNode, general };
}
