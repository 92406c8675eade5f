import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { configureClient, setCsrfToken } from "../api/client";
import { useRunStore } from "../stores/runStore";
import { installFetch } from "../test/http";
import { runDraft, stopWatching, watchExecution } from "./runController";

type Listener = (event: MessageEvent<string>) => void;

class FakeEventSource {
  static last: FakeEventSource | null = null;
  readyState = 1;
  closed = false;
  onerror: (() => void) | null = null;
  listeners = new Map<string, Listener[]>();
  constructor(readonly url: string) {
    FakeEventSource.last = this;
  }
  addEventListener(type: string, listener: Listener) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, data: unknown) {
    for (const listener of this.listeners.get(type) ?? []) listener({ data: JSON.stringify(data) } as MessageEvent<string>);
  }
}

const POLL_DONE = {
  executionId: "ex_1",
  workflowId: "wf_1",
  version: "draft",
  status: "COMPLETED",
  creditsUsed: 5,
  outputs: { caption: "a fox" },
  nodes: { a: { status: "COMPLETED", cached: false, credits: 5 } },
};

const source = () => FakeEventSource.last!;
const EventSourceImpl = FakeEventSource as unknown as new (url: string) => EventSource;

beforeEach(() => {
  useRunStore.getState().reset();
  FakeEventSource.last = null;
});
afterEach(() => {
  stopWatching();
  vi.useRealTimers();
  configureClient({ fetchImpl: null });
  setCsrfToken(null);
});

describe("run controller", () => {
  it("executes the draft, follows events and finishes with the poll body", async () => {
    const { calls } = installFetch(({ url }) =>
      url.endsWith("/execute") ? { status: 202, body: { executionId: "ex_1", status: "QUEUED" } } : { body: POLL_DONE },
    );
    await runDraft("wf_1", { prompt: "fox" }, ["a"], { eventSource: EventSourceImpl });
    expect(calls[0]).toMatchObject({ method: "POST", url: "/api/v1/workflows/wf_1/execute", body: { inputs: { prompt: "fox" }, version: "draft" } });
    expect(source().url).toBe("/api/v1/workflows/executions/ex_1/events");
    source().emit("node.started", { nodeId: "a" });
    expect(useRunStore.getState().run?.nodes.a.status).toBe("running");
    source().emit("node.progress", { nodeId: "a", progress: 0.5 });
    expect(useRunStore.getState().run?.nodes.a.progress).toBe(0.5);
    source().emit("execution.completed", {});
    expect(source().closed).toBe(true);
    await vi.waitFor(() => expect(useRunStore.getState().poll?.creditsUsed).toBe(5));
    expect(useRunStore.getState().phase).toBe("finished");
    expect(calls.at(-1)?.url).toBe("/api/v1/workflows/executions/ex_1/poll");
  });

  it("records a refused execution as an error", async () => {
    installFetch(() => ({ status: 402, body: { error: { code: "insufficient_credits", message: "Not enough credits.", required: 5, balance: 1 } } }));
    await expect(runDraft("wf_1", {}, [], { eventSource: EventSourceImpl })).rejects.toThrow("Not enough credits.");
    expect(useRunStore.getState()).toMatchObject({ phase: "error", error: "Not enough credits." });
  });

  it("falls back to polling when the stream is closed by the server", async () => {
    let polls = 0;
    installFetch(() => {
      polls += 1;
      return { body: polls < 2 ? { ...POLL_DONE, status: "RUNNING", nodes: { a: { status: "RUNNING" } } } : POLL_DONE };
    });
    useRunStore.getState().begin("ex_1", ["a"]);
    watchExecution("ex_1", { eventSource: EventSourceImpl, pollIntervalMs: 5 });
    source().readyState = 2;
    source().onerror?.();
    await vi.waitFor(() => expect(useRunStore.getState().phase).toBe("finished"));
    expect(polls).toBeGreaterThanOrEqual(2);
    expect(useRunStore.getState().connection).toBe("none");
  });

  it("polls when the browser has no EventSource", async () => {
    installFetch(() => ({ body: POLL_DONE }));
    useRunStore.getState().begin("ex_1", ["a"]);
    watchExecution("ex_1", { eventSource: null });
    await vi.waitFor(() => expect(useRunStore.getState().run?.status).toBe("COMPLETED"));
  });

  it("follows the events with @nodeloom/client over fetch by default, with the session's CSRF token on the run", async () => {
    const event = (id: number, type: string, data: object) => `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    const stream = [
      event(1, "execution.started", {}),
      event(2, "node.started", { nodeId: "a" }),
      event(3, "node.progress", { nodeId: "a", progress: 0.5 }),
      event(4, "node.completed", { nodeId: "a" }),
      event(5, "execution.completed", {}),
    ].join("");
    const { calls } = installFetch(({ url }) => {
      if (url.endsWith("/execute")) return { status: 202, body: { executionId: "ex_1", status: "QUEUED" } };
      if (url.endsWith("/events")) return { text: stream };
      return { body: POLL_DONE };
    });
    setCsrfToken("tok");
    await runDraft("wf_1", { prompt: "fox" }, ["a"]);
    expect(calls[0]).toMatchObject({ method: "POST", url: "/api/v1/workflows/wf_1/execute", body: { inputs: { prompt: "fox" }, version: "draft" } });
    expect(calls[0].headers["X-CSRF-Token"]).toBe("tok");
    expect(calls[0].headers["Idempotency-Key"]).toMatch(/^nlc-/);
    await vi.waitFor(() => expect(useRunStore.getState().phase).toBe("finished"));
    const events = calls.find((call) => call.url === "/api/v1/workflows/executions/ex_1/events");
    expect(events?.headers.Accept).toBe("text/event-stream");
    expect(useRunStore.getState().run?.nodes.a.status).toBe("completed");
    expect(useRunStore.getState().poll?.creditsUsed).toBe(5);
  });

  it("polls when the event stream is refused", async () => {
    installFetch(({ url }) =>
      url.endsWith("/events") ? { status: 404, body: { error: { code: "not_found", message: "no stream" } } } : { body: POLL_DONE },
    );
    useRunStore.getState().begin("ex_1", ["a"]);
    watchExecution("ex_1", { pollIntervalMs: 5 });
    await vi.waitFor(() => expect(useRunStore.getState().phase).toBe("finished"));
    expect(useRunStore.getState().connection).toBe("none");
  });
});
