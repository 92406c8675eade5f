"""Standard Webhooks signing, checked against the scheme's official Python library."""

from __future__ import annotations

import ast
import base64
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import standardwebhooks

from nodeloom import webhooks
from nodeloom.webhooks import WebhookVerificationError, generate_secret, sign, sign_headers, verify

BODY = b'{"type":"execution.completed","executionId":"ex_1","outputs":{"caption":"caf\xc3\xa9"}}'
MSG_ID = "msg_2hB7dYx"
NOW = 1_767_000_000


def _headers(
    secret: str, *, timestamp: int = NOW, body: bytes = BODY, msg_id: str = MSG_ID
) -> dict[str, str]:
    return sign_headers([secret], msg_id=msg_id, timestamp=timestamp, body=body)


def test_generated_secret_is_whsec_and_32_random_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert generate_secret() != secret


def test_signature_matches_the_published_example() -> None:
    # The example message in the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body) == expected


def test_official_library_signs_and_nodeloom_verifies() -> None:
    secret = generate_secret()
    now = int(time.time())
    theirs = standardwebhooks.Webhook(secret)
    signature = theirs.sign(MSG_ID, datetime.fromtimestamp(now, tz=UTC), BODY.decode())
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(now), "webhook-signature": signature}

    verify(secret, headers, BODY)
    verify(secret, headers, BODY.decode())  # the same body given as text


def test_nodeloom_signs_and_official_library_verifies() -> None:
    secret = generate_secret()
    headers = _headers(secret, timestamp=int(time.time()))
    assert standardwebhooks.Webhook(secret).verify(BODY, headers, json_parse=False) is None

    tampered = BODY.replace(b"ex_1", b"ex_2")
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(tampered, headers, json_parse=False)


def test_rotation_two_signatures_each_secret_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    headers = sign_headers([old, new], msg_id=MSG_ID, timestamp=NOW, body=BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2

    verify(old, headers, BODY, now=NOW)
    verify(new, headers, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(generate_secret(), headers, BODY, now=NOW)

    # The official library accepts either secret too.
    real_now_headers = sign_headers([old, new], msg_id=MSG_ID, timestamp=int(time.time()), body=BODY)
    for secret in (old, new):
        standardwebhooks.Webhook(secret).verify(BODY, real_now_headers, json_parse=False)


def test_header_names_are_case_insensitive() -> None:
    secret = generate_secret()
    headers = {name.title(): value for name, value in _headers(secret).items()}
    assert "Webhook-Signature" in headers
    verify(secret, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: (h, b + b" "), id="body"),
        pytest.param(lambda h, b: ({**h, "webhook-id": "msg_other"}, b), id="id"),
        pytest.param(lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b), id="timestamp"),
        pytest.param(
            lambda h, b: ({**h, "webhook-signature": h["webhook-signature"][:-6] + "AAAAA="}, b),
            id="signature",
        ),
        pytest.param(
            lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}, b),
            id="other-version",
        ),
    ],
)
def test_tampered_deliveries_are_refused(tamper) -> None:
    secret = generate_secret()
    headers, body = tamper(_headers(secret), BODY)
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(secret, headers, body, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_refused(missing: str) -> None:
    secret = generate_secret()
    headers = _headers(secret)
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify(secret, headers, BODY, now=NOW)


@pytest.mark.parametrize("timestamp", ["", "abc", "1767000000.5", "-1767000000", "+1767000000", "１２３"])
def test_malformed_timestamp_is_refused(timestamp: str) -> None:
    secret = generate_secret()
    headers = {**_headers(secret), "webhook-timestamp": timestamp}
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, BODY, now=NOW)


@pytest.mark.parametrize("signature", ["garbage", "v1", "v1,", "v1,not*base64", ",,,", "v1,AAAA v1,!!"])
def test_malformed_signature_header_is_refused_not_crashed(signature: str) -> None:
    secret = generate_secret()
    headers = {**_headers(secret), "webhook-signature": signature}
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(secret, headers, BODY, now=NOW)


def test_a_good_signature_among_junk_is_accepted() -> None:
    secret = generate_secret()
    headers = _headers(secret)
    headers["webhook-signature"] = f"v2,abc garbage v1,AAAA {headers['webhook-signature']}"
    verify(secret, headers, BODY, now=NOW)


def test_tolerance_in_both_directions() -> None:
    secret = generate_secret()
    headers = _headers(secret, timestamp=NOW)

    verify(secret, headers, BODY, now=NOW + 300)  # exactly at the edge, in the past
    verify(secret, headers, BODY, now=NOW - 300)  # exactly at the edge, in the future
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(secret, headers, BODY, now=NOW + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify(secret, headers, BODY, now=NOW - 301)

    verify(secret, headers, BODY, now=NOW + 3000, tolerance=3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(secret, headers, BODY, now=NOW + 61, tolerance=60)


def test_official_library_refuses_our_stale_message_too() -> None:
    secret = generate_secret()
    headers = _headers(secret, timestamp=int(time.time()) - 600)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError, match="too old"):
        standardwebhooks.Webhook(secret).verify(BODY, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(secret, headers, BODY)


def test_secret_without_prefix_or_padding_is_the_same_key() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    bare = secret.removeprefix("whsec_").rstrip("=")
    token = sign(secret, msg_id=MSG_ID, timestamp=NOW, body=BODY)
    assert sign(bare, msg_id=MSG_ID, timestamp=NOW, body=BODY) == token


@pytest.mark.parametrize("bad", ["whsec_", "whsec_***", ""])
def test_invalid_secret_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        sign(bad, msg_id=MSG_ID, timestamp=NOW, body=BODY)


def test_sign_headers_needs_a_list_of_secrets() -> None:
    with pytest.raises(ValueError):
        sign_headers([], msg_id=MSG_ID, timestamp=NOW, body=BODY)
    with pytest.raises(TypeError):
        sign_headers(generate_secret(), msg_id=MSG_ID, timestamp=NOW, body=BODY)  # type: ignore[arg-type]


def test_module_imports_only_the_standard_library() -> None:
    import sys

    tree = ast.parse(Path(webhooks.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and (not isinstance(node, ast.ImportFrom) or node.level == 0)
        for alias in node.names
    }
    assert imported <= sys.stdlib_module_names | {"__future__"}
