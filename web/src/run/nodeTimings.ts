// Where a run's time went: each node's start (from the execution's start) and duration, from the instants the
// server records when the node really started and finished.

import { durationMs } from "../lib/format";
import type { RunSnapshot } from "../lib/runState";

export interface NodeTiming {
  nodeId: string;
  status: string;
  /** ms from the execution's start (or the first node's) to this node's start */
  offsetMs: number | null;
  durationMs: number | null;
}

/** The nodes that have a start time, earliest first (ties by id). */
export function nodeTimings(run: RunSnapshot | null, executionStartedAt?: string | null): NodeTiming[] {
  if (!run) return [];
  const started = Object.entries(run.nodes).filter(([, state]) => typeof state.startedAt === "string");
  started.sort(([a, x], [b, y]) => (x.startedAt ?? "").localeCompare(y.startedAt ?? "") || a.localeCompare(b));
  const origin = executionStartedAt ?? started[0]?.[1].startedAt ?? null;
  return started.map(([nodeId, state]) => ({
    nodeId,
    status: state.status,
    offsetMs: durationMs(origin, state.startedAt),
    durationMs: durationMs(state.startedAt, state.completedAt),
  }));
}
