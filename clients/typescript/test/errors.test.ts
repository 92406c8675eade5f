import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  APIError,
  BadRequest,
  Conflict,
  Forbidden,
  InsufficientCredits,
  NotFound,
  PayloadTooLarge,
  RateLimited,
  ServerError,
  Unauthorized,
  ValidationFailed,
  errorFor,
  errorFromResponse,
  parseRetryAfter,
} from "../src/index.js";

const envelope = (code: string, extra: Record<string, unknown> = {}) => ({ error: { code, message: `about ${code}`, ...extra } });

describe("error mapping", () => {
  it("maps each status to its class, keeping code, message, body and the request id", () => {
    const cases: [number, string, new (...args: never[]) => APIError][] = [
      [400, "invalid_json", BadRequest],
      [401, "unauthorized", Unauthorized],
      [402, "insufficient_credits", InsufficientCredits],
      [403, "forbidden", Forbidden],
      [404, "not_found", NotFound],
      [409, "workflow_not_published", Conflict],
      [413, "payload_too_large", PayloadTooLarge],
      [422, "invalid_inputs", ValidationFailed],
      [429, "rate_limited", RateLimited],
      [500, "internal_error", ServerError],
      [503, "comfyui_unavailable", ServerError],
      [418, "teapot", APIError],
    ];
    for (const [status, code, Class] of cases) {
      const error = errorFor(status, envelope(code), { "X-Request-Id": "req_1" });
      assert.ok(error instanceof Class, `${status} → ${Class.name}`);
      assert.ok(error instanceof APIError && error instanceof Error);
      assert.equal(error.name, Class.name);
      assert.deepEqual([error.status, error.code, error.message, error.requestId], [status, code, `about ${code}`, "req_1"]);
      assert.deepEqual(error.body, envelope(code));
    }
  });

  it("reads 402's required, balance and per-node breakdown", () => {
    const error = errorFor(402, envelope("insufficient_credits", {
      required: 25,
      balance: 3,
      breakdown: [
        { nodeId: "gen", nodeType: "generate.flux_2_pro", credits: 19 },
        { nodeId: "seg", nodeType: "comfyui.segment", credits: 6, nodes: ["3", "4"] },
      ],
    })) as InsufficientCredits;
    assert.equal(error.required, 25);
    assert.equal(error.balance, 3);
    assert.deepEqual(error.breakdown, [
      { nodeId: "gen", nodeType: "generate.flux_2_pro", credits: 19, nodes: [] },
      { nodeId: "seg", nodeType: "comfyui.segment", credits: 6, nodes: ["3", "4"] },
    ]);
    const anonymous = errorFor(402, envelope("insufficient_credits")) as InsufficientCredits;
    assert.deepEqual([anonymous.required, anonymous.balance, anonymous.breakdown], [null, null, []]);
  });

  it("reads 422's details and 429's retryAfter (the envelope's, else the header's)", () => {
    const invalid = errorFor(422, envelope("invalid_inputs", { details: [{ path: "inputs.nope", message: "not an input" }, "junk"] }));
    assert.ok(invalid instanceof ValidationFailed);
    assert.deepEqual(invalid.details, [{ path: "inputs.nope", message: "not an input" }]);
    assert.equal((errorFor(429, envelope("execution_rate_limited", { retryAfter: 12 })) as RateLimited).retryAfter, 12);
    assert.equal((errorFor(429, envelope("rate_limited"), new Headers({ "Retry-After": "7" })) as RateLimited).retryAfter, 7);
    assert.equal((errorFor(429, envelope("rate_limited")) as RateLimited).retryAfter, null);
  });

  it("describes answers that are not the envelope by their status and text", async () => {
    const error = await errorFromResponse(new Response("<html>bad gateway</html>", { status: 502, headers: { "x-request-id": "r9" } }));
    assert.ok(error instanceof ServerError);
    assert.deepEqual([error.status, error.code, error.message, error.requestId, error.body], [502, "http_502", "<html>bad gateway</html>", "r9", null]);
    assert.equal(errorFor(404, null).message, "HTTP 404");
  });

  it("parses Retry-After as seconds or an HTTP date", () => {
    assert.equal(parseRetryAfter("3"), 3);
    assert.equal(parseRetryAfter(null), null);
    assert.equal(parseRetryAfter("soon"), null);
    const inTen = parseRetryAfter(new Date(Date.now() + 10_000).toUTCString())!;
    assert.ok(inTen > 8 && inTen <= 10, String(inTen));
    assert.equal(parseRetryAfter(new Date(Date.now() - 10_000).toUTCString()), 0);
  });
});
