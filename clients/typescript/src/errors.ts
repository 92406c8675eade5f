// Typed errors: one class per kind of answer, built from the API's envelope {"error": {code, message, ...}}.

import type { Execution } from "./types.js";

/** Base class of everything this client throws on purpose. */
export class NodeloomError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Where a request was wrong: `path` like `nodes[2].inputs.width` or `inputs.prompt`. */
export interface ErrorDetail {
  path: string;
  message: string;
}

/** One line of a price: a node (or a ComfyUI segment, with its `nodes`) and its credits. */
export interface CreditLine {
  nodeId: string;
  nodeType: string;
  credits: number;
  nodes: string[];
}

export interface APIErrorInit {
  status: number;
  code: string;
  message: string;
  /** The whole decoded answer (`{error: {...}}` for the envelope); null when it was not JSON. */
  body?: unknown;
  headers?: HeadersLike | null;
}

export type HeadersLike = Headers | Record<string, string | string[] | undefined> | Iterable<[string, string]>;

/**
 * An error answer from the API. `status` is the HTTP status, `code` the envelope's snake_case code
 * (`rate_limited`, `invalid_inputs`, …), `message` its sentence, `body` the whole decoded answer, `error` the
 * envelope's `error` object, `details` its `details[]` (any status may carry them), `requestId` the server's
 * `X-Request-Id` (quote it when reporting a problem).
 */
export class APIError extends NodeloomError {
  readonly status: number;
  readonly code: string;
  readonly body: unknown;
  /** Response headers, names lower-cased. */
  readonly headers: Record<string, string>;
  readonly requestId: string | null;
  readonly details: ErrorDetail[];

  constructor(init: APIErrorInit) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.body = init.body ?? null;
    this.headers = lowerHeaders(init.headers);
    this.requestId = this.headers["x-request-id"] ?? null;
    const details = this.error.details;
    this.details = Array.isArray(details)
      ? details.filter(isObject).map((d) => ({ path: String(d.path ?? ""), message: String(d.message ?? "") }))
      : [];
  }

  /** The envelope's `error` object (empty when the body was not the envelope). */
  get error(): Record<string, unknown> {
    const err = isObject(this.body) ? this.body.error : undefined;
    return isObject(err) ? err : {};
  }
}

/** 400: the request could not be read. */
export class BadRequest extends APIError {}

/** 401: no key, a malformed key, or an unknown, revoked or expired one. */
export class Unauthorized extends APIError {}

/** 402: the balance does not cover the run; `required`, `balance` and the per-node `breakdown` say by how much
 * (an anonymous webhook trigger gets neither balance nor breakdown). */
export class InsufficientCredits extends APIError {
  readonly required: number | null;
  readonly balance: number | null;
  readonly breakdown: CreditLine[];

  constructor(init: APIErrorInit) {
    super(init);
    const err = this.error;
    this.required = toNumber(err.required);
    this.balance = toNumber(err.balance);
    this.breakdown = (Array.isArray(err.breakdown) ? err.breakdown : []).filter(isObject).map((line) => ({
      nodeId: String(line.nodeId ?? ""),
      nodeType: String(line.nodeType ?? ""),
      credits: toNumber(line.credits) ?? 0,
      nodes: Array.isArray(line.nodes) ? line.nodes.map(String) : [],
    }));
  }
}

/** 403: the key is valid but lacks the scope the operation needs (or a file link's signature is bad). */
export class Forbidden extends APIError {}

/** 404: no such thing in this account (another account's resources are 404 too, never 403). */
export class NotFound extends APIError {}

/** 409: `workflow_not_published`, `execution_finished`, `idempotency_key_in_use`, … */
export class Conflict extends APIError {}

/** 413: the body or the upload is over the server's size limit. */
export class PayloadTooLarge extends APIError {}

/** 422: the graph, the inputs or the body is invalid; `details` says where. */
export class ValidationFailed extends APIError {}

/** 429: a request rate, execution rate or daily quota is spent (`code` says which); `retryAfter` is how many
 * seconds to wait (the envelope's `retryAfter`, else the `Retry-After` header). */
export class RateLimited extends APIError {
  readonly retryAfter: number | null;

  constructor(init: APIErrorInit) {
    super(init);
    this.retryAfter = toNumber(this.error.retryAfter) ?? parseRetryAfter(this.headers["retry-after"]);
  }
}

/** 5xx: something went wrong on the server's side (`requestId` identifies it). */
export class ServerError extends APIError {}

/** The server could not be reached (after the client's retries); `cause` is what fetch threw. */
export class NetworkError extends NodeloomError {
  readonly code = "network_error";
}

/** The event stream could not be (re)opened; `run` then falls back to polling. */
export class StreamError extends NodeloomError {}

/** An execution did not end within the time given. */
export class RunTimeout extends NodeloomError {}

/** An execution ended FAILED or CANCELLED; `execution` is its final state (`execution.error` has the code,
 * message and the failing node). */
export class ExecutionFailed extends NodeloomError {
  readonly execution: Execution;

  constructor(execution: Execution) {
    const err = execution.error;
    super(`execution ${execution.executionId} ended ${execution.status}${err ? `: ${err.code}: ${err.message}` : ""}`);
    this.execution = execution;
  }
}

/** Not a fresh message signed with the secret: answer it with 4xx and ignore it. */
export class WebhookVerificationError extends NodeloomError {}

type APIErrorClass = new (init: APIErrorInit) => APIError;

const BY_STATUS: Record<number, APIErrorClass> = {
  400: BadRequest,
  401: Unauthorized,
  402: InsufficientCredits,
  403: Forbidden,
  404: NotFound,
  409: Conflict,
  413: PayloadTooLarge,
  422: ValidationFailed,
  429: RateLimited,
};

/** The class of error an answer with this status becomes. */
export function errorClassFor(status: number): APIErrorClass {
  return BY_STATUS[status] ?? (status >= 500 ? ServerError : APIError);
}

/** The typed error for an answer's status and decoded body (`text` is the raw body, for a message when the
 * answer was not the envelope). */
export function errorFor(status: number, body: unknown, headers?: HeadersLike | null, text = ""): APIError {
  const err = isObject(body) && isObject(body.error) ? body.error : {};
  const code = typeof err.code === "string" && err.code ? err.code : `http_${status}`;
  const message = typeof err.message === "string" && err.message ? err.message : text.trim().slice(0, 500) || `HTTP ${status}`;
  const Class = errorClassFor(status);
  return new Class({ status, code, message, body, headers });
}

/** Reads a failed `Response` (its body is consumed) into its typed error. */
export async function errorFromResponse(response: Response): Promise<APIError> {
  const text = await response.text().catch(() => "");
  return errorFor(response.status, parseJson(text), response.headers, text);
}

/** `Retry-After` as seconds (delta-seconds, or an HTTP date); null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined): number | null {
  if (value === null || value === undefined || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

export function parseJson(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

export function lowerHeaders(headers: HeadersLike | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  const entries: Iterable<[string, unknown]> =
    typeof (headers as Headers).forEach === "function" && typeof (headers as Headers).get === "function"
      ? (headers as Headers).entries()
      : Symbol.iterator in (headers as object)
        ? (headers as Iterable<[string, string]>)
        : Object.entries(headers as Record<string, unknown>);
  for (const [name, value] of entries) {
    if (value === undefined || value === null) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function toNumber(value: unknown): number | null {
  if (value === null || value === undefined || value === "" || typeof value === "boolean") return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}
