import { describe, expect, it } from "vitest";
import { applyRunEvent, initialRun, runFromPoll } from "../lib/runState";
import { nodeTimings } from "./nodeTimings";

describe("node timings", () => {
  it("takes each node's own instants from its events, in the order the nodes started", () => {
    let run = initialRun(["a", "b", "c"]);
    run = applyRunEvent(run, "node.started", { nodeId: "b", startedAt: "2030-01-01T00:00:00.120Z" });
    run = applyRunEvent(run, "node.started", { nodeId: "a", startedAt: "2030-01-01T00:00:00.100Z" });
    run = applyRunEvent(run, "node.completed", {
      nodeId: "a", startedAt: "2030-01-01T00:00:00.100Z", completedAt: "2030-01-01T00:00:00.115Z",
    });
    expect(run.nodes.a).toMatchObject({ status: "completed", startedAt: "2030-01-01T00:00:00.100Z", completedAt: "2030-01-01T00:00:00.115Z" });
    expect(nodeTimings(run, "2030-01-01T00:00:00.090Z")).toEqual([
      { nodeId: "a", status: "completed", offsetMs: 10, durationMs: 15 },
      { nodeId: "b", status: "running", offsetMs: 30, durationMs: null },
    ]);
  });

  it("keeps the poll body's instants, and has nothing to show without any", () => {
    expect(nodeTimings(null)).toEqual([]);
    expect(nodeTimings(initialRun(["a"]))).toEqual([]);
    const run = runFromPoll(initialRun(["a"]), {
      executionId: "ex_1", workflowId: "wf_1", version: "draft", status: "COMPLETED",
      nodes: { a: { status: "COMPLETED", startedAt: "2030-01-01T00:00:01.000Z", completedAt: "2030-01-01T00:00:01.250Z" } },
    });
    expect(nodeTimings(run)).toEqual([{ nodeId: "a", status: "completed", offsetMs: 0, durationMs: 250 }]);
  });
});
