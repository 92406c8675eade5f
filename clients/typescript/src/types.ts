// What the API answers, as typed values. Hand-written on purpose: they are the client's public contract and stay
// stable while the generated OpenAPI types (./generated/openapi.ts) follow the server's document. Each keeps the
// decoded JSON it came from in `raw`, so a field the server adds later is never lost.

import { isObject } from "./errors.js";

export type ExecutionStatus = "QUEUED" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED";
export type NodeStatus = ExecutionStatus | "SKIPPED" | (string & {});

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
export const TERMINAL_EVENTS: ReadonlySet<string> = new Set(["execution.completed", "execution.failed", "execution.cancelled"]);

/** The event types of an execution's stream (GET …/events). */
export type EventType =
  | "execution.started"
  | "node.started"
  | "node.progress"
  | "node.completed"
  | "node.failed"
  | "execution.completed"
  | "execution.failed"
  | "execution.cancelled"
  | (string & {});

/** A media output (image, video, audio, file): a signed, expiring `url` usable without a key. Pass it to
 * `download(output)`. */
export class Media {
  readonly url: string;
  readonly contentType: string | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly durationS: number | null;
  readonly raw: Record<string, unknown>;

  constructor(value: Record<string, unknown>) {
    this.url = String(value.url);
    this.contentType = typeof value.contentType === "string" ? value.contentType : null;
    this.width = typeof value.width === "number" ? value.width : null;
    this.height = typeof value.height === "number" ? value.height : null;
    this.durationS = typeof value.durationS === "number" ? value.durationS : null;
    this.raw = value;
  }

  /** The JSON the server sent (what `JSON.stringify` writes). */
  toJSON(): Record<string, unknown> {
    return this.raw;
  }
}

/** An output value: JSON, with media objects as `Media` (lists and objects walked). */
export type OutputValue = Media | string | number | boolean | null | OutputValue[] | { [key: string]: OutputValue };
export type Outputs = Record<string, OutputValue>;

/** Why an execution (or one node) failed. */
export interface ExecutionError {
  code: string;
  message: string;
  nodeId: string | null;
  raw: Record<string, unknown>;
}

/** One node of an execution, as the poll body's `nodes` has it. */
export interface NodeState {
  status: NodeStatus;
  startedAt: string | null;
  completedAt: string | null;
  cached: boolean;
  credits: number;
  outputs: Record<string, OutputValue> | null;
  error: ExecutionError | null;
  skipped: boolean;
}

/** An execution as `GET …/poll` describes it. `outputs` maps each output's name to its value (media as `Media`);
 * give `run<{…}>()` the shape you expect to type them. */
export interface Execution<O = Outputs> {
  executionId: string;
  status: ExecutionStatus;
  workflowId: string | null;
  version: number | string | null;
  progress: number;
  queuePosition: number | null;
  createdAt: string | null;
  startedAt: string | null;
  completedAt: string | null;
  creditsUsed: number;
  outputs: O;
  nodes: Record<string, NodeState>;
  error: ExecutionError | null;
  /** The status is COMPLETED, FAILED or CANCELLED. */
  done: boolean;
  /** The status is COMPLETED. */
  ok: boolean;
  raw: Record<string, unknown>;
}

/** The answer to a submission: 202 with the new execution's id (or 200 with the end, after `Prefer: wait`). */
export interface Submitted {
  executionId: string;
  status: ExecutionStatus;
  pollUrl: string | null;
  /** The server replayed an earlier answer to the same Idempotency-Key. */
  replayed: boolean;
  raw: Record<string, unknown>;
}

/** One server-sent event: its `id` (a sequence number, what Last-Event-ID resumes after), its type in `event`,
 * its JSON `data`. */
export interface Event {
  id: number | null;
  event: EventType;
  data: Record<string, unknown>;
  /** `data.nodeId`, for node.* events. */
  nodeId: string | null;
  /** One of execution.completed|failed|cancelled: the stream ends after it. */
  terminal: boolean;
}

/**
 * What `onProgress` receives, once per event (or per change seen while polling). `event` is the event type;
 * `nodeId` names the node for node.* events; `nodes` is every node's status known so far; `fraction` the share
 * of known nodes that have ended (0..1); `value`/`max` a node's own progress when it reports one (a fraction of
 * 1, or ComfyUI's step counts); `data` the event's JSON.
 */
export interface Progress {
  executionId: string;
  event: EventType;
  nodeId: string | null;
  nodes: Record<string, string>;
  fraction: number;
  value: number | null;
  max: number | null;
  data: Record<string, unknown>;
}

/** An uploaded file: pass `fileId` as an image/video/audio/file input. */
export interface UploadedFile {
  fileId: string;
  url: string;
  contentType: string | null;
  size: number | null;
  raw: Record<string, unknown>;
}

/** A workflow graph: nodes with literal `params` and `inputs` (links `{from, output}` or literals). */
export interface Graph {
  nodes: GraphNode[];
  [extra: string]: unknown;
}

export interface GraphNode {
  id: string;
  type: string;
  params?: Record<string, unknown>;
  inputs?: Record<string, unknown>;
  [extra: string]: unknown;
}

/** A workflow as the API answers it (the fields the client relies on; the rest are kept too). */
export interface Workflow {
  id: string;
  name: string;
  description?: string;
  graph: Graph;
  publishedVersion?: number | null;
  webhookId?: string | null;
  [extra: string]: unknown;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

// ---- from JSON ----------------------------------------------------------------------------------------------

/** An output value with media objects as `Media` (lists and objects walked). */
export function typedValue(value: unknown): OutputValue {
  if (Array.isArray(value)) return value.map(typedValue);
  if (isObject(value)) {
    if (typeof value.url === "string" && "contentType" in value) return new Media(value);
    const out: Record<string, OutputValue> = {};
    for (const [k, v] of Object.entries(value)) out[k] = typedValue(v);
    return out;
  }
  return value as OutputValue;
}

export function toExecutionError(value: unknown): ExecutionError | null {
  if (!isObject(value)) return null;
  return {
    code: String(value.code ?? "error"),
    message: String(value.message ?? ""),
    nodeId: typeof value.nodeId === "string" ? value.nodeId : null,
    raw: value,
  };
}

export function toNodeState(value: Record<string, unknown>): NodeState {
  return {
    status: String(value.status ?? ""),
    startedAt: str(value.startedAt),
    completedAt: str(value.completedAt),
    cached: Boolean(value.cached),
    credits: Number(value.credits ?? 0) || 0,
    outputs: isObject(value.outputs) ? (typedValue(value.outputs) as Record<string, OutputValue>) : null,
    error: toExecutionError(value.error),
    skipped: Boolean(value.skipped),
  };
}

export function toExecution<O = Outputs>(body: unknown): Execution<O> {
  const b = isObject(body) ? body : {};
  const status = String(b.status ?? "") as ExecutionStatus;
  const nodes: Record<string, NodeState> = {};
  if (isObject(b.nodes)) for (const [id, v] of Object.entries(b.nodes)) if (isObject(v)) nodes[id] = toNodeState(v);
  return {
    executionId: String(b.executionId ?? ""),
    status,
    workflowId: str(b.workflowId),
    version: typeof b.version === "number" || typeof b.version === "string" ? b.version : null,
    progress: Number(b.progress ?? 0) || 0,
    queuePosition: typeof b.queuePosition === "number" ? b.queuePosition : null,
    createdAt: str(b.createdAt),
    startedAt: str(b.startedAt),
    completedAt: str(b.completedAt),
    creditsUsed: Number(b.creditsUsed ?? 0) || 0,
    outputs: (isObject(b.outputs) ? typedValue(b.outputs) : {}) as O,
    nodes,
    error: toExecutionError(b.error),
    done: TERMINAL_STATUSES.has(status),
    ok: status === "COMPLETED",
    raw: b,
  };
}

export function toUploadedFile(body: unknown): UploadedFile {
  const b = isObject(body) ? body : {};
  return {
    fileId: String(b.fileId ?? ""),
    url: String(b.url ?? ""),
    contentType: str(b.contentType),
    size: typeof b.size === "number" ? b.size : null,
    raw: b,
  };
}

export function toEvent(id: number | null, event: string, data: Record<string, unknown>): Event {
  const node = data.nodeId;
  return {
    id,
    event,
    data,
    nodeId: node === undefined || node === null ? null : String(node),
    terminal: TERMINAL_EVENTS.has(event),
  };
}

function str(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}
