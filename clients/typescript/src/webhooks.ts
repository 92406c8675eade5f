// Verifying nodeloom's callbacks: the Standard Webhooks scheme (https://www.standardwebhooks.com), with
// WebCrypto's HMAC-SHA256 (crypto.subtle) — in browsers, Deno, Bun, workers and Node ≥ 18.
//
// A delivery carries `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`: space-separated
// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` entries, where the key is the base64 after `whsec_`
// in the account's webhook secret (GET /api/v1/account). While a secret is being rotated the server signs with
// both, so either secret verifies.

import { lowerHeaders, WebhookVerificationError, type HeadersLike } from "./errors.js";

/** Seconds a delivery's timestamp may lie in the past or future (the replay window). */
export const DEFAULT_TOLERANCE = 300;

export interface VerifyOptions {
  /** The replay window in seconds (default 300). */
  tolerance?: number;
  /** The current time in unix seconds (for tests). */
  now?: number;
}

/**
 * Checks a callback's signature and timestamp and returns its decoded JSON payload; throws
 * `WebhookVerificationError` when anything is wrong. `body` must be the raw body as received (a string is taken
 * as UTF-8; re-serialised JSON will not match); header names are matched without regard to case (a `Headers`,
 * a plain object such as Node's `req.headers`, or entries).
 */
export async function verifyWebhook<T = unknown>(
  body: string | Uint8Array | ArrayBuffer,
  headers: HeadersLike,
  secret: string,
  options: VerifyOptions = {},
): Promise<T> {
  const raw = typeof body === "string" ? new TextEncoder().encode(body) : body instanceof Uint8Array ? body : new Uint8Array(body);
  const lowered = lowerHeaders(headers);
  const msgId = lowered["webhook-id"];
  const timestampText = (lowered["webhook-timestamp"] ?? "").trim();
  const signatures = lowered["webhook-signature"];
  if (!msgId || !timestampText || !signatures) {
    throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header");
  }
  if (!/^[0-9]+$/.test(timestampText)) throw new WebhookVerificationError("webhook-timestamp must be whole unix seconds");
  const timestamp = Number(timestampText);
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const now = options.now ?? Date.now() / 1000;
  if (timestamp < now - tolerance) throw new WebhookVerificationError("message timestamp is too old");
  if (timestamp > now + tolerance) throw new WebhookVerificationError("message timestamp is too far in the future");

  const subtle = await getSubtle();
  const key = await subtle.importKey("raw", secretKey(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const prefix = new TextEncoder().encode(`${msgId}.${timestamp}.`);
  const signed = new Uint8Array(prefix.length + raw.length);
  signed.set(prefix, 0);
  signed.set(raw, prefix.length);
  // crypto.subtle.verify compares in constant time; every candidate is checked, so timing tells nothing
  let matched = false;
  for (const token of signatures.split(/\s+/)) {
    const comma = token.indexOf(",");
    if (comma === -1 || token.slice(0, comma) !== "v1") continue;
    const candidate = decodeBase64(token.slice(comma + 1));
    if (!candidate || candidate.length === 0) continue;
    if (await subtle.verify("HMAC", key, candidate, signed)) matched = true;
  }
  if (!matched) throw new WebhookVerificationError("no matching signature found");
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw)) as T;
  } catch {
    throw new WebhookVerificationError("the body is not JSON");
  }
}

/** The key bytes of a `whsec_…` secret (unpadded base64 accepted). */
function secretKey(secret: string): Uint8Array<ArrayBuffer> {
  const encoded = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  const key = decodeBase64(encoded);
  if (key === null) throw new TypeError("a webhook secret is 'whsec_' followed by base64");
  if (key.length === 0) throw new TypeError("a webhook secret may not be empty");
  return key;
}

/** Strict standard base64 (padding restored when missing); null when it is not. */
function decodeBase64(text: string): Uint8Array<ArrayBuffer> | null {
  const padded = text + "=".repeat((4 - (text.length % 4)) % 4);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(padded) || padded.length % 4 !== 0) return null;
  let binary: string;
  try {
    binary = atob(padded);
  } catch {
    return null;
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** WebCrypto's SubtleCrypto: the global one (browsers, Node ≥ 19), else Node 18's `node:crypto` webcrypto. */
async function getSubtle(): Promise<SubtleCrypto> {
  const global = (globalThis as { crypto?: Crypto }).crypto;
  if (global?.subtle) return global.subtle;
  const specifier = "node:crypto"; // through a variable: bundlers for browsers leave it alone
  const mod = (await import(/* @vite-ignore */ specifier)) as { webcrypto?: Crypto };
  if (!mod.webcrypto?.subtle) throw new WebhookVerificationError("no WebCrypto (crypto.subtle) in this runtime");
  return mod.webcrypto.subtle;
}
