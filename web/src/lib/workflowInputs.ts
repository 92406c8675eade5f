// The inputs a workflow takes. The server derives them from the saved draft's input nodes
// (`workflow.inputs`); while the canvas has unsaved changes the same is derived here.

import type { FieldSchema } from "../api/types";
import type { Catalog, FlowNode } from "./types";

export function isInputNode(nodeType: string): boolean {
  return nodeType.startsWith("input.");
}

export function deriveInputs(nodes: readonly FlowNode[], catalog: Catalog): FieldSchema[] {
  const inputs: FieldSchema[] = [];
  const seen = new Set<string>();
  for (const node of nodes) {
    if (!isInputNode(node.data.nodeType)) continue;
    const params = node.data.params;
    const name = typeof params.name === "string" && params.name.trim() ? params.name.trim() : node.id;
    if (seen.has(name)) continue;
    seen.add(name);
    const def = catalog[node.data.nodeType];
    const type = def?.outputs[0]?.type ?? node.data.nodeType.slice("input.".length);
    const constraints: FieldSchema["constraints"] = {};
    if (typeof params.min === "number") constraints.min = params.min;
    if (typeof params.max === "number") constraints.max = params.max;
    const options = params.options ?? params.enum;
    if (Array.isArray(options) && options.length > 0) constraints.enum = options;
    inputs.push({
      name,
      type,
      required: typeof params.required === "boolean" ? params.required : params.default === undefined,
      default: params.default,
      constraints,
      description: typeof params.description === "string" ? params.description : undefined,
    });
  }
  return inputs;
}
