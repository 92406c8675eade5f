// The canvas's vocabulary: React Flow nodes and edges carrying nodeloom data. Aliases only.

import type { Edge, Node } from "@xyflow/react";
import type { NodeDef } from "../api/types";

export type FlowNodeData = {
  /** The node type, e.g. "generate.flux_2_pro". */
  nodeType: string;
  /** A caption the user chose; empty means "use the type's display name". */
  label: string;
  params: Record<string, unknown>;
  /** Literal values of input ports that no link feeds. */
  literals: Record<string, unknown>;
};

export type FlowNode = Node<FlowNodeData, "nodeloom">;
export type FlowEdge = Edge;

export interface GraphSnapshot {
  nodes: FlowNode[];
  edges: FlowEdge[];
}

export type Catalog = Record<string, NodeDef>;

export interface XY {
  x: number;
  y: number;
}
