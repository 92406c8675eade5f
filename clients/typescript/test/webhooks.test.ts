import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { WebhookVerificationError, verifyWebhook } from "../src/index.js";

// Signed by the server's own signer (nodeloom.webhooks.sign_headers) with two secrets, as during a rotation.
const VECTOR = JSON.parse(readFileSync(new URL("../../test/fixtures/webhook-vector.json", import.meta.url), "utf8")) as {
  secret: string;
  otherSecret: string;
  body: string;
  headers: Record<string, string>;
};
const NOW = Number(VECTOR.headers["webhook-timestamp"]) + 10;

describe("verifyWebhook", () => {
  it("accepts the server's signature with either secret, for a string or bytes body and any header form", async () => {
    const payload = await verifyWebhook<{ executionId: string; outputs: { greeting: string } }>(VECTOR.body, VECTOR.headers, VECTOR.secret, { now: NOW });
    assert.equal(payload.executionId, "ex_vector");
    assert.equal(payload.outputs.greeting, "Grüße, 世界!");
    const bytes = new TextEncoder().encode(VECTOR.body);
    const upper = Object.fromEntries(Object.entries(VECTOR.headers).map(([k, v]) => [k.toUpperCase(), v]));
    assert.deepEqual(await verifyWebhook(bytes, upper, VECTOR.otherSecret, { now: NOW }), payload);
    assert.deepEqual(await verifyWebhook(bytes.buffer, new Headers(VECTOR.headers), VECTOR.secret, { now: NOW }), payload);
    const unpadded = VECTOR.secret.replace(/=+$/, "");
    assert.deepEqual(await verifyWebhook(VECTOR.body, VECTOR.headers, unpadded, { now: NOW }), payload);
  });

  it("refuses a changed body, another secret, a stale or future timestamp, missing or malformed headers", async () => {
    const forged = VECTOR.body.replace("Grüße", "Forged");
    const h = VECTOR.headers;
    const cases: [string, Record<string, string>, string, number][] = [
      [forged, h, VECTOR.secret, NOW],
      [VECTOR.body, h, "whsec_" + "QUJD".repeat(8), NOW],
      [VECTOR.body, h, VECTOR.secret, NOW + 3600],
      [VECTOR.body, h, VECTOR.secret, NOW - 3600],
      [VECTOR.body, { "webhook-id": h["webhook-id"]! }, VECTOR.secret, NOW],
      [VECTOR.body, { ...h, "webhook-timestamp": `${h["webhook-timestamp"]}.5` }, VECTOR.secret, NOW],
      [VECTOR.body, { ...h, "webhook-id": "dlv_other" }, VECTOR.secret, NOW],
      [VECTOR.body, { ...h, "webhook-signature": h["webhook-signature"]!.replace(/v1,/g, "v2,") }, VECTOR.secret, NOW],
      [VECTOR.body, { ...h, "webhook-signature": "v1,not*base64 v1," }, VECTOR.secret, NOW],
    ];
    for (const [body, headers, secret, now] of cases) {
      await assert.rejects(verifyWebhook(body, headers, secret, { now }), WebhookVerificationError, JSON.stringify(headers));
    }
  });

  it("uses the current time by default and refuses a secret that is not base64", async () => {
    await assert.rejects(verifyWebhook(VECTOR.body, VECTOR.headers, VECTOR.secret), /too old/);
    await assert.rejects(verifyWebhook(VECTOR.body, VECTOR.headers, "whsec_***", { now: NOW }), TypeError);
  });
});
