"""Standard Webhooks signatures (https://www.standardwebhooks.com).

nodeloom signs every callback it sends, and checks the signature of a webhook trigger when a
workflow sets a trigger secret. Receivers verify callbacks with the same code:

    from nodeloom.webhooks import verify, WebhookVerificationError

    verify(secret, request.headers, await request.body())   # raises on a bad delivery

The scheme: a secret is ``whsec_`` followed by the base64 of the key bytes; a message carries
``webhook-id``, ``webhook-timestamp`` (unix seconds) and ``webhook-signature``, a space-separated
list of ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` — one per secret while a
secret is being rotated, so a receiver holding either the old or the new secret accepts it.

This module is imported by users' receivers, so it imports the standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import time
from collections.abc import Mapping, Sequence

__all__ = [
    "DEFAULT_TOLERANCE",
    "SECRET_PREFIX",
    "WebhookVerificationError",
    "generate_secret",
    "sign",
    "sign_headers",
    "verify",
]

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300
"""Seconds a message's timestamp may lie in the past or the future (replay window)."""

_VERSION = "v1"
_KEY_BYTES = 32


class WebhookVerificationError(Exception):
    """The delivery is not a valid, fresh message signed with the secret: reject it."""


def generate_secret() -> str:
    """A new random signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(_KEY_BYTES)).decode("ascii")


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64>`` signature of one message under one secret."""
    digest = _digest(_key(secret), msg_id=msg_id, timestamp=timestamp, body=_as_bytes(body))
    return f"{_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign_headers(secrets: Sequence[str], *, msg_id: str, timestamp: int, body: bytes | str) -> dict[str, str]:
    """The three headers of a delivery, signed with every secret given (old and new while rotating)."""
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not one string")
    if not secrets:
        raise ValueError("at least one secret is needed to sign a webhook")
    signatures = [sign(secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a delivery's headers and body; return nothing, raise `WebhookVerificationError` if bad.

    Header names are matched without regard to case. ``body`` must be the raw bytes received
    (a str is taken as UTF-8): re-serialised JSON will not match. ``now`` (unix seconds) is for tests.
    """
    key = _key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signature_header = lowered.get("webhook-signature")
    if not msg_id or not timestamp_text or not signature_header:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")

    timestamp = _parse_timestamp(timestamp_text)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("message timestamp is too old")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("message timestamp is too far in the future")

    expected = _digest(key, msg_id=msg_id, timestamp=timestamp, body=_as_bytes(body))
    # Check every candidate without stopping early, so timing says nothing about which one matched.
    matched = False
    for candidate in _v1_signatures(signature_header):
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError("no matching signature found")


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # Some issuers publish unpadded base64; padding is restored before strict decoding.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def _digest(key: bytes, *, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed_content = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed_content, hashlib.sha256).digest()


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _parse_timestamp(text: str) -> int:
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit():
        raise WebhookVerificationError("webhook-timestamp must be whole unix seconds")
    return int(stripped)


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` signatures in a header; other versions and malformed entries are skipped."""
    signatures = []
    for token in header.split():
        version, _, encoded = token.partition(",")
        if version != _VERSION or not encoded:
            continue
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return signatures
