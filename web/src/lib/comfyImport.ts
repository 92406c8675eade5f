// The "Import ComfyUI workflow" dialog's logic, pure: reading a pasted export, reading back from an imported
// graph which ComfyUI inputs and outputs were exposed (and under which names), what else could be, and the
// explicit `inputs`/`outputs` mappings that re-import it the way the user chose (API.md "ComfyUI workflows").

import type { ComfyInputMapping, ComfyOutputMapping, Graph, GraphNode, NodeDef } from "../api/types";
import { OUTPUT_CLASSES, comfyClass, isComfyType } from "./comfyNodes";
import { isLink } from "./graphFormat";
import { normaliseType } from "./portTypes";

export const MAX_NAME = 64;

export type ExportShape = "api" | "ui";

export type ParsedExport =
  | { ok: true; workflow: Record<string, unknown>; shape: ExportShape; nodeCount: number; unwrapped: string | null }
  | { ok: false; error: string };

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isApiFormat(value: unknown): value is Json {
  return (
    isObject(value) &&
    Object.keys(value).length > 0 &&
    Object.values(value).every((node) => isObject(node) && typeof node.class_type === "string" && (node.inputs === undefined || isObject(node.inputs)))
  );
}

export function isUiFormat(value: unknown): value is Json {
  return isObject(value) && Array.isArray(value.nodes) && (Array.isArray(value.links) || !("links" in value));
}

function shapeOf(value: unknown): ExportShape | null {
  if (isUiFormat(value)) return "ui";
  if (isApiFormat(value)) return "api";
  return null;
}

/**
 * A pasted (or .json) ComfyUI export → the workflow to send. Takes ComfyUI's API format and its UI (save) format
 * as they are, and unwraps the two request bodies people paste by mistake: a runpod worker-comfyui request
 * (`{"input": {"workflow": …}}`) and ComfyUI's own `/prompt` body (`{"prompt": …}`).
 */
export function parseExport(text: string): ParsedExport {
  const trimmed = text.replace(/^\uFEFF/, "").trim();
  if (!trimmed) return { ok: false, error: "Paste the workflow's JSON, or choose a file." };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    return { ok: false, error: `This is not valid JSON: ${(error as Error).message}` };
  }
  let unwrapped: string | null = null;
  if (!shapeOf(value) && isObject(value)) {
    const input = value.input;
    if (isObject(input) && shapeOf(input.workflow)) {
      value = input.workflow;
      unwrapped = "a worker-comfyui request (input.workflow)";
    } else if (shapeOf(value.prompt)) {
      value = value.prompt;
      unwrapped = "a ComfyUI /prompt request (prompt)";
    } else if (shapeOf(value.workflow)) {
      value = value.workflow;
      unwrapped = "an object around the workflow (workflow)";
    }
  }
  const shape = shapeOf(value);
  if (!shape || !isObject(value)) {
    return {
      ok: false,
      error:
        "This is not a ComfyUI workflow. Use Workflow → Export (API) in ComfyUI ({\"3\": {\"class_type\": …, \"inputs\": …}}) " +
        "or Workflow → Save / Export ({\"nodes\": […], \"links\": […]}).",
    };
  }
  const nodeCount = shape === "ui" ? (value.nodes as unknown[]).length : Object.keys(value).length;
  return { ok: true, workflow: value, shape, nodeCount, unwrapped };
}

/** Is this file a PNG (sent as multipart, for the server to read its embedded workflow)? */
export function isPngFile(file: { name: string; type?: string }): boolean {
  return file.type === "image/png" || /\.png$/i.test(file.name);
}

/** A workflow name from a file name: "ComfyUI_00001_.png" → "ComfyUI_00001_", "my flow (API).json" → "my flow (API)". */
export function nameFromFile(fileName: string): string {
  const base = fileName.replace(/\.[^.]+$/, "").trim();
  return (base || "ComfyUI workflow").slice(0, 200);
}

// ---- what an imported graph exposes ------------------------------------------------------------------------

export interface ExposedInputRow {
  /** The API input name (what the caller sends). */
  name: string;
  /** The ComfyUI node id and the input of it that the name feeds. */
  node: string;
  input: string;
  /** The nodeloom input node's type (input.text, input.seed, input.image …). */
  inputType: string;
  default?: unknown;
  required: boolean;
  /** A loader's file (LoadImage's image …): always exposed, its file always comes from the caller. */
  fixed: boolean;
}

export interface ExposedOutputRow {
  name: string;
  /** The ComfyUI output node whose results it returns. */
  node: string;
  type: string;
}

export interface Exposure {
  inputs: ExposedInputRow[];
  outputs: ExposedOutputRow[];
}

const MEDIA = new Set(["image", "video", "audio", "file", "mask"]);

function paramName(node: GraphNode): string | null {
  const name = node.params?.name;
  return typeof name === "string" ? name : null;
}

/** The exposed inputs and outputs of an imported graph: `input.*` nodes linked into ComfyUI nodes, `output.*`
 * nodes linked from ComfyUI output nodes (expose.py builds exactly that). */
export function readExposure(graph: Graph, catalog: Record<string, NodeDef> = {}): Exposure {
  const nodes = graph.nodes ?? [];
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const inputs: ExposedInputRow[] = [];
  for (const target of nodes) {
    if (!isComfyType(target.type)) continue;
    for (const [input, value] of Object.entries(target.inputs ?? {})) {
      if (!isLink(value)) continue;
      const source = byId.get(value.from);
      if (!source || !source.type.startsWith("input.")) continue;
      const name = paramName(source);
      if (name === null) continue;
      const port = catalog[target.type]?.inputs?.find((candidate) => candidate.name === input);
      const mediaInput = ["input.image", "input.video", "input.audio"].includes(source.type);
      inputs.push({
        name,
        node: target.id,
        input,
        inputType: source.type,
        default: source.params?.default,
        required: source.params?.required === true,
        fixed: mediaInput && (port ? MEDIA.has(normaliseType(port.type)) : true),
      });
    }
  }
  const outputs: ExposedOutputRow[] = [];
  for (const node of nodes) {
    if (!node.type.startsWith("output.")) continue;
    const name = paramName(node);
    const link = Object.values(node.inputs ?? {}).find(isLink);
    const source = link ? byId.get(link.from) : undefined;
    if (name === null || !source || !isComfyType(source.type)) continue;
    outputs.push({ name, node: source.id, type: OUTPUT_CLASSES[comfyClass(source.type) ?? ""] ?? node.type.slice("output.".length) });
  }
  return { inputs, outputs };
}

// ---- what else could be exposed ----------------------------------------------------------------------------

export interface InputCandidate {
  node: string;
  input: string;
  /** The node's title in ComfyUI (its label here), else its class. */
  title: string;
  classType: string;
  /** The value the workflow holds (the literal, or the exposed input's default). */
  value: unknown;
  type: string;
}

export interface OutputCandidate {
  node: string;
  title: string;
  classType: string;
  type: string;
}

function comfyNodes(graph: Graph): GraphNode[] {
  return (graph.nodes ?? []).filter((node) => isComfyType(node.type));
}

function titleOf(node: GraphNode): string {
  return node.label || comfyClass(node.type) || node.id;
}

/** Every ComfyUI input that holds a value (or is exposed already): what an explicit mapping may expose. */
export function inputCandidates(graph: Graph, catalog: Record<string, NodeDef> = {}): InputCandidate[] {
  const byId = new Map((graph.nodes ?? []).map((node) => [node.id, node]));
  const out: InputCandidate[] = [];
  for (const node of comfyNodes(graph)) {
    const def = catalog[node.type];
    const declared = def ? def.inputs.map((port) => port.name) : Object.keys(node.inputs ?? {});
    for (const input of declared) {
      const value = node.inputs?.[input];
      let shown: unknown;
      if (isLink(value)) {
        const source = byId.get(value.from);
        if (!source || !source.type.startsWith("input.")) continue; // fed by another node: nothing to expose
        shown = source.params?.default;
      } else if (value === undefined) {
        continue;
      } else {
        shown = value;
      }
      const port = def?.inputs.find((candidate) => candidate.name === input);
      out.push({
        node: node.id,
        input,
        title: titleOf(node),
        classType: comfyClass(node.type) ?? node.type,
        value: shown,
        type: port?.type ?? typeof shown,
      });
    }
  }
  return out;
}

/** Every ComfyUI output node whose results nodeloom returns (SaveImage, PreviewImage, SaveVideo, PreviewAny …). */
export function outputCandidates(graph: Graph): OutputCandidate[] {
  return comfyNodes(graph)
    .filter((node) => (comfyClass(node.type) ?? "") in OUTPUT_CLASSES)
    .map((node) => ({ node: node.id, title: titleOf(node), classType: comfyClass(node.type)!, type: OUTPUT_CLASSES[comfyClass(node.type)!] }));
}

// ---- names and mappings ------------------------------------------------------------------------------------

/** A caller-facing name for a ComfyUI input: camelCase words (`batch_size` → `batchSize`), unique among `taken`. */
export function suggestName(base: string, taken: Iterable<string>): string {
  const words = base.split(/[^A-Za-z0-9]+/).filter(Boolean);
  let name = words.length
    ? words[0].charAt(0).toLowerCase() + words[0].slice(1) + words.slice(1).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("")
    : "input";
  name = name.slice(0, MAX_NAME);
  const used = new Set(taken);
  if (!used.has(name)) return name;
  let n = 2;
  while (used.has(`${name}_${n}`)) n += 1;
  return `${name}_${n}`;
}

/** Why each name cannot be used (by index), or an empty object: 1–64 characters, unique on its side. */
export function nameProblems(names: readonly string[]): Record<number, string> {
  const problems: Record<number, string> = {};
  const counts = new Map<string, number>();
  for (const name of names) counts.set(name.trim(), (counts.get(name.trim()) ?? 0) + 1);
  names.forEach((raw, index) => {
    const name = raw.trim();
    if (!name) problems[index] = "Give it a name.";
    else if (name.length > MAX_NAME) problems[index] = `At most ${MAX_NAME} characters.`;
    else if ((counts.get(name) ?? 0) > 1) problems[index] = `“${name}” is used twice.`;
  });
  return problems;
}

export function inputMappings(rows: readonly Pick<ExposedInputRow, "name" | "node" | "input">[]): Record<string, ComfyInputMapping> {
  const out: Record<string, ComfyInputMapping> = {};
  for (const row of rows) out[row.name.trim()] = { node: row.node, input: row.input };
  return out;
}

export function outputMappings(rows: readonly Pick<ExposedOutputRow, "name" | "node">[]): Record<string, ComfyOutputMapping> {
  const out: Record<string, ComfyOutputMapping> = {};
  for (const row of rows) out[row.name.trim()] = { node: row.node };
  return out;
}

function signature(rows: readonly { name: string; node: string; input?: string }[]): string {
  return rows
    .map((row) => `${row.name.trim()}\u0000${row.node}\u0000${row.input ?? ""}`)
    .sort()
    .join("\u0001");
}

/** Which sides the user changed (and so must be sent as explicit mappings on re-import). */
export function changedSides(
  before: Exposure,
  after: { inputs: readonly { name: string; node: string; input: string }[]; outputs: readonly { name: string; node: string }[] },
): { inputs: boolean; outputs: boolean } {
  return {
    inputs: signature(before.inputs) !== signature(after.inputs),
    outputs: signature(before.outputs) !== signature(after.outputs),
  };
}

/** A short text for a value in the review tables. */
export function summarise(value: unknown, length = 40): string {
  if (value === undefined || value === null) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
