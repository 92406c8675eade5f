import { describe, expect, it } from "vitest";
import { CATALOG } from "../test/fixtures";
import type { Catalog, FlowNode } from "./types";
import { deriveInputs } from "./workflowInputs";

const catalog: Catalog = Object.fromEntries(CATALOG.map((def) => [def.type, def]));

function node(id: string, nodeType: string, params: Record<string, unknown>): FlowNode {
  return { id, type: "nodeloom", position: { x: 0, y: 0 }, data: { nodeType, label: "", params, literals: {} } };
}

describe("deriveInputs", () => {
  it("lists input nodes by their name param with the output's type", () => {
    const inputs = deriveInputs(
      [
        node("prompt", "input.text", { name: "prompt", default: "fox" }),
        node("gen", "generate.flux_2_pro", {}),
        node("n", "input.integer", { name: "count", min: 1, max: 4 }),
        node("dup", "input.text", { name: "prompt" }),
      ],
      catalog,
    );
    expect(inputs).toEqual([
      expect.objectContaining({ name: "prompt", type: "text", required: false, default: "fox" }),
      expect.objectContaining({ name: "count", type: "integer", required: true, constraints: { min: 1, max: 4 } }),
    ]);
  });
});
