// Port type compatibility, as API.md's "Graph format" states it:
// - `any` accepts and produces every type;
// - `integer` may feed `number`;
// - a `list<T>` may feed a port of type `T` (fan-out), and lists feed lists element-wise.

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

/** Normalises spacing and case: "List< Image >" → "list<image>". */
export function normaliseType(type: string | null | undefined): string {
  if (!type) return "any";
  const trimmed = type.trim().toLowerCase();
  const match = LIST_PATTERN.exec(trimmed);
  if (match) return `list<${normaliseType(match[1])}>`;
  return trimmed;
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
  if (from === "any" || to === "any") return true;
  if (from === to) return true;
  if (from === "integer" && to === "number") return true;
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
  return listElement(from) !== null && listElement(to) === null && to !== "any" && canFeed(from, to);
}

/** A short explanation for the refusal, used as tooltip text and in test answers. */
export function incompatibilityReason(source: string, target: string): string | null {
  if (canFeed(source, target)) return null;
  return `A ${normaliseType(source)} output cannot feed a ${normaliseType(target)} input.`;
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

/** The colour of a handle; a list shares its element's colour (drawn hollow by CSS). */
export function portColour(type: string): string {
  const element = listElement(type);
  return PORT_COLOURS[element ?? normaliseType(type)] ?? "#495057";
}
