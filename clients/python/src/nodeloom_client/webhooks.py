"""Verifying nodeloom's callbacks (the Standard Webhooks scheme, https://www.standardwebhooks.com).

    from nodeloom_client import verify_webhook, WebhookVerificationError

    payload = verify_webhook(raw_body, request.headers, "whsec_...")   # raises on a bad delivery

A delivery carries ``webhook-id``, ``webhook-timestamp`` (unix seconds) and ``webhook-signature``: a
space-separated list of ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` where the key is the
base64 after ``whsec_`` in the account's webhook secret (``GET /api/v1/account``). While a secret is being
rotated the server signs with both, so either secret verifies. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from nodeloom_client._errors import NodeloomError

__all__ = ["DEFAULT_TOLERANCE", "WebhookVerificationError", "verify_webhook"]

DEFAULT_TOLERANCE = 300
"""Seconds a delivery's timestamp may lie in the past or future (the replay window)."""


class WebhookVerificationError(NodeloomError):
    """Not a fresh message signed with the secret: answer it with 4xx and ignore it."""


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str, *,
                   tolerance: float = DEFAULT_TOLERANCE, now: float | None = None) -> Any:
    """Check a callback's signature and timestamp; return its decoded JSON payload.

    ``body`` must be the raw bytes received (re-serialised JSON will not match); header names are matched
    without regard to case. Raises `WebhookVerificationError` when anything is wrong.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp_text = (lowered.get("webhook-timestamp") or "").strip()
    signatures = lowered.get("webhook-signature")
    if not msg_id or not timestamp_text or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not timestamp_text.isascii() or not timestamp_text.isdigit():
        raise WebhookVerificationError("webhook-timestamp must be whole unix seconds")
    timestamp = int(timestamp_text)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("message timestamp is too old")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("message timestamp is too far in the future")

    expected = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    matched = False
    for token in signatures.split():  # every candidate is compared, so timing tells nothing
        version, _, encoded = token.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError("no matching signature found")
    try:
        return json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key
