// A fetch double for tests: each call goes to a handler that answers {status, body}.

import { vi } from "vitest";
import { configureClient } from "../api/client";

export interface FakeRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

export type Handler = (request: FakeRequest) => { status?: number; body?: unknown; text?: string } | Promise<{ status?: number; body?: unknown; text?: string }>;

export function installFetch(handler: Handler) {
  const calls: FakeRequest[] = [];
  const fetchImpl = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request: FakeRequest = {
      method: init?.method ?? "GET",
      url: String(input),
      headers: (init?.headers as Record<string, string>) ?? {},
      body: typeof init?.body === "string" ? JSON.parse(init.body) : init?.body,
    };
    calls.push(request);
    const answer = await handler(request);
    const status = answer.status ?? 200;
    const text = answer.text ?? (answer.body === undefined ? "" : JSON.stringify(answer.body));
    return new Response(status === 204 ? null : text, { status, headers: { "Content-Type": "application/json" } });
  });
  configureClient({ fetchImpl: fetchImpl as unknown as typeof fetch });
  return { calls, fetchImpl };
}
