// ComfyUI's types on the canvas: foreign kinds link only to themselves, an IMAGE batch input takes one native
// image, `node.progress` events carry ComfyUI's {value, max}, and a new ComfyUI node starts with its widget defaults.
import { describe, expect, it } from "vitest";
import { COMFY_CATALOG, COMFY_DEFS } from "../test/comfyFixtures";
import { isWidget, widgetDefaults } from "./comfyNodes";
import { checkConnection } from "./graphRules";
import { canFeed, displayType, isFanOut, isForeign, normaliseType, portColour } from "./portTypes";
import { applyRunEvent, initialRun, progressSteps } from "./runState";
import type { Catalog, FlowNode } from "./types";

const catalog: Catalog = Object.fromEntries(COMFY_CATALOG.map((def) => [def.type, def]));
const def = (type: string) => COMFY_DEFS.find((candidate) => candidate.type === type)!;

function node(id: string, nodeType: string): FlowNode {
  return { id, type: "nodeloom", position: { x: 0, y: 0 }, data: { nodeType, label: "", params: {}, literals: {} } };
}

describe("foreign (ComfyUI-only) port types", () => {
  it("keep their kind's case and read without the prefix", () => {
    expect(normaliseType(" comfyui:MODEL ")).toBe("comfyui:MODEL");
    expect(normaliseType("list<comfyui:LATENT>")).toBe("list<comfyui:LATENT>");
    expect(isForeign("list<comfyui:LATENT>")).toBe(true);
    expect(isForeign("list<image>")).toBe(false);
    expect(displayType("comfyui:CONDITIONING")).toBe("CONDITIONING");
    expect(portColour("comfyui:MODEL")).not.toBe(portColour("comfyui:VAE"));
  });

  it("link only to the same kind, or into comfyui:* — never to native types, not even any", () => {
    expect(canFeed("comfyui:MODEL", "comfyui:MODEL")).toBe(true);
    expect(canFeed("comfyui:MODEL", "comfyui:CLIP")).toBe(false);
    expect(canFeed("comfyui:MODEL", "comfyui:*")).toBe(true);
    expect(canFeed("text", "comfyui:*")).toBe(true);
    expect(canFeed("comfyui:MODEL", "any")).toBe(false);
    expect(canFeed("any", "comfyui:MODEL")).toBe(false);
    expect(canFeed("list<comfyui:LATENT>", "comfyui:LATENT")).toBe(false);
    expect(isFanOut("list<comfyui:LATENT>", "comfyui:LATENT")).toBe(false);
  });

  it("cross with native types as the contract says", () => {
    expect(canFeed("list<image>", "image")).toBe(true); // a ComfyUI IMAGE batch fans out into a native image input
    expect(isFanOut("list<image>", "image")).toBe(true);
    expect(canFeed("mask", "image")).toBe(true);
    expect(canFeed("list<text>", "json")).toBe(true);
    expect(isFanOut("list<text>", "json")).toBe(false);
  });

  it("let a ComfyUI IMAGE batch input take one native image (a batch of one), and refuse MODEL into LATENT", () => {
    const nodes = [node("gen", "generate.flux_2_pro"), node("2", "comfyui.ImageInvert"), node("ck", "comfyui.CheckpointLoaderSimple"), node("ks", "comfyui.KSampler"), node("out", "output.image")];
    const check = (source: string, sourceHandle: string, target: string, targetHandle: string) =>
      checkConnection({ nodes, edges: [], catalog, connection: { source, sourceHandle, target, targetHandle } });
    expect(check("gen", "image", "2", "image").ok).toBe(true);
    expect(check("2", "image", "out", "image").ok).toBe(true);
    expect(check("ck", "model", "ks", "model").ok).toBe(true);
    const refused = check("ck", "model", "ks", "latent_image");
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.reason).toBe("A MODEL output cannot feed a LATENT input.");
    expect(check("gen", "image", "ks", "latent_image").ok).toBe(false);
  });
});

describe("ComfyUI widgets", () => {
  it("are the inputs that hold values; sockets are not", () => {
    const sampler = def("comfyui.KSampler");
    expect(sampler.inputs.filter(isWidget).map((port) => port.name)).toEqual(["seed", "steps", "cfg", "sampler_name", "denoise", "add_noise"]);
    expect(def("comfyui.ImageInvert").inputs.filter(isWidget)).toEqual([]);
    expect(def("comfyui.LoadImage").inputs.filter(isWidget)).toEqual([]); // its file comes from nodeloom
    expect(def("comfyui.CheckpointLoaderSimple").inputs.filter(isWidget).map((port) => port.name)).toEqual(["ckpt_name"]);
  });

  it("start at their defaults, a combo without one at its first choice", () => {
    expect(widgetDefaults(def("comfyui.KSampler"))).toEqual({ seed: 0, steps: 20, cfg: 8, sampler_name: "euler", denoise: 1, add_noise: true });
    expect(widgetDefaults(def("comfyui.CheckpointLoaderSimple"))).toEqual({});
  });
});

describe("ComfyUI progress", () => {
  it("keeps ComfyUI's step counter beside the fraction", () => {
    let run = initialRun(["3"]);
    run = applyRunEvent(run, "node.started", { nodeId: "3" });
    run = applyRunEvent(run, "node.progress", { nodeId: "3", progress: 0.6, value: 12, max: 20 });
    expect(run.nodes["3"]).toMatchObject({ status: "running", progress: 0.6, steps: { value: 12, max: 20 } });
    // without a fraction, the counter gives it
    run = applyRunEvent(run, "node.progress", { nodeId: "3", value: 15, max: 20 });
    expect(run.nodes["3"]).toMatchObject({ progress: 0.75, steps: { value: 15, max: 20 } });
    // a native node's progress has no counter
    run = applyRunEvent(run, "node.progress", { nodeId: "native", progress: 0.5 });
    expect(run.nodes.native).toMatchObject({ progress: 0.5, steps: null });
    expect(progressSteps({ value: 1, max: 0 })).toBeNull();
    expect(progressSteps({ value: "1", max: 2 })).toBeNull();
  });
});
