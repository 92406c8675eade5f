// The current run of the editor's workflow: kept apart from the graph so that streaming node
// states never re-renders or dirties the graph.

import { create } from "zustand";
import type { PollBody } from "../api/types";
import { applyRunEvent, initialRun, isTerminal, runFromPoll, type RunSnapshot } from "../lib/runState";

export type RunPhase = "idle" | "starting" | "running" | "finished" | "error";
export type RunConnection = "none" | "stream" | "polling";

export interface RunState {
  executionId: string | null;
  phase: RunPhase;
  run: RunSnapshot | null;
  /** The final (or latest) poll body: outputs, credits, per-node results. */
  poll: PollBody | null;
  connection: RunConnection;
  error: string | null;

  starting: () => void;
  begin: (executionId: string, nodeIds: readonly string[]) => void;
  applyEvent: (type: string, data: Record<string, unknown>) => void;
  applyPoll: (poll: PollBody) => void;
  setConnection: (connection: RunConnection) => void;
  fail: (message: string) => void;
  reset: () => void;
}

const idle = {
  executionId: null,
  phase: "idle" as RunPhase,
  run: null,
  poll: null,
  connection: "none" as RunConnection,
  error: null,
};

export const useRunStore = create<RunState>()((set, get) => ({
  ...idle,

  starting: () => set({ ...idle, phase: "starting" }),

  begin: (executionId, nodeIds) =>
    set({ ...idle, executionId, phase: "running", run: initialRun(nodeIds) }),

  applyEvent: (type, data) => {
    const { run, executionId } = get();
    if (!run || !executionId) return;
    if (typeof data.executionId === "string" && data.executionId !== executionId) return;
    const next = applyRunEvent(run, type, data);
    set({ run: next, phase: isTerminal(next.status) ? "finished" : "running" });
  },

  applyPoll: (poll) => {
    const { run, executionId } = get();
    if (executionId && poll.executionId && poll.executionId !== executionId) return;
    const base = run ?? initialRun(Object.keys(poll.nodes ?? {}));
    set({
      executionId: poll.executionId ?? executionId,
      poll,
      run: runFromPoll(base, poll),
      phase: isTerminal(poll.status) ? "finished" : "running",
    });
  },

  setConnection: (connection) => set({ connection }),

  fail: (message) => set({ phase: "error", error: message, connection: "none" }),

  reset: () => set({ ...idle }),
}));
