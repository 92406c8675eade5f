// A run as seen by the canvas: the execution's status plus each node's state, advanced by
// SSE events and finally replaced by the poll body's truth. Pure functions over plain values.

import type { ExecutionStatus, NodeResult, PollBody } from "../api/types";

export type NodeRunStatus = "queued" | "running" | "completed" | "cached" | "failed" | "cancelled" | "skipped";

export interface NodeRunState {
  status: NodeRunStatus;
  /** 0..1 while running. */
  progress: number | null;
  /** ComfyUI's own counter for the step it is on (a sampler's `12` of `20`), when the node reports one. */
  steps?: { value: number; max: number } | null;
  error: string | null;
  credits: number | null;
  /** When the node really started and finished (ISO, ms), from its events or the poll body. */
  startedAt?: string | null;
  completedAt?: string | null;
}

export interface RunSnapshot {
  status: ExecutionStatus;
  progress: number;
  nodes: Record<string, NodeRunState>;
  error: string | null;
}

export const TERMINAL_STATUSES: ReadonlySet<ExecutionStatus> = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

export const TERMINAL_EVENTS = ["execution.completed", "execution.failed", "execution.cancelled"] as const;

export const RUN_EVENT_TYPES = [
  "execution.started",
  "node.started",
  "node.progress",
  "node.completed",
  "node.failed",
  ...TERMINAL_EVENTS,
] as const;

export function isTerminal(status: ExecutionStatus | null | undefined): boolean {
  return !!status && TERMINAL_STATUSES.has(status);
}

function queuedNode(): NodeRunState {
  return { status: "queued", progress: null, error: null, credits: null };
}

export function initialRun(nodeIds: readonly string[]): RunSnapshot {
  const nodes: Record<string, NodeRunState> = {};
  for (const id of nodeIds) nodes[id] = queuedNode();
  return { status: "QUEUED", progress: 0, nodes, error: null };
}

/** Progress as 0..1, accepting fractions, percentages, or {value, max}. */
export function normaliseProgress(raw: unknown): number | null {
  let value: number | null = null;
  if (typeof raw === "number") value = raw;
  else if (raw && typeof raw === "object") {
    const { value: v, max } = raw as { value?: unknown; max?: unknown };
    if (typeof v === "number" && typeof max === "number" && max > 0) value = v / max;
  }
  if (value === null || Number.isNaN(value)) return null;
  if (value > 1) value = value / 100;
  return Math.min(1, Math.max(0, value));
}

/** A `node.progress` event's `{value, max}` (ComfyUI nodes send them beside `progress`), or null. */
export function progressSteps(data: Record<string, unknown>): { value: number; max: number } | null {
  const { value, max } = data;
  if (typeof value !== "number" || typeof max !== "number" || !Number.isFinite(value) || !Number.isFinite(max) || max <= 0) {
    return null;
  }
  return { value, max };
}

export function errorText(error: unknown): string | null {
  if (!error) return null;
  if (typeof error === "string") return error;
  if (typeof error === "object" && typeof (error as { message?: unknown }).message === "string") {
    return (error as { message: string }).message;
  }
  return "Failed.";
}

function completedShare(nodes: Record<string, NodeRunState>): number {
  const states = Object.values(nodes);
  if (states.length === 0) return 0;
  let done = 0;
  for (const state of states) {
    if (state.status === "completed" || state.status === "cached" || state.status === "failed" || state.status === "skipped") done += 1;
    else if (state.status === "running" && state.progress !== null) done += state.progress;
  }
  return done / states.length;
}

function updateNode(run: RunSnapshot, nodeId: string, change: Partial<NodeRunState>): RunSnapshot {
  const nodes = { ...run.nodes, [nodeId]: { ...(run.nodes[nodeId] ?? queuedNode()), ...change } };
  return { ...run, nodes, progress: Math.max(run.progress, completedShare(nodes)) };
}

/** The `startedAt`/`completedAt` an event or a node result carries (only those it has). */
export function nodeTimes(data: { startedAt?: unknown; completedAt?: unknown }): Pick<NodeRunState, "startedAt" | "completedAt"> {
  const times: Pick<NodeRunState, "startedAt" | "completedAt"> = {};
  if (typeof data.startedAt === "string") times.startedAt = data.startedAt;
  if (typeof data.completedAt === "string") times.completedAt = data.completedAt;
  return times;
}

/** Advances the run by one SSE event (`type` from the `event:` line, `data` parsed from JSON). */
export function applyRunEvent(run: RunSnapshot, type: string, data: Record<string, unknown>): RunSnapshot {
  const nodeId = typeof data.nodeId === "string" ? data.nodeId : null;
  switch (type) {
    case "execution.started":
      return { ...run, status: "RUNNING" };
    case "node.started":
      return nodeId ? { ...updateNode(run, nodeId, { status: "running", progress: 0, ...nodeTimes(data) }), status: "RUNNING" } : run;
    case "node.progress": {
      if (!nodeId) return run;
      const steps = progressSteps(data);
      const progress = normaliseProgress(data.progress) ?? (steps ? normaliseProgress(steps) : null);
      return updateNode(run, nodeId, { status: "running", progress, steps });
    }
    case "node.completed":
      return nodeId
        ? updateNode(run, nodeId, {
            status: data.skipped === true ? "skipped" : data.cached === true ? "cached" : "completed",
            progress: 1,
            credits: typeof data.credits === "number" ? data.credits : null,
            ...nodeTimes(data),
          })
        : run;
    case "node.failed":
      return nodeId
        ? updateNode(run, nodeId, { status: "failed", error: errorText(data.error) ?? errorText(data.message) ?? "Failed.", ...nodeTimes(data) })
        : run;
    case "execution.completed":
      return { ...run, status: "COMPLETED", progress: 1 };
    case "execution.failed":
      return {
        ...finishQueued(run, "skipped"),
        status: "FAILED",
        error: errorText(data.error) ?? errorText(data.message) ?? "The execution failed.",
      };
    case "execution.cancelled":
      return { ...finishQueued(run, "cancelled"), status: "CANCELLED" };
    default:
      return run;
  }
}

function finishQueued(run: RunSnapshot, status: NodeRunStatus): RunSnapshot {
  const nodes: Record<string, NodeRunState> = {};
  for (const [id, state] of Object.entries(run.nodes)) {
    nodes[id] = state.status === "queued" || state.status === "running" ? { ...state, status } : state;
  }
  return { ...run, nodes };
}

export function nodeStateFromResult(result: NodeResult): NodeRunState {
  let status: NodeRunStatus;
  switch (result.status) {
    case "COMPLETED":
      status = result.cached ? "cached" : "completed";
      break;
    case "RUNNING":
      status = "running";
      break;
    case "FAILED":
      status = "failed";
      break;
    case "CANCELLED":
      status = "cancelled";
      break;
    default:
      status = "queued";
  }
  return {
    status,
    progress: status === "completed" || status === "cached" ? 1 : null,
    error: errorText(result.error),
    credits: typeof result.credits === "number" ? result.credits : null,
    ...nodeTimes(result),
  };
}

/** The run as the poll body describes it; nodes the body does not mention keep their state. */
export function runFromPoll(run: RunSnapshot, poll: PollBody): RunSnapshot {
  const nodes = { ...run.nodes };
  for (const [id, result] of Object.entries(poll.nodes ?? {})) nodes[id] = nodeStateFromResult(result);
  const snapshot: RunSnapshot = {
    status: poll.status,
    progress: typeof poll.progress === "number" ? poll.progress : isTerminal(poll.status) ? 1 : run.progress,
    nodes,
    error: poll.error ? errorText(poll.error) : null,
  };
  if (poll.status === "CANCELLED") return finishQueued(snapshot, "cancelled");
  if (poll.status === "FAILED") return finishQueued(snapshot, "skipped");
  return snapshot;
}
