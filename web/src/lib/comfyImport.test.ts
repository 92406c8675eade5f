import { describe, expect, it } from "vitest";
import type { Graph, NodeDef } from "../api/types";
import { API_EXPORT, COMFY_CATALOG, IMPORTED } from "../test/comfyFixtures";
import {
  changedSides,
  inputCandidates,
  inputMappings,
  isPngFile,
  nameFromFile,
  nameProblems,
  outputCandidates,
  outputMappings,
  parseExport,
  readExposure,
  suggestName,
} from "./comfyImport";

const catalog: Record<string, NodeDef> = Object.fromEntries(COMFY_CATALOG.map((def) => [def.type, def]));

describe("parseExport", () => {
  it("tells the API format from the UI format and counts the nodes", () => {
    const api = parseExport(JSON.stringify(API_EXPORT));
    expect(api).toMatchObject({ ok: true, shape: "api", nodeCount: 4, unwrapped: null });
    const ui = parseExport(JSON.stringify({ nodes: [{ id: 1, type: "EmptyImage" }], links: [], version: 0.4 }));
    expect(ui).toMatchObject({ ok: true, shape: "ui", nodeCount: 1 });
  });

  it("unwraps a worker-comfyui request and a /prompt body", () => {
    const runpod = parseExport(JSON.stringify({ input: { workflow: API_EXPORT, images: [] } }));
    expect(runpod).toMatchObject({ ok: true, shape: "api", unwrapped: expect.stringContaining("worker-comfyui") });
    if (runpod.ok) expect(runpod.workflow).toEqual(API_EXPORT);
    expect(parseExport(JSON.stringify({ prompt: API_EXPORT, client_id: "x" }))).toMatchObject({ ok: true, unwrapped: expect.stringContaining("/prompt") });
  });

  it("explains what is wrong with anything else", () => {
    expect(parseExport("")).toMatchObject({ ok: false, error: expect.stringContaining("Paste") });
    expect(parseExport("{not json")).toMatchObject({ ok: false, error: expect.stringContaining("not valid JSON") });
    expect(parseExport('{"hello": "world"}')).toMatchObject({ ok: false, error: expect.stringContaining("Export (API)") });
    expect(parseExport("[1, 2]")).toMatchObject({ ok: false });
  });

  it("reads file names", () => {
    expect(isPngFile({ name: "ComfyUI_00001_.PNG" })).toBe(true);
    expect(isPngFile({ name: "x", type: "image/png" })).toBe(true);
    expect(isPngFile({ name: "flow.json", type: "application/json" })).toBe(false);
    expect(nameFromFile("my flow (API).json")).toBe("my flow (API)");
    expect(nameFromFile(".json")).toBe("ComfyUI workflow");
  });
});

describe("what an imported graph exposes", () => {
  it("reads exposed inputs from input.* nodes linked into ComfyUI nodes, and outputs from output.* nodes", () => {
    const exposure = readExposure(IMPORTED.graph, catalog);
    expect(exposure.inputs).toEqual([
      { name: "sizeUpscaleMethod", node: "2", input: "upscale_method", inputType: "input.select", default: "nearest-exact", required: false, fixed: false },
      { name: "sizeWidth", node: "2", input: "width", inputType: "input.integer", default: 32, required: false, fixed: false },
    ]);
    expect(exposure.outputs).toEqual([{ name: "image", node: "4", type: "list<image>" }]);
  });

  it("marks a loader's file as fixed: it always comes from the caller", () => {
    const graph: Graph = {
      nodes: [
        { id: "input_image", type: "input.image", params: { name: "image", required: true } },
        { id: "10", type: "comfyui.LoadImage", inputs: { image: { from: "input_image", output: "image" } } },
      ],
    };
    expect(readExposure(graph, catalog).inputs).toEqual([
      { name: "image", node: "10", input: "image", inputType: "input.image", default: undefined, required: true, fixed: true },
    ]);
  });

  it("offers every literal ComfyUI input, exposed ones included, and every output node nodeloom can return", () => {
    const inputs = inputCandidates(IMPORTED.graph, catalog).map((c) => `${c.node}.${c.input}=${JSON.stringify(c.value)}`);
    expect(inputs).toEqual([
      "1.width=64",
      "1.height=48",
      "1.batch_size=1",
      "1.color=16711680",
      '2.upscale_method="nearest-exact"',
      "2.width=32",
      "2.height=32",
      '2.crop="disabled"',
      '4.filename_prefix="nodeloom_web"',
    ]);
    const withPreview: Graph = { nodes: [...IMPORTED.graph.nodes, { id: "5", type: "comfyui.PreviewImage", inputs: { images: { from: "3", output: "image" } } }] };
    expect(outputCandidates(withPreview)).toEqual([
      { node: "4", title: "Save Image", classType: "SaveImage", type: "list<image>" },
      { node: "5", title: "PreviewImage", classType: "PreviewImage", type: "list<image>" },
    ]);
  });
});

describe("names and mappings", () => {
  it("suggests camelCase names that are not taken", () => {
    expect(suggestName("batch_size", [])).toBe("batchSize");
    expect(suggestName("width", ["width"])).toBe("width_2");
    expect(suggestName("width", ["width", "width_2"])).toBe("width_3");
    expect(suggestName("", [])).toBe("input");
  });

  it("finds empty, long and repeated names", () => {
    expect(nameProblems(["a", " ", "x".repeat(65), "b", "a"])).toEqual({
      0: "“a” is used twice.",
      1: "Give it a name.",
      2: "At most 64 characters.",
      4: "“a” is used twice.",
    });
    expect(nameProblems(["prompt", "seed"])).toEqual({});
  });

  it("builds the explicit mappings the server takes, and tells which side changed", () => {
    const before = readExposure(IMPORTED.graph, catalog);
    const inputs = [{ name: " method ", node: "2", input: "upscale_method" }, { name: "w", node: "1", input: "width" }];
    expect(inputMappings(inputs)).toEqual({ method: { node: "2", input: "upscale_method" }, w: { node: "1", input: "width" } });
    expect(outputMappings([{ name: "result", node: "4" }])).toEqual({ result: { node: "4" } });
    expect(changedSides(before, { inputs: before.inputs, outputs: before.outputs })).toEqual({ inputs: false, outputs: false });
    expect(changedSides(before, { inputs: [...before.inputs].reverse(), outputs: [{ name: "result", node: "4" }] })).toEqual({ inputs: false, outputs: true });
    expect(changedSides(before, { inputs: before.inputs.slice(1), outputs: before.outputs })).toEqual({ inputs: true, outputs: false });
  });
});
