import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SSEParser, parseEventStream } from "../src/sse.js";

const STREAM =
  ": keep-alive\n\n" +
  "id: 1\nevent: execution.started\ndata: {}\n\n" +
  "id: 2\nevent: node.started\ndata: {\"nodeId\":\"tpl\",\"nodeType\":\"text.template\"}\n\n" +
  "id: 3\nevent: node.completed\ndata: {\"nodeId\":\"tpl\",\n" +
  "data: \"outputs\":{\"text\":\"Hällo 世界\"}}\n\n" +
  "retry: 1000\n\n" +
  "id: 4\nevent: execution.completed\ndata: {\"status\":\"COMPLETED\"}\n\n";

function summary(events: { id: number | null; event: string; nodeId: string | null; terminal: boolean }[]) {
  return events.map((e) => [e.id, e.event, e.nodeId, e.terminal]);
}

const EXPECTED = [
  [1, "execution.started", null, false],
  [2, "node.started", "tpl", false],
  [3, "node.completed", "tpl", false],
  [4, "execution.completed", null, true],
];

function streamOf(chunks: Uint8Array[], error?: Error): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else if (error) controller.error(error);
      else controller.close();
    },
  });
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe("SSEParser", () => {
  it("reads id, event and data fields, joins data lines and skips comments and unknown fields", () => {
    const events = new SSEParser().push(STREAM);
    assert.deepEqual(summary(events), EXPECTED);
    assert.deepEqual(events[2]!.data, { nodeId: "tpl", outputs: { text: "Hällo 世界" } });
    assert.deepEqual(events[0]!.data, {});
  });

  it("gives the same events however the text is split, with LF, CRLF or CR line ends", () => {
    for (const ending of ["\n", "\r\n", "\r"]) {
      const text = "\ufeff" + STREAM.replace(/\n/g, ending);
      for (const size of [1, 2, 3, 7, 64]) {
        const parser = new SSEParser();
        const events = [];
        for (let i = 0; i < text.length; i += size) events.push(...parser.push(text.slice(i, i + size)));
        assert.deepEqual(summary(events), EXPECTED, `ending ${JSON.stringify(ending)}, chunks of ${size}`);
      }
    }
  });

  it("decodes data that is not a JSON object, resets the id per event and drops an undispatched tail", () => {
    const parser = new SSEParser();
    const events = parser.push("id: x\nevent: a\ndata: [1,2]\n\nevent: b\ndata: not json\n\ndata: 7\n\nid: 9\nevent: half\ndata: {}");
    assert.deepEqual(
      events.map((e) => [e.id, e.event, e.data]),
      [
        [null, "a", { value: [1, 2] }],
        [null, "b", { text: "not json" }],
        [null, "message", { value: 7 }],
      ],
    );
    assert.deepEqual(parser.end(), []);
  });
});

describe("parseEventStream", () => {
  it("decodes UTF-8 split across chunks", async () => {
    const bytes = new TextEncoder().encode(STREAM);
    const chunks = [];
    for (let i = 0; i < bytes.length; i += 5) chunks.push(bytes.slice(i, i + 5));
    const events = await collect(parseEventStream(streamOf(chunks)));
    assert.deepEqual(summary(events), EXPECTED);
    assert.equal((events[2]!.data.outputs as { text: string }).text, "Hällo 世界");
  });

  it("yields what came before a dropped connection, then throws", async () => {
    const bytes = new TextEncoder().encode(STREAM.slice(0, STREAM.indexOf("id: 3")));
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const event of parseEventStream(streamOf([bytes], new TypeError("terminated")))) seen.push(event.id!);
    }, /terminated/);
    assert.deepEqual(seen, [1, 2]);
  });

  it("ends a stream that stays silent longer than the read timeout", async () => {
    const silent = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => undefined) });
    await assert.rejects(collect(parseEventStream(silent, { readTimeoutMs: 30 })), { name: "StreamStalled" });
  });
});
