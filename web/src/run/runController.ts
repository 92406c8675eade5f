// Starts draft runs and follows them: SSE first (live node states, read by @nodeloom/client over fetch and
// resumed with Last-Event-ID when the connection drops), polling when the stream cannot be had, and one final
// poll for outputs and credits. Writes only through run-store actions.

import { describeError, nodeloom } from "../api/client";
import { executions, workflows } from "../api/endpoints";
import { isTerminal, RUN_EVENT_TYPES, TERMINAL_EVENTS } from "../lib/runState";
import { useRunStore } from "../stores/runStore";

export interface WatchOptions {
  /** Default (undefined): @nodeloom/client's event stream. An EventSource class follows the stream with it
   * instead (tests inject one); null polls only. */
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
  const EventSourceImpl = options.eventSource;
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

  const runEvents = new Set<string>(RUN_EVENT_TYPES);
  const terminal = new Set<string>(TERMINAL_EVENTS);
  /** One event of the stream, however it came; true when it was the last. */
  function handle(type: string, data: Record<string, unknown>): boolean {
    if (!runEvents.has(type)) return false;
    store().applyEvent(type, data);
    if (!terminal.has(type)) return false;
    source?.close();
    source = null;
    void finalPoll();
    return true;
  }

  if (EventSourceImpl === null) {
    startPolling();
    return;
  }

  if (EventSourceImpl === undefined) {
    store().setConnection("stream");
    void (async () => {
      try {
        for await (const event of nodeloom.events(executionId, { signal: controller.signal })) {
          if (stopped) return;
          if (handle(event.event, event.data)) return;
        }
        if (!stopped) void finalPoll(); // the stream ended without a terminal event: the poll has the truth
      } catch {
        if (!stopped && !controller.signal.aborted) startPolling(); // 401/404, or the stream kept dying
      }
    })();
    return;
  }

  source = new EventSourceImpl(executions.eventsUrl(executionId));
  store().setConnection("stream");
  let errors = 0;
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
      handle(type, data);
    });
  }
  source.onerror = () => {
    if (stopped || !source) return;
    errors += 1;
    // CLOSED means the browser gave up (e.g. 401/404 or a non-SSE answer); repeated errors mean a flaky stream.
    if (source.readyState === 2 || errors >= 3) startPolling();
  };
}
