// Port type compatibility, as API.md's "Graph format" states it:
// - `any` accepts and produces every type;
// - `integer` may feed `number`;
// - a `list<T>` may feed a port of type `T` (fan-out), and lists feed lists element-wise;
// - `mask` and `image` feed each other; `json` and lists feed each other;
// - ComfyUI's own kinds are foreign types (`comfyui:MODEL`, `comfyui:LATENT` …): they link only to the same
//   type, or into `comfyui:*` (which takes anything), and never fan out (API.md "ComfyUI workflows").

export const SCALAR_PORT_TYPES = [
  "text",
  "number",
  "integer",
  "boolean",
  "json",
  "image",
  "video",
  "audio",
  "file",
  "mask",
  "any",
] as const;

const LIST_PATTERN = /^list\s*<\s*(.+)\s*>$/i;

/** The prefix of a ComfyUI-only type: `comfyui:MODEL`, `comfyui:*` (takes a link of any type). */
export const FOREIGN_PREFIX = "comfyui:";
export const FOREIGN_ANY = "comfyui:*";

/** Normalises spacing and case: "List< Image >" → "list<image>". A foreign kind keeps its case ("comfyui:MODEL"). */
export function normaliseType(type: string | null | undefined): string {
  if (!type) return "any";
  const trimmed = type.trim();
  const match = LIST_PATTERN.exec(trimmed);
  if (match) return `list<${normaliseType(match[1])}>`;
  if (trimmed.toLowerCase().startsWith(FOREIGN_PREFIX)) return FOREIGN_PREFIX + trimmed.slice(FOREIGN_PREFIX.length).trim();
  return trimmed.toLowerCase();
}

/** Is `type` a ComfyUI-only type, or a list of one? */
export function isForeign(type: string): boolean {
  let current = normaliseType(type);
  for (let element = listElement(current); element !== null; element = listElement(current)) current = element;
  return current.startsWith(FOREIGN_PREFIX);
}

/** A port type as a person reads it: ComfyUI's kinds without the prefix ("MODEL"). */
export function displayType(type: string): string {
  const normalised = normaliseType(type);
  return normalised.replace(/comfyui:/g, "");
}

/** The element type of `list<T>`, or null for a type that is not a list. */
export function listElement(type: string): string | null {
  const match = LIST_PATTERN.exec(normaliseType(type));
  return match ? normaliseType(match[1]) : null;
}

/** May a value of `source` type flow into a port of `target` type? */
export function canFeed(source: string, target: string): boolean {
  const from = normaliseType(source);
  const to = normaliseType(target);
  if (isForeign(from) || isForeign(to)) return from === to || to === FOREIGN_ANY;
  if (from === "any" || to === "any") return true;
  if (from === to) return true;
  if (from === "integer" && to === "number") return true;
  if ((from === "mask" && to === "image") || (from === "image" && to === "mask")) return true;
  if ((from === "json" && listElement(to) !== null) || (listElement(from) !== null && to === "json")) return true;
  const fromElement = listElement(from);
  const toElement = listElement(to);
  if (fromElement !== null && toElement !== null) return canFeed(fromElement, toElement);
  if (fromElement !== null && toElement === null) return canFeed(fromElement, to); // fan-out
  return false;
}

/** Does a link from `source` into `target` fan out (run the target once per element)? */
export function isFanOut(source: string, target: string): boolean {
  const from = normaliseType(source);
  const to = normaliseType(target);
  if (isForeign(from) || isForeign(to)) return false;
  const element = listElement(from);
  return element !== null && listElement(to) === null && to !== "any" && canFeed(element, to);
}

/** A short explanation for the refusal, used as tooltip text and in test answers. */
export function incompatibilityReason(source: string, target: string): string | null {
  if (canFeed(source, target)) return null;
  return `A ${displayType(source)} output cannot feed a ${displayType(target)} input.`;
}

const PORT_COLOURS: Record<string, string> = {
  text: "#2f9e44",
  number: "#1971c2",
  integer: "#1864ab",
  boolean: "#e8590c",
  json: "#6741d9",
  image: "#c2255c",
  video: "#d6336c",
  audio: "#0c8599",
  file: "#868e96",
  mask: "#5c940d",
  any: "#495057",
};

/** ComfyUI's own kinds, in the colours its editor gives their sockets. */
const FOREIGN_COLOURS: Record<string, string> = {
  MODEL: "#8b74d8",
  CLIP: "#d4a20a",
  VAE: "#e0466b",
  LATENT: "#d65fa8",
  CONDITIONING: "#e8890c",
  CLIP_VISION: "#4e9a9a",
  CLIP_VISION_OUTPUT: "#4e9a9a",
  CONTROL_NET: "#3a9a4a",
  SAMPLER: "#adb5bd",
  SIGMAS: "#adb5bd",
  NOISE: "#adb5bd",
  GUIDER: "#adb5bd",
  UPSCALE_MODEL: "#7a7ad6",
  "*": "#495057",
};

/** The colour of a handle; a list shares its element's colour (drawn hollow by CSS). */
export function portColour(type: string): string {
  const element = listElement(type);
  const base = element ?? normaliseType(type);
  if (base.startsWith(FOREIGN_PREFIX)) return FOREIGN_COLOURS[base.slice(FOREIGN_PREFIX.length)] ?? "#7b8794";
  return PORT_COLOURS[base] ?? "#495057";
}
