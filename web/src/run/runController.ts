// Starts draft runs and follows them: SSE first (live node states), polling when the stream
// cannot be opened, and one final poll for outputs and credits. Writes only through run-store actions.

import { describeError } from "../api/client";
import { executions, workflows } from "../api/endpoints";
import { isTerminal, RUN_EVENT_TYPES, TERMINAL_EVENTS } from "../lib/runState";
import { useRunStore } from "../stores/runStore";

export interface WatchOptions {
  /** Injected by tests; the browser's EventSource otherwise (polling when there is none). */
  eventSource?: (new (url: string) => EventSource) | null;
  pollIntervalMs?: number;
}

interface Watcher {
  executionId: string;
  stop: () => void;
}

let watcher: Watcher | null = null;

export function stopWatching(): void {
  watcher?.stop();
  watcher = null;
}

export async function runDraft(
  workflowId: string,
  inputs: Record<string, unknown>,
  nodeIds: readonly string[],
  options: WatchOptions = {},
): Promise<string | null> {
  stopWatching();
  const store = useRunStore.getState();
  store.starting();
  try {
    const accepted = await workflows.execute(workflowId, { inputs, version: "draft" });
    useRunStore.getState().begin(accepted.executionId, nodeIds);
    watchExecution(accepted.executionId, options);
    return accepted.executionId;
  } catch (error) {
    useRunStore.getState().fail(describeError(error));
    throw error;
  }
}

export async function cancelRun(): Promise<void> {
  const { executionId } = useRunStore.getState();
  if (executionId) await executions.cancel(executionId);
}

/** Follows an execution until it ends; a second call replaces the first. */
export function watchExecution(executionId: string, options: WatchOptions = {}): void {
  stopWatching();
  const EventSourceImpl = options.eventSource === undefined ? globalThis.EventSource : options.eventSource;
  const pollInterval = options.pollIntervalMs ?? 1000;
  let stopped = false;
  let source: EventSource | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const controller = new AbortController();

  const stop = () => {
    stopped = true;
    source?.close();
    source = null;
    if (timer) clearTimeout(timer);
    controller.abort();
  };
  watcher = { executionId, stop };
  const store = () => useRunStore.getState();

  async function finalPoll(attempt = 0): Promise<void> {
    try {
      const poll = await executions.poll(executionId, controller.signal);
      if (stopped && attempt > 0) return;
      store().applyPoll(poll);
      // The stream may announce the end a moment before the poll body shows it.
      if (!isTerminal(poll.status) && attempt < 5) {
        timer = setTimeout(() => void finalPoll(attempt + 1), 500 * (attempt + 1));
        return;
      }
      store().setConnection("none");
    } catch (error) {
      if (controller.signal.aborted) return;
      store().fail(describeError(error));
    }
  }

  async function pollLoop(failures = 0): Promise<void> {
    if (stopped) return;
    try {
      const poll = await executions.poll(executionId, controller.signal);
      if (stopped) return;
      store().applyPoll(poll);
      if (isTerminal(poll.status)) {
        store().setConnection("none");
        stop();
        return;
      }
      timer = setTimeout(() => void pollLoop(0), pollInterval);
    } catch (error) {
      if (controller.signal.aborted) return;
      if (failures >= 4) {
        store().fail(describeError(error));
        return;
      }
      timer = setTimeout(() => void pollLoop(failures + 1), pollInterval * 2 ** failures);
    }
  }

  function startPolling(): void {
    source?.close();
    source = null;
    store().setConnection("polling");
    void pollLoop();
  }

  if (!EventSourceImpl) {
    startPolling();
    return;
  }

  source = new EventSourceImpl(executions.eventsUrl(executionId));
  store().setConnection("stream");
  let errors = 0;
  const terminal = new Set<string>(TERMINAL_EVENTS);
  for (const type of RUN_EVENT_TYPES) {
    source.addEventListener(type, (event) => {
      if (stopped) return;
      errors = 0;
      let data: Record<string, unknown> = {};
      try {
        const parsed = JSON.parse((event as MessageEvent<string>).data || "{}");
        if (parsed && typeof parsed === "object") data = parsed as Record<string, unknown>;
      } catch {
        // A malformed payload still tells us which event happened.
      }
      store().applyEvent(type, data);
      if (terminal.has(type)) {
        source?.close();
        source = null;
        void finalPoll();
      }
    });
  }
  source.onerror = () => {
    if (stopped || !source) return;
    errors += 1;
    // CLOSED means the browser gave up (e.g. 401/404 or a non-SSE answer); repeated errors mean a flaky stream.
    if (source.readyState === 2 || errors >= 3) startPolling();
  };
}
