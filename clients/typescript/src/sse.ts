// A Server-Sent Events parser (the WHATWG text/event-stream format, as much of it as the API uses), over
// fetch's body stream: no EventSource, so a request can carry Authorization and Last-Event-ID headers.

import { toEvent, type Event } from "./types.js";

/**
 * Incremental parser: `push(text)` returns the events the text completed. Lines end with LF, CRLF or CR;
 * `id:`, `event:` and `data:` fields (several data lines are joined with newlines), a blank line dispatches,
 * lines starting with `:` are comments (keep-alives), unknown fields (`retry:`) are ignored. `data` is decoded as
 * JSON: an object as it is, anything else as `{value}` (or `{text}` when it is not JSON).
 */
export class SSEParser {
  private buffer = "";
  private id: number | null = null;
  private type = "";
  private data: string[] = [];
  private started = false;
  private pendingCR = false;

  push(text: string): Event[] {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingCR && text.startsWith("\n")) text = text.slice(1); // the LF of a CRLF split across chunks
    this.pendingCR = false;
    this.buffer += text;
    const events: Event[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.buffer.slice(start, i);
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCR = true;
        }
      }
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  /** The end of the stream: an event not yet dispatched by a blank line is dropped, as the format says. */
  end(): Event[] {
    this.buffer = "";
    this.reset();
    return [];
  }

  private reset(): void {
    this.id = null;
    this.type = "";
    this.data = [];
  }

  private line(line: string): Event | null {
    if (line === "") {
      const hasEvent = this.data.length > 0 || this.type !== "";
      const event = hasEvent ? toEvent(this.id, this.type || "message", decode(this.data.join("\n"))) : null;
      this.reset();
      return event;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "id") this.id = /^\d+$/.test(value) ? Number(value) : null;
    else if (name === "event") this.type = value;
    else if (name === "data") this.data.push(value);
    return null;
  }
}

/** Events from a text/event-stream body. `readTimeoutMs`: a read that brings nothing for that long ends the
 * stream with an error (the server sends a keep-alive every 15 s, so silence means a dead connection). */
export async function* parseEventStream(
  body: ReadableStream<Uint8Array>,
  options: { readTimeoutMs?: number; signal?: AbortSignal } = {},
): AsyncGenerator<Event, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parser = new SSEParser();
  try {
    while (true) {
      const { done, value } = await readWithTimeout(reader, options.readTimeoutMs, options.signal);
      if (done) {
        const tail = decoder.decode();
        for (const event of tail ? parser.push(tail) : []) yield event;
        parser.end();
        return;
      }
      for (const event of parser.push(decoder.decode(value, { stream: true }))) yield event;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/** The stream went silent for longer than the read timeout. */
export class StreamStalled extends Error {
  constructor(ms: number) {
    super(`no data on the event stream for ${ms} ms`);
    this.name = "StreamStalled";
  }
}

function readWithTimeout(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number | undefined,
  signal: AbortSignal | undefined,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  if (!ms && !signal) return reader.read();
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => finish(() => reject(signal?.reason ?? new DOMException("aborted", "AbortError")));
    const finish = (settle: () => void) => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      settle();
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    if (ms) timer = setTimeout(() => finish(() => reject(new StreamStalled(ms))), ms);
    reader.read().then(
      (result) => finish(() => resolve(result)),
      (error: unknown) => finish(() => reject(error)),
    );
  });
}

function decode(text: string): Record<string, unknown> {
  if (!text) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { text };
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };
}
