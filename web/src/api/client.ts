// The HTTP transport: one `request` function that speaks the error envelope and CSRF, and the dashboard's
// instance of @nodeloom/client (runs, polls, event streams, uploads) over the same session-aware fetch.
// Everything under /api/v1 is same-origin, so the session cookie rides along by itself.

import { APIError, errorClassFor, errorFor, Nodeloom, parseJson } from "@nodeloom/client";

export const API_BASE = "/api/v1";

/** Every failed call is an ApiError (@nodeloom/client's APIError: `NotFound`, `ValidationFailed`, … by status)
 * carrying the envelope's code, message and details; `body` is the whole answer, `error` its envelope. */
export const ApiError = APIError;
export type ApiError = APIError;

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  query?: Query;
  /** A JSON body; FormData is sent as multipart as it is. */
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Do not announce a 401 to the session (used by the calls that probe the session). */
  quietUnauthorized?: boolean;
}

type Listener = (error: ApiError) => void;

interface ClientState {
  csrfToken: string | null;
  onUnauthorized: Listener | null;
  refreshCsrf: (() => Promise<string | null>) | null;
  fetchImpl: typeof fetch | null;
}

const state: ClientState = { csrfToken: null, onUnauthorized: null, refreshCsrf: null, fetchImpl: null };

export function setCsrfToken(token: string | null): void {
  state.csrfToken = token;
}

export function getCsrfToken(): string | null {
  return state.csrfToken;
}

/** Wiring done once by the app (and by tests): who hears about an expired session, how to refetch CSRF. */
export function configureClient(options: {
  onUnauthorized?: Listener | null;
  refreshCsrf?: (() => Promise<string | null>) | null;
  fetchImpl?: typeof fetch | null;
}): void {
  if (options.onUnauthorized !== undefined) state.onUnauthorized = options.onUnauthorized;
  if (options.refreshCsrf !== undefined) state.refreshCsrf = options.refreshCsrf;
  if (options.fetchImpl !== undefined) state.fetchImpl = options.fetchImpl;
}

export function buildUrl(path: string, query?: Query): string {
  const url = path.startsWith("/api/") ? path : `${API_BASE}${path}`;
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${url}?${qs}` : url;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function isCsrfFailure(error: ApiError): boolean {
  return error.status === 403 && /csrf/i.test(`${error.code} ${error.message}`);
}

/** Turns a non-2xx response into an ApiError, whatever its body holds. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  const body = parseJson(text);
  const envelope = (body as { error?: { message?: unknown } } | null)?.error;
  if (envelope && typeof envelope === "object" && typeof envelope.message === "string") {
    return errorFor(response.status, body, response.headers);
  }
  const statusText = response.statusText ? ` ${response.statusText}` : "";
  const ErrorClass = errorClassFor(response.status);
  return new ErrorClass({
    status: response.status,
    code: "http_error",
    message: `The server answered ${response.status}${statusText}.`,
    headers: response.headers,
  });
}

async function send(method: string, path: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  let body: BodyInit | undefined;
  if (options.body instanceof FormData) {
    body = options.body;
  } else if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  if (!SAFE_METHODS.has(method) && state.csrfToken) headers["X-CSRF-Token"] = state.csrfToken;
  const doFetch = state.fetchImpl ?? fetch;
  try {
    return await doFetch(buildUrl(path, options.query), {
      method,
      headers,
      body,
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (cause) {
    if ((cause as Error)?.name === "AbortError") throw cause;
    throw new APIError({ status: 0, code: "network_error", message: "Could not reach the server. Check your connection and try again." });
  }
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  let response = await send(method, path, options);
  if (!response.ok) {
    let error = await errorFromResponse(response);
    if (isCsrfFailure(error) && state.refreshCsrf) {
      // The session's token may have been rotated (e.g. after signing in in another tab): fetch it and retry once.
      const token = await state.refreshCsrf().catch(() => null);
      if (token) {
        state.csrfToken = token;
        response = await send(method, path, options);
        if (response.ok) return parseBody<T>(response);
        error = await errorFromResponse(response);
      }
    }
    if (error.status === 401 && !options.quietUnauthorized) state.onUnauthorized?.(error);
    throw error;
  }
  return parseBody<T>(response);
}

async function parseBody<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new APIError({ status: response.status, code: "bad_response", message: "The server sent an answer that is not JSON." });
  }
}

/**
 * fetch as the dashboard sends it: same-origin credentials, the CSRF token on writes (refetched once and the
 * request retried when the server refuses it for CSRF), a 401 announced to the session. Used by `nodeloom`.
 */
export async function sessionFetch(input: string, init: RequestInit = {}): Promise<Response> {
  const method = (init.method ?? "GET").toUpperCase();
  const base: Record<string, string> =
    init.headers instanceof Headers ? Object.fromEntries(init.headers.entries()) : { ...(init.headers as Record<string, string> | undefined) };
  const attempt = (token: string | null) => {
    const headers = { ...base };
    if (!SAFE_METHODS.has(method) && token) headers["X-CSRF-Token"] = token;
    return (state.fetchImpl ?? fetch)(input, { ...init, headers, credentials: "same-origin" });
  };
  let response = await attempt(state.csrfToken);
  if (response.status === 403 && !SAFE_METHODS.has(method) && state.refreshCsrf) {
    const error = await errorFromResponse(response.clone());
    if (isCsrfFailure(error)) {
      const token = await state.refreshCsrf().catch(() => null);
      if (token) {
        state.csrfToken = token;
        response = await attempt(token);
      }
    }
  }
  if (response.status === 401 && state.onUnauthorized) state.onUnauthorized(await errorFromResponse(response.clone()));
  return response;
}

/** The dashboard's @nodeloom/client: this origin, the session cookie instead of an API key. */
export const nodeloom = new Nodeloom({ baseUrl: "", apiKey: "", fetch: sessionFetch });

export const http = {
  get: <T>(path: string, options?: RequestOptions) => request<T>("GET", path, options),
  post: <T>(path: string, body?: unknown, options?: RequestOptions) => request<T>("POST", path, { ...options, body }),
  put: <T>(path: string, body?: unknown, options?: RequestOptions) => request<T>("PUT", path, { ...options, body }),
  patch: <T>(path: string, body?: unknown, options?: RequestOptions) => request<T>("PATCH", path, { ...options, body }),
  delete: <T>(path: string, options?: RequestOptions) => request<T>("DELETE", path, options),
};

/** A human sentence for anything thrown by a call. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error && error.message) return error.message;
  return "Something went wrong.";
}
