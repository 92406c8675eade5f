// `Nodeloom`: the client. One request path (idempotency keys, bounded retries after Retry-After, typed errors),
// runs followed over Server-Sent Events read from fetch's body stream (resumed with Last-Event-ID, polling as
// the fallback), uploads and downloads. Runtime: `fetch` and web streams only (Node ≥ 18, browsers, Deno, Bun).

import {
  APIError,
  Conflict,
  errorFor,
  ExecutionFailed,
  Forbidden,
  NetworkError,
  parseJson,
  parseRetryAfter,
  RateLimited,
  RunTimeout,
  ServerError,
  StreamError,
} from "./errors.js";
import { parseEventStream } from "./sse.js";
import {
  Media,
  TERMINAL_STATUSES,
  toExecution,
  toUploadedFile,
  type Event,
  type Execution,
  type ExecutionStatus,
  type Graph,
  type Outputs,
  type Page,
  type Progress,
  type Submitted,
  type UploadedFile,
  type Workflow,
} from "./types.js";

export const VERSION = "0.1.0";
export const DEFAULT_BASE_URL = "http://127.0.0.1:8000";
const API = "/api/v1";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;
export type ProgressCallback = (progress: Progress) => unknown;

export interface NodeloomOptions {
  /** The server, e.g. `http://127.0.0.1:8000` (default: `NODELOOM_URL` in Node, else that). `""` means the page's
   * own origin (a dashboard served by the API). */
  baseUrl?: string;
  /** An `sk-…` key (default: `NODELOOM_API_KEY` in Node). Without one no Authorization header is sent: a browser
   * page on the API's origin is then authenticated by its session cookie. */
  apiKey?: string;
  /** The fetch to use (default: the global one). It receives a URL string and an init whose `headers` is a plain
   * object. */
  fetch?: FetchLike;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** How often 429, 502, 503, 504 answers and network failures are retried (default 4). */
  maxRetries?: number;
  /** A Retry-After longer than this (ms) is not waited for: the error is thrown at once (default 120 000). */
  maxRetryWaitMs?: number;
  /** The server sends a keep-alive every 15 s on an idle stream: silence longer than this (ms) is a dead
   * connection (default 45 000). */
  streamReadTimeoutMs?: number;
  /** How often in a row a dropped event stream is reopened before `run` falls back to polling (default 5). */
  streamReconnects?: number;
}

export interface RequestOptions {
  /** A JSON body. */
  json?: unknown;
  /** A body sent as it is (FormData for multipart). */
  body?: BodyInit;
  query?: Record<string, string | number | boolean | null | undefined>;
  headers?: Record<string, string>;
  /** For POSTs: default, a fresh key per call (the same one on each of its retries). */
  idempotencyKey?: string;
  /** Overrides the client's `maxRetries` for this call. */
  retries?: number;
  signal?: AbortSignal;
}

export interface ExecuteOptions {
  /** A published version, or `"draft"` (needs `manage`). Default: the latest published version. */
  version?: number | "draft";
  webhookUrl?: string;
  webhookEvents?: string[];
  idempotencyKey?: string;
  /** Seconds (≤ 60) the server may hold the answer until the run ends (`Prefer: wait=N`). */
  wait?: number;
  retries?: number;
  signal?: AbortSignal;
}

export interface FollowOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Give up (RunTimeout) after this many ms (default 600 000). */
  timeoutMs?: number;
  /** Follow the event stream (default); false polls only. */
  stream?: boolean;
  /** Throw ExecutionFailed for a run that ends FAILED or CANCELLED (default true). */
  raiseOnFailure?: boolean;
}

export type RunOptions = FollowOptions & Omit<ExecuteOptions, "wait" | "retries" | "signal">;

export interface WaitOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** First poll interval (ms, default 250), growing ×1.5 up to `maxIntervalMs` (default 5000). */
  intervalMs?: number;
  maxIntervalMs?: number;
}

export interface EventsOptions {
  /** Start after this event id (Last-Event-ID). */
  lastEventId?: number | null;
  /** Reopen a dropped stream (default true). */
  reconnect?: boolean;
  maxReconnects?: number;
  signal?: AbortSignal;
}

export interface UploadOptions {
  filename?: string;
  contentType?: string;
  signal?: AbortSignal;
}

/** A media output as `download` accepts it: a `Media`, its JSON, or the URL. */
export type Downloadable = Media | { url: string } | string;
export type Inputs = Record<string, unknown>;

/**
 * A client for one nodeloom server and one API key.
 *
 *     const nl = new Nodeloom({ baseUrl: "http://127.0.0.1:8000", apiKey: "sk-..." });
 *     const result = await nl.run("wf_...", { prompt: "a red fox" }, { onProgress: (p) => console.log(p.event, p.nodeId) });
 *     const bytes = await nl.download(result.outputs.image as Media);
 *
 * Every POST carries an `Idempotency-Key` (a retried submission never runs twice); 429, 502, 503 and 504 answers
 * and network failures are retried up to `maxRetries` times, after the answer's Retry-After when it gives one —
 * never when it asks for more than `maxRetryWaitMs`. Other error answers throw their typed error.
 */
export class Nodeloom {
  readonly baseUrl: string;
  readonly maxRetries: number;
  readonly maxRetryWaitMs: number;
  readonly streamReadTimeoutMs: number;
  readonly streamReconnects: number;
  private readonly fetchImpl: FetchLike;
  private readonly defaultHeaders: Record<string, string>;

  constructor(options: NodeloomOptions = {}) {
    const env = nodeEnv();
    const base = options.baseUrl ?? env.NODELOOM_URL ?? DEFAULT_BASE_URL;
    this.baseUrl = base.replace(/\/+$/, "");
    const apiKey = options.apiKey ?? env.NODELOOM_API_KEY;
    this.maxRetries = options.maxRetries ?? 4;
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? 120_000;
    this.streamReadTimeoutMs = options.streamReadTimeoutMs ?? 45_000;
    this.streamReconnects = options.streamReconnects ?? 5;
    const given = options.fetch;
    this.fetchImpl = given ?? ((input, init) => globalThis.fetch(input, init));
    this.defaultHeaders = { ...(apiKey ? { Authorization: `Bearer ${apiKey}` } : {}), ...options.headers };
  }

  // the one request path -----------------------------------------------------------------------------------
  /** One API call: the decoded JSON answer (undefined for 204 or an empty body). Throws the typed error of an
   * error answer. */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options);
    const text = await response.text();
    if (response.status === 204 || !text) return undefined as T;
    const parsed = parseJson(text);
    if (parsed === null && text.trim() !== "null") {
      throw new APIError({ status: response.status, code: "bad_response", message: "the server's answer is not JSON", headers: response.headers });
    }
    return parsed as T;
  }

  /** Sends a request with the retry policy; the Response of a success (status < 400), the typed error else. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const verb = method.toUpperCase();
    const headers: Record<string, string> = { Accept: "application/json", ...this.defaultHeaders, ...options.headers };
    if (verb === "POST" && !hasHeader(headers, "idempotency-key")) {
      headers["Idempotency-Key"] = options.idempotencyKey ?? newIdempotencyKey(); // the same key on every retry
    }
    let body: BodyInit | undefined = options.body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    const url = this.url(path, options.query);
    const budget = options.retries ?? this.maxRetries;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetchImpl(url, { method: verb, headers: { ...headers }, body, signal: options.signal });
      } catch (cause) {
        if (isAbort(cause, options.signal)) throw cause;
        if (attempt >= budget) throw new NetworkError(`could not reach ${url}: ${describe(cause)}`, { cause });
        await sleep(backoff(attempt), options.signal);
        continue;
      }
      if (response.status < 400) return response;
      const text = await response.text().catch(() => "");
      const error = errorFor(response.status, parseJson(text), response.headers, text);
      const delay = this.retryDelay(error, attempt, budget);
      if (delay === null) throw error;
      await sleep(delay, options.signal);
    }
  }

  /** How long to wait (ms) before retrying after `error`, or null to throw it. */
  private retryDelay(error: APIError, attempt: number, budget: number): number | null {
    if (attempt >= budget) return null;
    if (error instanceof RateLimited) {
      const wait = error.retryAfter !== null ? error.retryAfter * 1000 : backoff(attempt);
      return wait <= this.maxRetryWaitMs ? wait + Math.random() * 250 : null;
    }
    if (error instanceof ServerError && [502, 503, 504].includes(error.status)) {
      const asked = parseRetryAfter(error.headers["retry-after"]);
      const wait = asked === null ? backoff(attempt) : asked * 1000;
      return wait <= this.maxRetryWaitMs ? wait : null;
    }
    if (error instanceof Conflict && error.code === "idempotency_key_in_use") return backoff(attempt);
    return null;
  }

  /** An absolute URL for an API path (or the URL itself when it is one). */
  url(path: string, query?: RequestOptions["query"]): string {
    let url = /^[a-z][a-z0-9+.-]*:/i.test(path) ? path : `${this.baseUrl}${path.startsWith("/") ? "" : "/"}${path}`;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
      const qs = params.toString();
      if (qs) url += (url.includes("?") ? "&" : "?") + qs;
    }
    return url;
  }

  // workflows ---------------------------------------------------------------------------------------------------
  /** The account's workflows (newest first), every page followed up to `limit`; `q` searches names. */
  workflows(q?: string, options: { limit?: number; signal?: AbortSignal } = {}): Promise<Workflow[]> {
    return this.pages<Workflow>(`${API}/workflows`, { q }, options.limit, options.signal);
  }

  getWorkflow(workflowId: string): Promise<Workflow> {
    return this.request<Workflow>("GET", `${API}/workflows/${enc(workflowId)}`);
  }

  createWorkflow(name: string, graph: Graph, description = ""): Promise<Workflow> {
    return this.request<Workflow>("POST", `${API}/workflows`, { json: { name, graph, description } });
  }

  /** Edits the draft. */
  updateWorkflow(workflowId: string, fields: { name?: string; description?: string; graph?: Graph }): Promise<Workflow> {
    return this.request<Workflow>("PUT", `${API}/workflows/${enc(workflowId)}`, { json: fields });
  }

  async deleteWorkflow(workflowId: string): Promise<void> {
    await this.request("DELETE", `${API}/workflows/${enc(workflowId)}`);
  }

  /** Snapshots the draft as the next immutable version. */
  publish(workflowId: string): Promise<{ workflowId: string; version: number; publishedAt: string }> {
    return this.request("POST", `${API}/workflows/${enc(workflowId)}/publish`);
  }

  validate(graph: Graph): Promise<{ valid: boolean; errors: { path: string; message: string }[] }> {
    return this.request("POST", `${API}/workflows/validate`, { json: { graph } });
  }

  estimate(workflowId: string, inputs: Inputs = {}): Promise<{ credits: number; balance: number; sufficient: boolean; breakdown: unknown[] }> {
    return this.request("POST", `${API}/workflows/${enc(workflowId)}/estimate`, { json: { inputs } });
  }

  // executions --------------------------------------------------------------------------------------------------
  /** Submits a run (202). `Blob`/`File` input values are uploaded first and sent as file ids. */
  async execute(workflowId: string, inputs: Inputs = {}, options: ExecuteOptions = {}): Promise<Submitted> {
    const body: Record<string, unknown> = { inputs: await this.prepareInputs(inputs, options.signal) };
    if (options.version !== undefined) body.version = options.version;
    if (options.webhookUrl) body.webhookUrl = options.webhookUrl;
    if (options.webhookEvents) body.webhookEvents = options.webhookEvents;
    const headers: Record<string, string> = {};
    if (options.wait) headers.Prefer = `wait=${Math.floor(options.wait)}`;
    const response = await this.send("POST", `${API}/workflows/${enc(workflowId)}/execute`, {
      json: body,
      headers,
      idempotencyKey: options.idempotencyKey,
      retries: options.retries,
      signal: options.signal,
    });
    const raw = asObject(parseJson(await response.text()));
    return {
      executionId: String(raw.executionId ?? ""),
      status: String(raw.status ?? "") as ExecutionStatus,
      pollUrl: typeof raw.pollUrl === "string" ? raw.pollUrl : null,
      replayed: response.headers.get("idempotent-replayed") === "true",
      raw,
    };
  }

  async poll<O = Outputs>(executionId: string, options: { signal?: AbortSignal } = {}): Promise<Execution<O>> {
    const body = await this.request("GET", `${API}/workflows/executions/${enc(executionId)}/poll`, options);
    return toExecution<O>(body);
  }

  /** Polls with back-off (×1.5 up to `maxIntervalMs`) until the execution ends; RunTimeout after `timeoutMs`. */
  wait<O = Outputs>(executionId: string, options: WaitOptions = {}): Promise<Execution<O>> {
    return this.pollUntilDone<O>(executionId, new Tracker(executionId, options.onProgress), options);
  }

  /** Submits a run and follows it to its end: the final Execution (outputs typed, media as `Media`). Progress comes
   * from the event stream — resumed with Last-Event-ID when the connection drops, replaced by polling with
   * back-off when it cannot be reopened. A FAILED or CANCELLED run throws ExecutionFailed unless
   * `raiseOnFailure: false`. */
  async run<O = Outputs>(workflowId: string, inputs: Inputs = {}, options: RunOptions = {}): Promise<Execution<O>> {
    const submitted = await this.execute(workflowId, inputs, {
      version: options.version,
      webhookUrl: options.webhookUrl,
      webhookEvents: options.webhookEvents,
      idempotencyKey: options.idempotencyKey,
      signal: options.signal,
    });
    return this.follow<O>(submitted.executionId, options);
  }

  /** Follows an execution already submitted to its end (what `run` does after submitting). */
  async follow<O = Outputs>(executionId: string, options: FollowOptions = {}): Promise<Execution<O>> {
    const timeoutMs = options.timeoutMs ?? 600_000;
    const controller = new AbortController();
    const outer = options.signal;
    const onAbort = () => controller.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    outer?.addEventListener("abort", onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new RunTimeout(`execution ${executionId} did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    let execution: Execution<O>;
    try {
      execution = await this.followInner<O>(executionId, options, controller.signal, timeoutMs);
    } catch (error) {
      if (timedOut) throw new RunTimeout(`execution ${executionId} did not end within ${timeoutMs} ms`);
      throw error;
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    }
    if ((options.raiseOnFailure ?? true) && !execution.ok) throw new ExecutionFailed(execution as Execution);
    return execution;
  }

  private async followInner<O>(executionId: string, options: FollowOptions, signal: AbortSignal, timeoutMs: number): Promise<Execution<O>> {
    const tracker = new Tracker(executionId, options.onProgress);
    const first = await this.poll<O>(executionId, { signal }); // every node, so progress knows the whole graph
    await tracker.polled(first, false);
    if (first.done) {
      await tracker.polled(first);
      return first;
    }
    if (options.stream ?? true) {
      try {
        for await (const event of this.events(executionId, { signal })) {
          await tracker.event(event);
          if (event.terminal) break;
        }
      } catch (error) {
        if (!(error instanceof StreamError)) throw error; // the stream cannot be had: poll instead
      }
    }
    return this.pollUntilDone<O>(executionId, tracker, { signal, timeoutMs }); // after the stream: one poll
  }

  private async pollUntilDone<O>(executionId: string, tracker: Tracker, options: WaitOptions): Promise<Execution<O>> {
    const timeoutMs = options.timeoutMs ?? 600_000;
    const deadline = Date.now() + timeoutMs;
    let delay = options.intervalMs ?? 250;
    const maxDelay = options.maxIntervalMs ?? 5000;
    while (true) {
      const execution = await this.poll<O>(executionId, { signal: options.signal });
      await tracker.polled(execution);
      if (execution.done) return execution;
      if (Date.now() + delay > deadline) {
        throw new RunTimeout(`execution ${executionId} still ${execution.status} after ${timeoutMs} ms`);
      }
      await sleep(delay, options.signal);
      delay = Math.min(maxDelay, delay * 1.5);
    }
  }

  /**
   * The execution's server-sent events, from the first (or after `lastEventId`) until the terminal one. A dropped
   * connection is reopened with `Last-Event-ID` (no event lost or repeated), with back-off, up to `maxReconnects`
   * times in a row without a new event; then StreamError.
   */
  async *events(executionId: string, options: EventsOptions = {}): AsyncGenerator<Event, void, undefined> {
    let last = options.lastEventId ?? null;
    let failures = 0;
    const maxReconnects = options.maxReconnects ?? this.streamReconnects;
    const signal = options.signal;
    while (true) {
      let received = 0;
      try {
        for await (const event of this.streamOnce(executionId, last, signal)) {
          received += 1;
          failures = 0;
          if (event.id !== null) last = event.id;
          yield event;
          if (event.terminal) return;
        }
        if (received === 0) return; // a clean end with nothing new: the execution had ended and we saw it all
        // a clean end without the terminal event: reconnect and ask for what follows
      } catch (error) {
        if (isAbort(error, signal)) throw error;
        const retriable =
          !(error instanceof APIError) || error instanceof RateLimited || (error instanceof ServerError && [502, 503, 504].includes(error.status));
        if (!retriable) throw error;
        const delay = error instanceof RateLimited && error.retryAfter ? error.retryAfter * 1000 : backoff(failures);
        if (options.reconnect === false || failures >= maxReconnects || delay > this.maxRetryWaitMs) {
          throw new StreamError(`event stream of ${executionId} lost: ${describe(error)}`, { cause: error });
        }
        await sleep(delay, signal);
        failures += 1;
      }
    }
  }

  private async *streamOnce(executionId: string, last: number | null, signal?: AbortSignal): AsyncGenerator<Event, void, undefined> {
    const headers: Record<string, string> = { ...this.defaultHeaders, Accept: "text/event-stream", "Cache-Control": "no-cache" };
    if (last !== null) headers["Last-Event-ID"] = String(last);
    const response = await this.fetchImpl(this.url(`${API}/workflows/executions/${enc(executionId)}/events`), {
      method: "GET",
      headers,
      signal,
    });
    if (response.status >= 400) {
      const text = await response.text().catch(() => "");
      throw errorFor(response.status, parseJson(text), response.headers, text);
    }
    if (!response.body) throw new StreamError("the answer has no body stream");
    yield* parseEventStream(response.body, { readTimeoutMs: this.streamReadTimeoutMs, signal });
  }

  async cancel(executionId: string): Promise<Record<string, unknown>> {
    return asObject(await this.request("POST", `${API}/workflows/executions/${enc(executionId)}/cancel`));
  }

  /** The account's executions, newest first (`limit: null` follows every page; default 20). */
  executions(options: { workflowId?: string; status?: ExecutionStatus; limit?: number | null; signal?: AbortSignal } = {}): Promise<Record<string, unknown>[]> {
    const limit = options.limit === undefined ? 20 : options.limit ?? undefined;
    return this.pages(`${API}/workflows/executions`, { workflowId: options.workflowId, status: options.status }, limit, options.signal);
  }

  async deleteExecution(executionId: string): Promise<void> {
    await this.request("DELETE", `${API}/workflows/executions/${enc(executionId)}`);
  }

  // files -------------------------------------------------------------------------------------------------------
  /** Uploads a file (a Blob/File, or bytes); pass the answer's `fileId` as an image/video/audio/file input. */
  async upload(data: Blob | Uint8Array | ArrayBuffer, options: UploadOptions = {}): Promise<UploadedFile> {
    const named = typeof File !== "undefined" && data instanceof File ? data.name : undefined;
    const contentType = options.contentType ?? (data instanceof Blob && data.type ? data.type : guessType(options.filename ?? named));
    const blob = data instanceof Blob && !options.contentType ? data : new Blob([data as BlobPart], { type: contentType });
    const form = new FormData();
    form.append("file", blob, options.filename ?? named ?? "upload");
    const body = await this.request("POST", `${API}/uploads`, { body: form, signal: options.signal });
    return toUploadedFile(body);
  }

  /** The bytes of a media output (a `Media`, its JSON, or a URL). The signed link needs no key, and the key is
   * never sent with it. */
  async download(output: Downloadable, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const link = typeof output === "string" ? output : output.url;
    const url = this.url(link);
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetchImpl(url, { method: "GET", headers: {}, signal: options.signal, credentials: "omit" });
      } catch (cause) {
        if (isAbort(cause, options.signal)) throw cause;
        if (attempt >= this.maxRetries) throw new NetworkError(`could not download ${url}: ${describe(cause)}`, { cause });
        await sleep(backoff(attempt), options.signal);
        continue;
      }
      if (response.status >= 400) {
        const text = await response.text().catch(() => "");
        const error = errorFor(response.status, parseJson(text), response.headers, text);
        const delay = this.retryDelay(error, attempt, this.maxRetries);
        if (delay === null) throw error;
        await sleep(delay, options.signal);
        continue;
      }
      return new Uint8Array(await response.arrayBuffer());
    }
  }

  // account -----------------------------------------------------------------------------------------------------
  /** `{plan, credits: {balance}, executions, rateLimits: {…, concurrency}, daily}` (needs `usage`). */
  usage(): Promise<Record<string, unknown>> {
    return this.request("GET", `${API}/usage`);
  }

  /** `{id, name, plan, credits, webhookSecret}` (needs `manage`). */
  account(): Promise<Record<string, unknown> & { webhookSecret?: string }> {
    return this.request("GET", `${API}/account`);
  }

  async nodes(): Promise<Record<string, unknown>[]> {
    const page = await this.request<{ data?: Record<string, unknown>[] }>("GET", `${API}/nodes`);
    return page?.data ?? [];
  }

  /** How many of the account's executions may run at once (null when the key may not read usage). */
  async concurrencyCap(): Promise<number | null> {
    try {
      const usage = await this.usage();
      const value = asObject(usage.rateLimits).concurrency;
      return typeof value === "number" && value > 0 ? value : null;
    } catch (error) {
      if (error instanceof Forbidden) return null;
      throw error;
    }
  }

  // helpers -----------------------------------------------------------------------------------------------------
  private async pages<T>(path: string, params: Record<string, string | undefined>, limit: number | undefined, signal?: AbortSignal): Promise<T[]> {
    const found: T[] = [];
    let cursor: string | null = null;
    while (true) {
      const size = limit !== undefined ? Math.min(100, limit - found.length) : 100;
      const page: Page<T> = await this.request("GET", path, { query: { ...params, limit: size, cursor }, signal });
      found.push(...(page?.data ?? []));
      cursor = page?.nextCursor ?? null;
      if (!cursor || (limit !== undefined && found.length >= limit)) return limit !== undefined ? found.slice(0, limit) : found;
    }
  }

  private async prepareInputs(inputs: Inputs, signal?: AbortSignal): Promise<Inputs> {
    const prepared: Inputs = {};
    for (const [name, value] of Object.entries(inputs)) {
      prepared[name] = typeof Blob !== "undefined" && value instanceof Blob ? (await this.upload(value, { signal })).fileId : value;
    }
    return prepared;
  }
}

/** Turns events (or successive polls) into Progress calls: every node's status, each change once. */
class Tracker {
  readonly nodes: Record<string, string> = {};
  private readonly seen = new Set<string>();

  constructor(
    private readonly executionId: string,
    private readonly callback: ProgressCallback | undefined,
  ) {}

  async event(event: Event): Promise<void> {
    const node = event.nodeId;
    const status = ({ "node.started": "RUNNING", "node.completed": "COMPLETED", "node.failed": "FAILED" } as Record<string, string>)[event.event];
    if (node !== null && status !== undefined) this.nodes[node] = status;
    if (event.event === "node.progress") {
      // native nodes send a fraction, ComfyUI segments {value, max}
      let value = num(event.data.value);
      let max = num(event.data.max);
      if (value === null && num(event.data.progress) !== null) {
        value = num(event.data.progress);
        max = 1;
      }
      await this.emit(event.event, node, event.data, value, max);
    } else {
      this.seen.add(key(event.event, node));
      await this.emit(event.event, node, event.data);
    }
  }

  /** Announces what a poll shows that no event did (nodes whose status moved, the execution's end). */
  async polled(execution: Execution<unknown>, announce = true): Promise<void> {
    for (const [node, state] of Object.entries(execution.nodes)) {
      const previous = this.nodes[node];
      this.nodes[node] = previous === undefined || state.status !== "QUEUED" ? state.status : previous;
      if (!announce) continue;
      const name = ({ RUNNING: "node.started", COMPLETED: "node.completed", FAILED: "node.failed" } as Record<string, string>)[state.status];
      if (name !== undefined && !this.seen.has(key(name, node))) {
        if (name !== "node.started" && !this.seen.has(key("node.started", node))) {
          this.seen.add(key("node.started", node));
          await this.emit("node.started", node, { nodeId: node });
        }
        this.seen.add(key(name, node));
        await this.emit(name, node, { nodeId: node, status: state.status });
      }
    }
    if (announce && execution.done) {
      const name = `execution.${execution.status.toLowerCase()}`;
      if (!this.seen.has(key(name, null))) {
        this.seen.add(key(name, null));
        await this.emit(name, null, execution.raw);
      }
    }
  }

  private async emit(event: string, nodeId: string | null, data: Record<string, unknown>, value: number | null = null, max: number | null = null): Promise<void> {
    if (!this.callback) return;
    const states = Object.values(this.nodes);
    const ended = states.filter((s) => TERMINAL_STATUSES.has(s)).length;
    const fraction = event.startsWith("execution.") && event !== "execution.started" ? 1 : states.length ? ended / states.length : 0;
    await this.callback({ executionId: this.executionId, event, nodeId, nodes: { ...this.nodes }, fraction, value, max, data });
  }
}

/** A fresh idempotency key: `nlc-` and a random UUID. */
export function newIdempotencyKey(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c?.randomUUID) return `nlc-${c.randomUUID()}`;
  const bytes = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `nlc-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Exponential back-off with jitter, in ms: about 500, 1000, 2000 … capped at 30 000. */
export function backoff(attempt: number): number {
  return Math.min(30_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return Boolean(signal?.aborted) || (error instanceof Error && error.name === "AbortError");
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function key(event: string, node: string | null): string {
  return `${event}\u0000${node ?? ""}`;
}

function enc(value: string): string {
  return encodeURIComponent(value);
}

const TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
  mp4: "video/mp4",
  webm: "video/webm",
  mp3: "audio/mpeg",
  wav: "audio/wav",
  json: "application/json",
  txt: "text/plain",
};

function guessType(filename: string | undefined): string {
  const ext = filename?.split(".").pop()?.toLowerCase();
  return (ext && TYPES[ext]) || "application/octet-stream";
}

function nodeEnv(): Record<string, string | undefined> {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env ?? {};
}

