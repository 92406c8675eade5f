// Shapes of the REST contract (the server's /openapi.json). Aliases only: everything may import this module.
// The server may add fields, so every interface describes the fields the dashboard reads.

export type Id = string;
export type IsoTime = string;

export interface ErrorDetail {
  path: string;
  message: string;
}

export interface ErrorBody {
  code: string;
  message: string;
  details?: ErrorDetail[];
  [extra: string]: unknown;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

// ---- auth ------------------------------------------------------------------------------------

export interface User {
  id: Id;
  email: string;
}

export interface AccountSummary {
  id: Id;
  name: string;
  plan: string;
}

export interface Me {
  user: User;
  account: AccountSummary;
  csrfToken: string;
}

export interface AuthConfig {
  signupEnabled: boolean;
}

// ---- node catalogue --------------------------------------------------------------------------

export interface Constraints {
  min?: number;
  max?: number;
  enum?: unknown[];
  step?: number;
  [extra: string]: unknown;
}

/** A typed port or parameter of a node type, or an input of a workflow. */
export interface FieldSchema {
  name: string;
  type: string;
  required?: boolean;
  default?: unknown;
  constraints?: Constraints | null;
  description?: string;
  displayName?: string;
}

export type CreditPrice = number | { per: string; amount: number };

export interface NodeDef {
  type: string;
  category: string;
  displayName: string;
  description?: string;
  inputs: FieldSchema[];
  outputs: FieldSchema[];
  params: FieldSchema[];
  credits?: CreditPrice;
  resources?: string;
  deterministic?: boolean;
  available: boolean;
  unavailableReason?: string | null;
}

// ---- graphs and workflows --------------------------------------------------------------------

export interface Link {
  from: string;
  output: string;
}

export interface GraphNode {
  id: string;
  type: string;
  params?: Record<string, unknown>;
  inputs?: Record<string, Link | unknown>;
  position?: { x: number; y: number };
  label?: string;
}

export interface Graph {
  nodes: GraphNode[];
}

export interface WebhookSettings {
  enabled?: boolean;
  callbackUrl?: string | null;
  callbackEvents?: string[] | null;
  hasTriggerSecret?: boolean;
}

export interface Workflow {
  id: Id;
  name: string;
  description?: string | null;
  graph: Graph;
  inputs?: FieldSchema[];
  outputs?: { name: string; type: string }[];
  publishedVersion?: number | null;
  webhookId?: string | null;
  webhook?: WebhookSettings | null;
  createdAt?: IsoTime;
  updatedAt?: IsoTime;
}

/** `POST /workflows/import/comfyui` (and the PUT re-import) answer: the draft workflow plus what was exposed and why. */
export interface ComfyImportResult extends Workflow {
  importNotes: string[];
}

/** An explicit exposed input of a ComfyUI import: API input name → a ComfyUI node's input. */
export interface ComfyInputMapping {
  node: string;
  input: string;
  default?: unknown;
  min?: number;
  max?: number;
}

/** An explicit exposed output of a ComfyUI import: API output name → a ComfyUI output node. */
export interface ComfyOutputMapping {
  node: string;
}

export interface ComfyImportBody {
  name?: string;
  description?: string;
  /** ComfyUI's API format or its UI (save) format, as exported. */
  workflow: Record<string, unknown>;
  inputs?: Record<string, ComfyInputMapping>;
  outputs?: Record<string, ComfyOutputMapping>;
}

export interface ValidationResult {
  valid: boolean;
  errors: ErrorDetail[];
}

export interface PublishResult {
  workflowId: Id;
  version: number;
  publishedAt: IsoTime;
}

export interface WorkflowVersion {
  version: number;
  publishedAt?: IsoTime;
  graph?: Graph;
  name?: string;
}

export interface Estimate {
  credits: number;
  balance: number;
  sufficient: boolean;
  breakdown: { nodeId: string; nodeType: string; credits: number }[];
}

// ---- executions ------------------------------------------------------------------------------

export type ExecutionStatus = "QUEUED" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED";

export interface MediaValue {
  url: string;
  contentType: string;
  width?: number;
  height?: number;
  durationS?: number;
}

export interface NodeResult {
  status: ExecutionStatus;
  startedAt?: IsoTime | null;
  completedAt?: IsoTime | null;
  cached?: boolean;
  credits?: number | null;
  outputs?: Record<string, unknown> | null;
  error?: { code?: string; message: string } | string | null;
  type?: string;
}

export interface ExecutionError {
  code: string;
  message: string;
  nodeId?: string;
}

export interface PollBody {
  executionId: Id;
  workflowId: Id;
  version: number | "draft" | null;
  status: ExecutionStatus;
  progress?: number;
  queuePosition?: number | null;
  createdAt?: IsoTime;
  startedAt?: IsoTime | null;
  completedAt?: IsoTime | null;
  creditsUsed?: number | null;
  outputs?: Record<string, unknown> | null;
  nodes?: Record<string, NodeResult> | null;
  error?: ExecutionError | null;
}

/** A row of the executions list; the server sends at least these fields. */
export interface ExecutionSummary {
  executionId?: Id;
  id?: Id;
  workflowId: Id;
  workflowName?: string;
  version?: number | "draft" | null;
  status: ExecutionStatus;
  createdAt?: IsoTime;
  startedAt?: IsoTime | null;
  completedAt?: IsoTime | null;
  creditsUsed?: number | null;
}

export interface ExecuteAccepted {
  executionId: Id;
  status: ExecutionStatus;
  pollUrl?: string;
}

// ---- keys, webhooks, usage, files ------------------------------------------------------------

export type Scope = "execute" | "read" | "usage" | "manage";

export interface ApiKey {
  id: Id;
  name: string;
  prefix: string;
  scopes: Scope[];
  createdAt: IsoTime;
  lastUsedAt?: IsoTime | null;
  expiresAt?: IsoTime | null;
}

export interface CreatedApiKey extends ApiKey {
  key: string;
}

export interface WebhookDelivery {
  id: Id;
  executionId?: Id;
  event?: string;
  type?: string;
  url?: string;
  status?: string | number;
  statusCode?: number | null;
  responseStatus?: number | null;
  attempt?: number;
  attempts?: number;
  createdAt?: IsoTime;
  deliveredAt?: IsoTime | null;
  nextAttemptAt?: IsoTime | null;
  error?: string | null;
}

export interface Usage {
  plan: string;
  credits: { balance: number };
  executions: { today: number; dailyLimit: number | null; thisMonth: number };
  rateLimits: { requestsPerMinute: number; executionsPerMinute: number };
  daily: { date: string; executions: number; credits: number }[];
}

export interface Upload {
  fileId: Id;
  url: string;
  contentType?: string;
  size?: number;
}
