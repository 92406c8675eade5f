"""Fixtures for webhook tests: a live receiver and servers with a fast retry schedule."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from tests.support.server import LiveServer
from tests.webhooks.receiver import Receiver

#: servers in these tests call back to a loopback receiver, so the operator allows private URLs
FAST: dict[str, Any] = {"allow_private_urls": True, "webhook_retry_schedule": [0.2, 0.2, 0.2, 0.2],
                        "webhook_retry_jitter": 0.0, "webhook_poll_interval_seconds": 0.05}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def fast_server(make_server: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    def factory(**overrides: Any) -> LiveServer:
        return make_server(**{**FAST, **overrides})

    return factory


@pytest.fixture
def fast_api(fast_server: Callable[..., LiveServer]) -> Iterator[tuple[httpx.Client, LiveServer]]:
    srv = fast_server()
    _account_id, key = srv.account()
    with srv.client(key) as c:
        yield c, srv


def deliveries(client: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    r = client.get("/api/v1/webhook-deliveries", params={"executionId": execution_id})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def wait_delivery(client: httpx.Client, execution_id: str, done: Callable[[dict[str, Any]], bool],
                  timeout: float = 20) -> dict[str, Any]:
    """The execution's only delivery, once `done(delivery)` holds."""
    deadline = time.time() + timeout
    while True:
        rows = deliveries(client, execution_id)
        if len(rows) == 1 and done(rows[0]):
            return rows[0]
        if time.time() > deadline:
            raise AssertionError(f"delivery of {execution_id} never got there: {rows}")
        time.sleep(0.05)
