import { describe, expect, it } from "vitest";
import type { PollBody } from "../api/types";
import { applyRunEvent, initialRun, isTerminal, normaliseProgress, runFromPoll } from "./runState";

describe("run state", () => {
  it("starts with every node queued", () => {
    const run = initialRun(["a", "b"]);
    expect(run.status).toBe("QUEUED");
    expect(run.nodes.a.status).toBe("queued");
  });

  it("follows node events to running, progress, done, cached and failed", () => {
    let run = initialRun(["a", "b", "c"]);
    run = applyRunEvent(run, "execution.started", {});
    expect(run.status).toBe("RUNNING");
    run = applyRunEvent(run, "node.started", { nodeId: "a" });
    expect(run.nodes.a).toMatchObject({ status: "running", progress: 0 });
    run = applyRunEvent(run, "node.progress", { nodeId: "a", progress: 0.5 });
    expect(run.nodes.a.progress).toBe(0.5);
    run = applyRunEvent(run, "node.completed", { nodeId: "a", credits: 3 });
    expect(run.nodes.a).toMatchObject({ status: "completed", credits: 3 });
    run = applyRunEvent(run, "node.completed", { nodeId: "b", cached: true });
    expect(run.nodes.b.status).toBe("cached");
    run = applyRunEvent(run, "node.failed", { nodeId: "c", error: { code: "boom", message: "GPU on fire" } });
    expect(run.nodes.c).toMatchObject({ status: "failed", error: "GPU on fire" });
    expect(run.progress).toBe(1);
    run = applyRunEvent(run, "execution.failed", { error: { message: "node c failed" } });
    expect(run).toMatchObject({ status: "FAILED", error: "node c failed" });
    expect(run.nodes.c.status).toBe("failed");
    expect(isTerminal(run.status)).toBe(true);
  });

  it("shows a node the server skipped (a router branch without a value) as skipped and done", () => {
    let run = initialRun(["a", "b"]);
    run = applyRunEvent(run, "node.completed", { nodeId: "a", skipped: true });
    expect(run.nodes.a.status).toBe("skipped");
    run = applyRunEvent(run, "node.completed", { nodeId: "b" });
    expect(run.progress).toBe(1);
  });

  it("ignores unknown events and events without a node id", () => {
    const run = initialRun(["a"]);
    expect(applyRunEvent(run, "something.else", {})).toBe(run);
    expect(applyRunEvent(run, "node.started", {})).toBe(run);
  });

  it("marks unfinished nodes cancelled when the execution is cancelled", () => {
    let run = applyRunEvent(initialRun(["a", "b"]), "node.completed", { nodeId: "a" });
    run = applyRunEvent(run, "execution.cancelled", {});
    expect(run.status).toBe("CANCELLED");
    expect(run.nodes.a.status).toBe("completed");
    expect(run.nodes.b.status).toBe("cancelled");
  });

  it("marks nodes a failed execution never reached as skipped", () => {
    let run = applyRunEvent(initialRun(["a", "b"]), "node.failed", { nodeId: "a", message: "bad input" });
    expect(run.nodes.a.error).toBe("bad input");
    run = applyRunEvent(run, "execution.failed", {});
    expect(run.nodes.b.status).toBe("skipped");
    const polled = runFromPoll(initialRun(["a", "b"]), { executionId: "ex", workflowId: "wf", version: 1, status: "FAILED", nodes: { a: { status: "FAILED" } } });
    expect(polled.nodes.b.status).toBe("skipped");
  });

  it("normalises progress given as fraction, percentage or value/max", () => {
    expect(normaliseProgress(0.25)).toBe(0.25);
    expect(normaliseProgress(40)).toBe(0.4);
    expect(normaliseProgress({ value: 3, max: 4 })).toBe(0.75);
    expect(normaliseProgress("x")).toBeNull();
  });

  it("takes the poll body as the final truth", () => {
    const poll: PollBody = {
      executionId: "ex_1",
      workflowId: "wf_1",
      version: "draft",
      status: "COMPLETED",
      progress: 1,
      creditsUsed: 5,
      outputs: {},
      nodes: {
        a: { status: "COMPLETED", cached: true, credits: 0 },
        b: { status: "COMPLETED", credits: 5 },
        c: { status: "FAILED", error: { code: "x", message: "bad" } },
      },
      error: null,
    };
    const run = runFromPoll(initialRun(["a", "b", "c", "d"]), poll);
    expect(run.status).toBe("COMPLETED");
    expect(run.nodes.a.status).toBe("cached");
    expect(run.nodes.b).toMatchObject({ status: "completed", credits: 5 });
    expect(run.nodes.c).toMatchObject({ status: "failed", error: "bad" });
    expect(run.nodes.d.status).toBe("queued");
  });
});
