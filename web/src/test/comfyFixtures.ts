// ComfyUI node types as GET /api/v1/nodes lists them (built by the server from a real /object_info), and an
// imported workflow as POST /workflows/import/comfyui answers it — shared by the ComfyUI unit tests.

import type { ComfyImportResult, NodeDef } from "../api/types";
import { CATALOG } from "./fixtures";

const image = (name: string) => ({ name, type: "list<image>", required: true, default: null, constraints: {} });

export const COMFY_DEFS: NodeDef[] = [
  {
    type: "comfyui.EmptyImage",
    category: "comfyui/image",
    displayName: "EmptyImage",
    inputs: [
      { name: "width", type: "integer", required: true, default: 512, constraints: { min: 1, max: 4096 } },
      { name: "height", type: "integer", required: true, default: 512, constraints: { min: 1, max: 4096 } },
      { name: "batch_size", type: "integer", required: true, default: 1, constraints: { min: 1, max: 16 } },
      { name: "color", type: "integer", required: true, default: 0, constraints: { min: 0, max: 16777215 } },
    ],
    outputs: [image("image")],
    params: [],
    resources: "gpu",
    available: true,
  },
  {
    type: "comfyui.ImageScale",
    category: "comfyui/image/upscaling",
    displayName: "Upscale Image",
    inputs: [
      image("image"),
      { name: "upscale_method", type: "text", required: true, default: null, constraints: { enum: ["nearest-exact", "bilinear", "area"] } },
      { name: "width", type: "integer", required: true, default: 512, constraints: { min: 0, max: 4096 } },
      { name: "height", type: "integer", required: true, default: 512, constraints: { min: 0, max: 4096 } },
      { name: "crop", type: "text", required: true, default: null, constraints: { enum: ["disabled", "center"] } },
    ],
    outputs: [image("image")],
    params: [],
    resources: "gpu",
    available: true,
  },
  {
    type: "comfyui.ImageInvert",
    category: "comfyui/image",
    displayName: "Invert Image",
    inputs: [image("image")],
    outputs: [image("image")],
    params: [],
    resources: "gpu",
    available: true,
  },
  {
    type: "comfyui.SaveImage",
    category: "comfyui/image",
    displayName: "Save Image",
    inputs: [image("images"), { name: "filename_prefix", type: "text", required: true, default: "ComfyUI", constraints: {} }],
    outputs: [{ ...image("images"), description: "what the output node saved or shows" }],
    params: [],
    resources: "gpu",
    available: true,
  },
  {
    type: "comfyui.PreviewImage",
    category: "comfyui/image",
    displayName: "Preview Image",
    inputs: [image("images")],
    outputs: [image("images")],
    params: [],
    resources: "gpu",
    available: true,
  },
  {
    type: "comfyui.CheckpointLoaderSimple",
    category: "comfyui/loaders",
    displayName: "Load Checkpoint",
    inputs: [{ name: "ckpt_name", type: "text", required: true, default: null, constraints: { enum: [] } }],
    outputs: [
      { name: "model", type: "comfyui:MODEL" },
      { name: "clip", type: "comfyui:CLIP" },
      { name: "vae", type: "comfyui:VAE" },
    ],
    params: [],
    resources: "gpu",
    available: true,
  },
  {
    type: "comfyui.KSampler",
    category: "comfyui/sampling",
    displayName: "KSampler",
    inputs: [
      { name: "model", type: "comfyui:MODEL", required: true },
      { name: "seed", type: "integer", required: true, default: 0, constraints: { min: 0 } },
      { name: "steps", type: "integer", required: true, default: 20, constraints: { min: 1, max: 10000 } },
      { name: "cfg", type: "number", required: true, default: 8, constraints: { min: 0, max: 100 } },
      { name: "sampler_name", type: "text", required: true, default: null, constraints: { enum: ["euler", "dpmpp_2m"] } },
      { name: "denoise", type: "number", required: true, default: 1, constraints: { min: 0, max: 1 } },
      { name: "add_noise", type: "boolean", required: false, default: true },
      { name: "latent_image", type: "comfyui:LATENT", required: true },
    ],
    outputs: [{ name: "latent", type: "comfyui:LATENT" }],
    params: [],
    resources: "gpu",
    available: true,
  },
  {
    type: "comfyui.LoadImage",
    category: "comfyui/image",
    displayName: "Load Image",
    inputs: [{ name: "image", type: "image", required: true, default: null, constraints: {} }],
    outputs: [image("image"), { name: "mask", type: "list<mask>" }],
    params: [],
    resources: "gpu",
    available: true,
  },
  {
    type: "input.select",
    category: "input",
    displayName: "Choice input",
    inputs: [],
    outputs: [{ name: "value", type: "text" }],
    params: [{ name: "name", type: "text", required: true }, { name: "default", type: "text" }, { name: "options", type: "json" }],
    available: true,
  },
  {
    type: "input.image",
    category: "input",
    displayName: "Image input",
    inputs: [],
    outputs: [{ name: "image", type: "image" }],
    params: [{ name: "name", type: "text", required: true }, { name: "required", type: "boolean" }],
    available: true,
  },
];

export const COMFY_CATALOG: NodeDef[] = [...CATALOG, ...COMFY_DEFS];

/** The API-format export the tests import: EmptyImage → ImageScale (titled input:size) → ImageInvert → SaveImage. */
export const API_EXPORT = {
  "1": { class_type: "EmptyImage", inputs: { width: 64, height: 48, batch_size: 1, color: 16711680 }, _meta: { title: "EmptyImage" } },
  "2": {
    class_type: "ImageScale",
    inputs: { image: ["1", 0], upscale_method: "nearest-exact", width: 32, height: 32, crop: "disabled" },
    _meta: { title: "input:size" },
  },
  "3": { class_type: "ImageInvert", inputs: { image: ["2", 0] }, _meta: { title: "Invert Image" } },
  "4": { class_type: "SaveImage", inputs: { images: ["3", 0], filename_prefix: "nodeloom_web" }, _meta: { title: "Save Image" } },
};

/** What the server answers for API_EXPORT without mappings (expose.py's output, verbatim). */
export const IMPORTED: ComfyImportResult = {
  id: "wf_comfy",
  name: "fox",
  description: "",
  publishedVersion: null,
  graph: {
    nodes: [
      { id: "input_sizeUpscaleMethod", type: "input.select", params: { name: "sizeUpscaleMethod", default: "nearest-exact", options: ["nearest-exact", "bilinear", "area"] }, label: "sizeUpscaleMethod → input:size.upscale_method" },
      { id: "input_sizeWidth", type: "input.integer", params: { name: "sizeWidth", default: 32, min: 0, max: 4096 }, label: "sizeWidth → input:size.width" },
      { id: "1", type: "comfyui.EmptyImage", inputs: { width: 64, height: 48, batch_size: 1, color: 16711680 }, label: "EmptyImage" },
      {
        id: "2",
        type: "comfyui.ImageScale",
        inputs: {
          image: { from: "1", output: "image" },
          upscale_method: { from: "input_sizeUpscaleMethod", output: "value" },
          width: { from: "input_sizeWidth", output: "value" },
          height: 32,
          crop: "disabled",
        },
        label: "input:size",
      },
      { id: "3", type: "comfyui.ImageInvert", inputs: { image: { from: "2", output: "image" } }, label: "Invert Image" },
      { id: "4", type: "comfyui.SaveImage", inputs: { images: { from: "3", output: "image" }, filename_prefix: "nodeloom_web" }, label: "Save Image" },
      { id: "output_image", type: "output.image", params: { name: "image" }, inputs: { image: { from: "4", output: "images" } } },
    ],
  },
  importNotes: [
    "input 'sizeUpscaleMethod' (select) → node 2 (input:size).upscale_method: the node is titled 'input:size'",
    "input 'sizeWidth' (integer) → node 2 (input:size).width: the node is titled 'input:size'",
    "no sampler (KSampler, KSamplerAdvanced, SamplerCustom, SamplerCustomAdvanced): prompt, negativePrompt, seed, width, height and batchSize are not exposed",
    "output 'image' (list<image>) ← node 4 (Save Image)",
  ],
};
