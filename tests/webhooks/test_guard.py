"""Callback URLs go through the address guard: at execute time (422) and again at send time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from tests.support.server import LiveServer, publish, text_graph, wait_status
from tests.webhooks.conftest import wait_delivery
from tests.webhooks.receiver import Receiver

PUBLIC = "93.184.216.34"


class FakeDns:
    """Names the tests use; `rebind.example.com` answers a public address once, then loopback."""

    def __init__(self) -> None:
        self.rebind_calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        if host == "rebind.example.com":
            self.rebind_calls += 1
            return [PUBLIC] if self.rebind_calls == 1 else ["127.0.0.1"]
        table = {"hooks.example.com": [PUBLIC], "internal.example.com": ["10.1.2.3"],
                 "mixed.example.com": [PUBLIC, "192.168.0.7"], "metadata.example.com": ["169.254.169.254"]}
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]


@pytest.fixture
def guarded(make_server: Callable[..., LiveServer]) -> Iterator[tuple[httpx.Client, FakeDns, str]]:
    dns = FakeDns()
    srv = make_server(resolver=dns, webhook_retry_schedule=[0.1, 0.1], webhook_poll_interval_seconds=0.05)
    _acct, key = srv.account()
    with srv.client(key) as client:
        yield client, dns, publish(client, text_graph())


@pytest.mark.parametrize("url", [
    "http://hooks.example.com/hook",          # plain http
    "https://internal.example.com/hook",      # private
    "https://mixed.example.com/hook",         # any private answer is enough
    "https://metadata.example.com/latest",    # resolves to a metadata address
    "https://169.254.169.254/latest/meta-data",
    "https://metadata.google.internal/computeMetadata/v1",
    "https://127.0.0.1:8443/hook",
    "https://localhost/hook",
    "https://[::1]/hook",
    "https://2130706433/hook",                # 127.0.0.1 spelled as one number
    "https://nowhere.example.com/hook",       # does not resolve
    "ftp://hooks.example.com/hook",
])
def test_callback_urls_that_cannot_be_valid_are_refused(url: str,
                                                         guarded: tuple[httpx.Client, FakeDns, str]) -> None:
    client, _dns, wid = guarded
    r = client.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}, "webhookUrl": url})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_webhook_url"
    assert error["details"][0]["path"] == "webhookUrl"
    r = client.patch(f"/api/v1/workflows/{wid}/webhook", json={"callbackUrl": url})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "callbackUrl"
    assert client.get("/api/v1/workflows/executions").json()["data"] == []  # nothing was created


def test_a_public_https_callback_is_accepted(guarded: tuple[httpx.Client, FakeDns, str]) -> None:
    client, _dns, wid = guarded
    # subscribed to "failed" only, so a run that completes calls nobody on the real internet
    r = client.post(f"/api/v1/workflows/{wid}/execute",
                    json={"inputs": {}, "webhookUrl": "https://hooks.example.com/hook",
                          "webhookEvents": ["failed"]})
    assert r.status_code == 202, r.text
    r = client.patch(f"/api/v1/workflows/{wid}/webhook", json={"callbackUrl": "https://hooks.example.com/x"})
    assert r.status_code == 200, r.text


def test_the_url_is_checked_again_when_sent(guarded: tuple[httpx.Client, FakeDns, str]) -> None:
    """DNS rebinding: public when the execution was accepted, loopback when the callback goes out."""
    client, dns, wid = guarded
    r = client.post(f"/api/v1/workflows/{wid}/execute",
                    json={"inputs": {}, "webhookUrl": "https://rebind.example.com/hook"})
    assert r.status_code == 202, r.text
    eid = r.json()["executionId"]
    wait_status(client, eid, {"COMPLETED"})
    row = wait_delivery(client, eid, lambda d: d["status"] == "failed")
    assert dns.rebind_calls >= 2
    assert row["attemptCount"] == 3
    for attempt in row["attempts"]:
        assert attempt["statusCode"] is None
        assert "address guard" in attempt["error"] and "loopback" in attempt["error"]


def test_the_operator_may_allow_private_callbacks(make_server: Callable[..., LiveServer],
                                                  receiver: Receiver) -> None:
    srv = make_server(allow_private_urls=True, webhook_poll_interval_seconds=0.05)
    _acct, key = srv.account()
    with srv.client(key) as client:
        wid = publish(client, text_graph())
        r = client.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}, "webhookUrl": receiver.url})
        assert r.status_code == 202, r.text  # plain http on loopback, allowed by the operator
        assert receiver.wait_for(1)[0].path == "/hook"


def test_private_callbacks_are_refused_by_default(make_server: Callable[..., LiveServer],
                                                  receiver: Receiver) -> None:
    srv = make_server()  # NODELOOM_ALLOW_PRIVATE_URLS unset
    _acct, key = srv.account()
    with srv.client(key) as client:
        wid = publish(client, text_graph())
        r = client.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}, "webhookUrl": receiver.url})
        assert r.status_code == 422
    time.sleep(0.2)
    assert receiver.requests == []
