import { beforeEach, describe, expect, it } from "vitest";
import { useRunStore } from "./runStore";

const store = () => useRunStore.getState();

beforeEach(() => store().reset());

describe("run store", () => {
  it("moves from starting to running to finished", () => {
    store().starting();
    expect(store().phase).toBe("starting");
    store().begin("ex_1", ["a", "b"]);
    expect(store()).toMatchObject({ executionId: "ex_1", phase: "running" });
    expect(store().run?.nodes.a.status).toBe("queued");
    store().applyEvent("node.started", { nodeId: "a" });
    expect(store().run?.nodes.a.status).toBe("running");
    store().applyEvent("execution.completed", {});
    expect(store().phase).toBe("finished");
  });

  it("ignores events of another execution and events before a run", () => {
    store().applyEvent("node.started", { nodeId: "a" });
    expect(store().run).toBeNull();
    store().begin("ex_1", ["a"]);
    store().applyEvent("node.started", { nodeId: "a", executionId: "ex_other" });
    expect(store().run?.nodes.a.status).toBe("queued");
  });

  it("applies poll bodies and keeps the latest", () => {
    store().begin("ex_1", ["a"]);
    store().applyPoll({
      executionId: "ex_1",
      workflowId: "wf_1",
      version: "draft",
      status: "COMPLETED",
      creditsUsed: 2,
      outputs: { image: { url: "/f", contentType: "image/png" } },
      nodes: { a: { status: "COMPLETED", cached: true } },
    });
    expect(store().phase).toBe("finished");
    expect(store().poll?.creditsUsed).toBe(2);
    expect(store().run?.nodes.a.status).toBe("cached");
    store().applyPoll({ executionId: "ex_other", workflowId: "wf_1", version: 1, status: "RUNNING" });
    expect(store().poll?.executionId).toBe("ex_1");
  });

  it("records failures", () => {
    store().begin("ex_1", []);
    store().fail("boom");
    expect(store()).toMatchObject({ phase: "error", error: "boom" });
  });
});
