// What the dashboard knows about `comfyui.*` node types (API.md "ComfyUI workflows"): their inputs are ComfyUI's
// inputs — sockets (MODEL, LATENT, IMAGE batches …) and widgets (numbers, texts, toggles, combos with choices).

import type { FieldSchema, NodeDef } from "../api/types";
import { isForeign, listElement, normaliseType } from "./portTypes";

export const COMFY_NODE_PREFIX = "comfyui.";

const WIDGET_TYPES = new Set(["text", "integer", "number", "boolean"]);

export function isComfyType(nodeType: string): boolean {
  return nodeType.startsWith(COMFY_NODE_PREFIX);
}

/** ComfyUI's class type of a `comfyui.<class_type>` node type ("comfyui.KSampler" → "KSampler"). */
export function comfyClass(nodeType: string): string | null {
  return isComfyType(nodeType) ? nodeType.slice(COMFY_NODE_PREFIX.length) : null;
}

/** Does this input of a ComfyUI node show as a widget (a literal edited on the node) rather than a socket? */
export function isWidget(port: FieldSchema): boolean {
  const type = normaliseType(port.type);
  if (isForeign(type) || listElement(type) !== null) return false;
  // a combo is a widget even when the servers offer no choice (a checkpoint combo without model files)
  return Array.isArray(port.constraints?.enum) || WIDGET_TYPES.has(type);
}

/** The values ComfyUI's editor gives a new node's widgets: each input's default, else a combo's first choice. */
export function widgetDefaults(def: NodeDef): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const port of def.inputs ?? []) {
    if (!isWidget(port)) continue;
    const choices = port.constraints?.enum;
    if (port.default !== undefined && port.default !== null) values[port.name] = structuredClone(port.default);
    else if (Array.isArray(choices) && choices.length > 0) values[port.name] = choices[0];
  }
  return values;
}

/** ComfyUI output nodes whose results nodeloom returns, and the type they are returned as. */
export const OUTPUT_CLASSES: Record<string, string> = {
  SaveImage: "list<image>",
  PreviewImage: "list<image>",
  MaskPreview: "list<image>",
  SaveAnimatedWEBP: "image",
  SaveAnimatedPNG: "image",
  SaveVideo: "video",
  SaveWEBM: "video",
  SaveAudio: "audio",
  SaveAudioMP3: "audio",
  SaveAudioOpus: "audio",
  PreviewAudio: "audio",
  PreviewAny: "text",
};
