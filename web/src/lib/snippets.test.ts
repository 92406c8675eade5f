import { describe, expect, it } from "vitest";
import { exampleInputs, exampleValue, snippet, type SnippetContext } from "./snippets";

const context: SnippetContext = {
  origin: "https://loom.example.com",
  workflowId: "wf_123",
  webhookId: "wh_456",
  inputs: { prompt: "it's a fox", steps: 4 },
  executionId: "ex_789",
};

describe("snippets", () => {
  it("makes example inputs from the schema", () => {
    expect(exampleValue({ name: "prompt", type: "text", default: "fox" })).toBe("fox");
    expect(exampleValue({ name: "mode", type: "text", constraints: { enum: ["fit", "fill"] } })).toBe("fit");
    expect(exampleValue({ name: "n", type: "integer", constraints: { min: 2 } })).toBe(2);
    expect(exampleValue({ name: "photo", type: "image" })).toMatch(/^https:/);
    expect(exampleInputs([{ name: "tags", type: "list<text>" }])).toEqual({ tags: ["your tags"] });
  });

  it("fills curl snippets with the real ids and quotes the body for the shell", () => {
    const execute = snippet("execute", "curl", context);
    expect(execute).toContain("https://loom.example.com/api/v1/workflows/wf_123/execute");
    expect(execute).toContain("Authorization: Bearer $NODELOOM_API_KEY");
    expect(execute).toContain(`'{"inputs":{"prompt":"it'\\''s a fox","steps":4}}'`);
    expect(snippet("poll", "curl", context)).toContain("/api/v1/workflows/executions/ex_789/poll");
    expect(snippet("webhook", "curl", context)).toContain("/api/v1/webhooks/wh_456");
  });

  it("writes Python with the SDK and Python literals", () => {
    const python = snippet("execute", "python", { ...context, inputs: { on: true, none: null, list: [1] } });
    expect(python).toContain("from nodeloom.client import Client");
    expect(python).toContain('"wf_123"');
    expect(python).toContain('"on": True');
    expect(python).toContain('"none": None');
  });

  it("writes JavaScript fetch calls and falls back to placeholders", () => {
    const js = snippet("execute", "javascript", context);
    expect(js).toContain('fetch("https://loom.example.com/api/v1/workflows/wf_123/execute"');
    expect(js).toContain("Idempotency-Key");
    const bare = snippet("poll", "javascript", { ...context, executionId: null });
    expect(bare).toContain("EXECUTION_ID");
    expect(snippet("webhook", "javascript", { ...context, webhookId: null })).toContain("WEBHOOK_ID");
  });
});
