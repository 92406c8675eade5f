// One function per REST endpoint the dashboard calls, grouped by resource. Runs, polls, cancels and uploads go
// through @nodeloom/client (`nodeloom`: idempotency keys, bounded retries, typed errors); the rest through `http`.

import { http, nodeloom, request } from "./client";
import type {
  ApiKey,
  ComfyImportBody,
  ComfyImportResult,
  AuthConfig,
  CreatedApiKey,
  Estimate,
  ExecuteAccepted,
  ExecutionSummary,
  Graph,
  Me,
  NodeDef,
  Page,
  PollBody,
  PublishResult,
  Scope,
  Upload,
  Usage,
  ValidationResult,
  WebhookDelivery,
  Workflow,
  WorkflowVersion,
} from "./types";

const enc = encodeURIComponent;

export const auth = {
  me: () => http.get<Me>("/auth/me", { quietUnauthorized: true }),
  config: () => http.get<AuthConfig>("/auth/config", { quietUnauthorized: true }),
  login: (email: string, password: string) =>
    http.post<Partial<Me>>("/auth/login", { email, password }, { quietUnauthorized: true }),
  signup: (args: { email: string; password: string; accountName: string }) =>
    http.post<Partial<Me>>("/auth/signup", args, { quietUnauthorized: true }),
  logout: () => http.post<void>("/auth/logout", undefined, { quietUnauthorized: true }),
};

export const nodes = {
  list: () => http.get<{ data: NodeDef[] }>("/nodes"),
};

export const workflows = {
  list: (query: { q?: string; limit?: number; cursor?: string | null }, signal?: AbortSignal) =>
    http.get<Page<Workflow>>("/workflows", { query, signal }),
  get: (id: string) => http.get<Workflow>(`/workflows/${enc(id)}`),
  create: (body: { name: string; description?: string; graph: Graph }) => http.post<Workflow>("/workflows", body),
  update: (id: string, body: { name: string; description?: string; graph: Graph }) =>
    http.put<Workflow>(`/workflows/${enc(id)}`, body),
  remove: (id: string) => http.delete<void>(`/workflows/${enc(id)}`),
  validate: (graph: Graph, signal?: AbortSignal) =>
    request<ValidationResult>("POST", "/workflows/validate", { body: { graph }, signal }),
  estimate: (id: string, inputs: Record<string, unknown>) =>
    http.post<Estimate>(`/workflows/${enc(id)}/estimate`, { inputs }),
  publish: (id: string) => http.post<PublishResult>(`/workflows/${enc(id)}/publish`),
  versions: (id: string) => http.get<Page<WorkflowVersion> | { data: WorkflowVersion[] }>(`/workflows/${enc(id)}/versions`),
  version: (id: string, version: number) => http.get<WorkflowVersion>(`/workflows/${enc(id)}/versions/${version}`),
  execute: async (id: string, body: { inputs: Record<string, unknown>; version?: number | "draft" }): Promise<ExecuteAccepted> => {
    const submitted = await nodeloom.execute(id, body.inputs, { version: body.version });
    return { ...(submitted.raw as Partial<ExecuteAccepted>), executionId: submitted.executionId, status: submitted.status };
  },
  updateWebhook: (
    id: string,
    body: { enabled: boolean; triggerSecret?: string; callbackUrl?: string | null; callbackEvents?: string[] },
  ) => http.patch<unknown>(`/workflows/${enc(id)}/webhook`, body),
  rotateWebhook: (id: string) => http.post<Partial<Workflow>>(`/workflows/${enc(id)}/webhook/rotate`),
  /** A ComfyUI export as a new draft: JSON (either format), or multipart with `file` (a PNG ComfyUI saved). */
  importComfyui: (body: ComfyImportBody | FormData) => http.post<ComfyImportResult>("/workflows/import/comfyui", body),
  /** A ComfyUI export into an existing workflow's draft (id, webhook and versions kept). */
  reimportComfyui: (id: string, body: ComfyImportBody | FormData) =>
    http.put<ComfyImportResult>(`/workflows/${enc(id)}/import/comfyui`, body),
};

export const executions = {
  list: (query: { workflowId?: string; status?: string; limit?: number; cursor?: string | null }, signal?: AbortSignal) =>
    http.get<Page<ExecutionSummary>>("/workflows/executions", { query, signal }),
  poll: async (id: string, signal?: AbortSignal) => (await nodeloom.poll(id, { signal })).raw as unknown as PollBody,
  cancel: (id: string) => nodeloom.cancel(id),
  eventsUrl: (id: string) => `/api/v1/workflows/executions/${enc(id)}/events`,
};

export const keys = {
  list: () => http.get<{ data: ApiKey[] }>("/keys"),
  create: (body: { name: string; scopes: Scope[] }) => http.post<CreatedApiKey>("/keys", body),
  revoke: (id: string) => http.delete<void>(`/keys/${enc(id)}`),
};

export const deliveries = {
  list: (executionId: string) =>
    http.get<Page<WebhookDelivery> | { data: WebhookDelivery[] }>("/webhook-deliveries", { query: { executionId } }),
  redeliver: (id: string) => http.post<unknown>(`/webhook-deliveries/${enc(id)}/redeliver`),
};

export const usage = {
  get: () => http.get<Usage>("/usage"),
};

export const uploads = {
  upload: async (file: File): Promise<Upload> => (await nodeloom.upload(file, { filename: file.name })).raw as unknown as Upload,
};
