// How a port/param/input schema ({name, type, required, default, constraints}) becomes a form field,
// and how values are checked against it. The forms never hard-code a node: they read these schemas.

import type { FieldSchema } from "../api/types";
import { listElement, normaliseType } from "./portTypes";

export type FieldKind = "enum" | "boolean" | "integer" | "number" | "json" | "media" | "longtext" | "text";

export const MEDIA_TYPES = new Set(["image", "video", "audio", "file", "mask"]);
const LONG_TEXT_NAMES = /prompt|template|text|system|instruction|description|message/i;

export function fieldKind(schema: FieldSchema): FieldKind {
  const options = schema.constraints?.enum;
  if (Array.isArray(options) && options.length > 0) return "enum";
  const type = normaliseType(schema.type);
  if (listElement(type) !== null) return "json";
  switch (type) {
    case "boolean":
      return "boolean";
    case "integer":
      return "integer";
    case "number":
      return "number";
    case "json":
    case "any":
      return "json";
    case "text":
      return LONG_TEXT_NAMES.test(schema.name) ? "longtext" : "text";
    default:
      return MEDIA_TYPES.has(type) ? "media" : "text";
  }
}

/** The `accept` attribute for a media field's file picker. */
export function mediaAccept(type: string): string | undefined {
  switch (normaliseType(type)) {
    case "image":
    case "mask":
      return "image/*";
    case "video":
      return "video/*";
    case "audio":
      return "audio/*";
    default:
      return undefined;
  }
}

export function fieldLabel(schema: FieldSchema): string {
  if (schema.displayName) return schema.displayName;
  const spaced = schema.name.replace(/_/g, " ").replace(/([a-z0-9])([A-Z])/g, "$1 $2");
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

/** The schema defaults, for the fields that have one. */
export function defaultValues(fields: readonly FieldSchema[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const field of fields) {
    if (field.default !== undefined && field.default !== null) values[field.name] = structuredClone(field.default);
  }
  return values;
}

export function isEmptyValue(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === "string" && value.trim() === "");
}

/** Why `value` does not fit `schema`, or null when it does. */
export function checkFieldValue(schema: FieldSchema, value: unknown): string | null {
  if (isEmptyValue(value)) return schema.required && schema.default === undefined ? "Required." : null;
  const kind = fieldKind(schema);
  const { min, max } = schema.constraints ?? {};
  if (kind === "enum") {
    const options = schema.constraints?.enum ?? [];
    return options.some((option) => option === value) ? null : `Choose one of ${options.map(String).join(", ")}.`;
  }
  if (kind === "number" || kind === "integer") {
    if (typeof value !== "number" || Number.isNaN(value)) return "Enter a number.";
    if (kind === "integer" && !Number.isInteger(value)) return "Enter a whole number.";
    if (typeof min === "number" && value < min) return `At least ${min}.`;
    if (typeof max === "number" && value > max) return `At most ${max}.`;
  }
  if (kind === "boolean" && typeof value !== "boolean") return "Must be true or false.";
  if ((kind === "text" || kind === "longtext") && typeof value === "string") {
    if (typeof min === "number" && value.length < min) return `At least ${min} characters.`;
    if (typeof max === "number" && value.length > max) return `At most ${max} characters.`;
  }
  return null;
}

/** Reads a number input's text: "" → undefined, otherwise a number (NaN when not one). */
export function parseNumber(raw: string): number | undefined {
  if (raw.trim() === "") return undefined;
  return Number(raw);
}

/** The inputs object to send for an execution, and the per-field problems found before sending. */
export function buildInputs(
  schemas: readonly FieldSchema[],
  values: Record<string, unknown>,
): { inputs: Record<string, unknown>; errors: Record<string, string> } {
  const inputs: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const schema of schemas) {
    const value = values[schema.name];
    const problem = checkFieldValue(schema, value);
    if (problem) errors[schema.name] = problem;
    if (!isEmptyValue(value)) inputs[schema.name] = value;
  }
  return { inputs, errors };
}
