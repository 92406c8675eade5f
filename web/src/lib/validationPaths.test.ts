import { describe, expect, it } from "vitest";
import type { Graph } from "../api/types";
import { mapValidationErrors, resolvePath } from "./validationPaths";

const graph: Graph = {
  nodes: [
    { id: "prompt", type: "input.text" },
    { id: "gen", type: "generate.flux_2_pro" },
    { id: "resize", type: "image.resize" },
  ],
};

describe("validation paths", () => {
  it("maps an index path to the node sent at that index, with its field", () => {
    expect(resolvePath("nodes[2].inputs.width", graph)).toEqual({ nodeId: "resize", field: { kind: "inputs", name: "width" } });
    expect(resolvePath("nodes[1].params.steps", graph)).toEqual({ nodeId: "gen", field: { kind: "params", name: "steps" } });
    expect(resolvePath("nodes[0]", graph)).toEqual({ nodeId: "prompt", field: null });
  });

  it("also accepts node ids, quoted keys, bracketed fields and a graph. prefix", () => {
    expect(resolvePath("nodes[gen].params.steps", graph)?.nodeId).toBe("gen");
    expect(resolvePath('nodes["resize"].inputs["image"]', graph)).toEqual({ nodeId: "resize", field: { kind: "inputs", name: "image" } });
    expect(resolvePath("nodes.gen.inputs.prompt", graph)?.field).toEqual({ kind: "inputs", name: "prompt" });
    expect(resolvePath("graph.nodes[1].type", graph)).toEqual({ nodeId: "gen", field: null });
  });

  it("leaves graph-level and unknown paths general", () => {
    expect(resolvePath("nodes", graph)).toBeNull();
    expect(resolvePath("nodes[9].inputs.x", graph)).toBeNull();
    expect(resolvePath("", graph)).toBeNull();
    const mapped = mapValidationErrors(
      [
        { path: "nodes[2].inputs.width", message: "must be a number" },
        { path: "nodes[2].inputs.image", message: "required" },
        { path: "nodes", message: "cycle between gen and resize" },
      ],
      graph,
    );
    expect(mapped.byNode.resize).toHaveLength(2);
    expect(mapped.byNode.resize[0]).toEqual({ path: "nodes[2].inputs.width", message: "must be a number", field: { kind: "inputs", name: "width" } });
    expect(mapped.general).toEqual([{ path: "nodes", message: "cycle between gen and resize" }]);
  });
});
