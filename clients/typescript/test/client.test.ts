import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ExecutionFailed,
  Media,
  NetworkError,
  Nodeloom,
  NotFound,
  RateLimited,
  ValidationFailed,
  type FetchLike,
  type Progress,
} from "../src/index.js";

interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}
type Answer = Response | Error | (() => Response);

/** A fetch double: records each call, answers from `handler`. */
function fakeFetch(handler: (call: Call, index: number) => Answer | Promise<Answer>) {
  const calls: Call[] = [];
  const fetch: FetchLike = async (url, init = {}) => {
    const call = { method: init.method ?? "GET", url, headers: { ...(init.headers as Record<string, string>) }, body: init.body };
    calls.push(call);
    const answer = await handler(call, calls.length - 1);
    if (answer instanceof Error) throw answer;
    return typeof answer === "function" ? answer() : answer;
  };
  return { calls, fetch };
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
const envelope = (status: number, code: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  json({ error: { code, message: code, ...extra } }, status, headers);

/** An event stream that sends `text`, then ends — or breaks, like a cut connection. */
function sse(text: string, cut = false): Response {
  const bytes = new TextEncoder().encode(text);
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(bytes);
      } else if (cut) controller.error(new TypeError("terminated"));
      else controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

const event = (id: number, type: string, data: Record<string, unknown> = {}) => `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
const EVENTS = [
  event(1, "execution.started"),
  event(2, "node.started", { nodeId: "a" }),
  event(3, "node.completed", { nodeId: "a" }),
  event(4, "node.started", { nodeId: "b" }),
  event(5, "node.progress", { nodeId: "b", progress: 0.5 }),
  event(6, "node.completed", { nodeId: "b" }),
  event(7, "execution.completed", { status: "COMPLETED" }),
];
const POLL_RUNNING = { executionId: "ex_1", status: "RUNNING", nodes: { a: { status: "QUEUED" }, b: { status: "QUEUED" } } };
const POLL_DONE = {
  executionId: "ex_1",
  workflowId: "wf_1",
  status: "COMPLETED",
  creditsUsed: 2,
  outputs: { caption: "a fox", image: { url: "http://files.test/api/v1/files/file_1?exp=1&sig=x", contentType: "image/png", width: 4, height: 2 } },
  nodes: { a: { status: "COMPLETED" }, b: { status: "COMPLETED", credits: 2 } },
};

function client(fetch: FetchLike, extra: Partial<ConstructorParameters<typeof Nodeloom>[0]> = {}) {
  return new Nodeloom({ baseUrl: "http://api.test/", apiKey: "sk-test", fetch, ...extra });
}

describe("requests", () => {
  it("sends the key and an Idempotency-Key on POST, the same one on each retry, and honours Retry-After", async () => {
    const { calls, fetch } = fakeFetch((_call, i) =>
      i === 0 ? envelope(429, "rate_limited", {}, { "Retry-After": "0" }) : i === 1 ? envelope(503, "unavailable") : json({ executionId: "ex_1", status: "QUEUED" }, 202),
    );
    const submitted = await client(fetch).execute("wf_1", { prompt: "fox" }, { version: "draft" });
    assert.deepEqual([submitted.executionId, submitted.status, submitted.replayed], ["ex_1", "QUEUED", false]);
    assert.equal(calls.length, 3);
    const keys = new Set(calls.map((c) => c.headers["Idempotency-Key"]));
    assert.equal(keys.size, 1);
    assert.match([...keys][0]!, /^nlc-[0-9a-f-]{36}$/);
    assert.equal(calls[0]!.url, "http://api.test/api/v1/workflows/wf_1/execute");
    assert.equal(calls[0]!.headers.Authorization, "Bearer sk-test");
    assert.deepEqual(JSON.parse(calls[0]!.body as string), { inputs: { prompt: "fox" }, version: "draft" });
    const again = fakeFetch(() => json({ executionId: "ex_2", status: "QUEUED" }, 202));
    await client(again.fetch).execute("wf_1", {});
    await client(again.fetch).execute("wf_1", {});
    assert.notEqual(again.calls[0]!.headers["Idempotency-Key"], again.calls[1]!.headers["Idempotency-Key"]);
    assert.equal(again.calls.some((c) => c.method !== "POST"), false);
  });

  it("gives up after a bounded number of retries, and at once when Retry-After is too long", async () => {
    const limited = fakeFetch(() => envelope(429, "rate_limited", { retryAfter: 0 }));
    await assert.rejects(client(limited.fetch, { maxRetries: 2 }).usage(), (e: unknown) => e instanceof RateLimited && e.retryAfter === 0);
    assert.equal(limited.calls.length, 3);
    const daily = fakeFetch(() => envelope(429, "daily_quota_exceeded", { retryAfter: 3600 }));
    await assert.rejects(client(daily.fetch).usage(), (e: unknown) => e instanceof RateLimited && e.code === "daily_quota_exceeded");
    assert.equal(daily.calls.length, 1);
    const invalid = fakeFetch(() => envelope(422, "invalid_inputs", { details: [{ path: "inputs.x", message: "unknown" }] }));
    await assert.rejects(client(invalid.fetch).execute("wf_1", { x: 1 }), (e: unknown) => e instanceof ValidationFailed && e.details[0]!.path === "inputs.x");
    assert.equal(invalid.calls.length, 1);
  });

  it("retries network failures, then throws NetworkError; an abort is not retried", async () => {
    const down = fakeFetch(() => new TypeError("fetch failed"));
    await assert.rejects(client(down.fetch, { maxRetries: 1 }).poll("ex_1"), NetworkError);
    assert.equal(down.calls.length, 2);
    const controller = new AbortController();
    controller.abort();
    const aborted = fakeFetch(() => new DOMException("aborted", "AbortError"));
    await assert.rejects(client(aborted.fetch).poll("ex_1", { signal: controller.signal }), { name: "AbortError" });
    assert.equal(aborted.calls.length, 1);
  });
});

describe("events and runs", () => {
  it("resumes a cut stream with Last-Event-ID: nothing lost, nothing repeated", async () => {
    const { calls, fetch } = fakeFetch((call) => {
      const after = Number(call.headers["Last-Event-ID"] ?? 0);
      const rest = EVENTS.slice(after);
      return after === 0 ? sse(rest.slice(0, 3).join(""), true) : sse(rest.join(""));
    });
    const ids = [];
    for await (const e of client(fetch).events("ex_1")) ids.push(e.id);
    assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(calls.map((c) => c.headers["Last-Event-ID"]), [undefined, "3"]);
    assert.equal(calls[0]!.headers.Accept, "text/event-stream");
  });

  it("runs with progress for every node and typed outputs", async () => {
    const { calls, fetch } = fakeFetch((call) => {
      if (call.url.endsWith("/execute")) return json({ executionId: "ex_1", status: "QUEUED" }, 202);
      if (call.url.endsWith("/events")) return sse(EVENTS.join(""));
      return json(calls.filter((c) => c.url.endsWith("/poll")).length === 1 ? POLL_RUNNING : POLL_DONE);
    });
    const seen: Progress[] = [];
    const result = await client(fetch).run<{ caption: string; image: Media }>("wf_1", { prompt: "fox" }, { onProgress: (p) => void seen.push(p) });
    assert.equal(result.ok, true);
    assert.equal(result.outputs.caption, "a fox");
    assert.ok(result.outputs.image instanceof Media);
    assert.deepEqual([result.outputs.image.width, result.outputs.image.contentType], [4, "image/png"]);
    assert.deepEqual(
      seen.map((p) => [p.event, p.nodeId]),
      [["execution.started", null], ["node.started", "a"], ["node.completed", "a"], ["node.started", "b"], ["node.progress", "b"], ["node.completed", "b"], ["execution.completed", null]],
    );
    assert.deepEqual(seen.map((p) => p.fraction), [0, 0, 0.5, 0.5, 0.5, 1, 1]);
    assert.deepEqual([seen[4]!.value, seen[4]!.max], [0.5, 1]);
    assert.deepEqual(seen.at(-1)!.nodes, { a: "COMPLETED", b: "COMPLETED" });
  });

  it("falls back to polling when the stream cannot be had, still reporting every node", async () => {
    let polls = 0;
    const { calls, fetch } = fakeFetch((call) => {
      if (call.url.endsWith("/events")) return envelope(503, "unavailable");
      polls += 1;
      if (polls <= 2) return json(POLL_RUNNING);
      if (polls === 3) return json({ ...POLL_RUNNING, nodes: { a: { status: "COMPLETED" }, b: { status: "RUNNING" } } });
      return json(POLL_DONE);
    });
    const seen: string[] = [];
    const result = await client(fetch, { streamReconnects: 1 }).follow("ex_1", { onProgress: (p) => void seen.push(`${p.event}:${p.nodeId}`) });
    assert.equal(result.status, "COMPLETED");
    assert.equal(calls.filter((c) => c.url.endsWith("/events")).length, 2);
    assert.deepEqual(seen, ["node.started:a", "node.completed:a", "node.started:b", "node.completed:b", "execution.completed:null"]);
  });

  it("throws ExecutionFailed for a failed run unless raiseOnFailure is false", async () => {
    const failed = { executionId: "ex_1", status: "FAILED", error: { code: "node_failed", message: "it broke", nodeId: "b" }, nodes: {} };
    const { fetch } = fakeFetch((call) => (call.url.endsWith("/execute") ? json({ executionId: "ex_1", status: "QUEUED" }, 202) : json(failed)));
    await assert.rejects(client(fetch).run("wf_1"), (e: unknown) => e instanceof ExecutionFailed && e.execution.error?.nodeId === "b");
    const quiet = await client(fetch).run("wf_1", {}, { raiseOnFailure: false });
    assert.equal(quiet.status, "FAILED");
  });
});

describe("files", () => {
  it("uploads bytes as multipart with a name and type", async () => {
    const { calls, fetch } = fakeFetch(() => json({ fileId: "file_1", url: "/f", contentType: "image/png", size: 3 }));
    const uploaded = await client(fetch).upload(new Uint8Array([1, 2, 3]), { filename: "x.png" });
    assert.deepEqual([uploaded.fileId, uploaded.size, uploaded.contentType], ["file_1", 3, "image/png"]);
    const form = calls[0]!.body as FormData;
    const file = form.get("file") as File;
    assert.deepEqual([file.name, file.type, file.size], ["x.png", "image/png", 3]);
    assert.equal(calls[0]!.headers["Content-Type"], undefined);
    assert.ok(calls[0]!.headers["Idempotency-Key"]);
  });

  it("uploads a Blob input before executing and downloads without the key", async () => {
    const { calls, fetch } = fakeFetch((call) => {
      if (call.url.endsWith("/uploads")) return json({ fileId: "file_9", url: "/f" });
      if (call.url.endsWith("/execute")) return json({ executionId: "ex_1", status: "QUEUED" }, 202);
      return new Response(new Uint8Array([9, 8, 7]), { status: 200 });
    });
    const nl = client(fetch);
    await nl.execute("wf_1", { image: new Blob([new Uint8Array([1])], { type: "image/png" }), n: 2 });
    assert.deepEqual(JSON.parse(calls[1]!.body as string), { inputs: { image: "file_9", n: 2 } });
    const media = new Media({ url: "/api/v1/files/file_1?exp=1&sig=s", contentType: "image/png" });
    assert.deepEqual([...(await nl.download(media))], [9, 8, 7]);
    assert.equal(calls[2]!.url, "http://api.test/api/v1/files/file_1?exp=1&sig=s");
    assert.equal(calls[2]!.headers.Authorization, undefined);
    const missing = fakeFetch(() => envelope(404, "not_found"));
    await assert.rejects(client(missing.fetch).download("http://files.test/x"), NotFound);
  });
});
