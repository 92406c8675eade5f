"""The client's retry rules and its SSE parser, against scripted answers (the live-server tests cover the rest)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from nodeloom_client import AsyncNodeloom, Conflict, RateLimited, ServerError
from nodeloom_client._sse import parse_events


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), seen


def envelope(status: int, code: str, headers: dict[str, str] | None = None, **extra: object) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={"error": {"code": code, "message": code, **extra}})


ACCEPTED = httpx.Response(202, json={"executionId": "ex_1", "status": "QUEUED"})


async def test_every_retry_of_a_submission_carries_the_same_idempotency_key() -> None:
    transport, seen = scripted(httpx.ConnectError("refused"), envelope(503, "unavailable", {"Retry-After": "0"}),
                               envelope(409, "idempotency_key_in_use"), ACCEPTED)
    async with AsyncNodeloom("sk-test", base_url="http://x", transport=transport) as nl:
        assert (await nl.execute("wf_1", {"prompt": "p"})).execution_id == "ex_1"
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(seen) == 4 and len(keys) == 1


async def test_retries_are_bounded_and_long_waits_are_not_taken() -> None:
    transport, seen = scripted(*[envelope(429, "rate_limited", {"Retry-After": "0"}, retryAfter=0)] * 3)
    async with AsyncNodeloom("sk-test", base_url="http://x", transport=transport, max_retries=2) as nl:
        with pytest.raises(RateLimited):
            await nl.usage()
    assert len(seen) == 3  # the first try and two retries
    transport, seen = scripted(envelope(429, "daily_quota_exceeded", {"Retry-After": "7200"}, retryAfter=7200))
    async with AsyncNodeloom("sk-test", base_url="http://x", transport=transport) as nl:
        with pytest.raises(RateLimited) as err:
            await nl.usage()
    assert err.value.retry_after == 7200 and len(seen) == 1  # not two hours of sleeping


async def test_a_500_and_other_conflicts_are_not_retried() -> None:
    transport, seen = scripted(envelope(500, "internal_error"))
    async with AsyncNodeloom("sk-test", base_url="http://x", transport=transport) as nl:
        with pytest.raises(ServerError):
            await nl.execute("wf_1")  # a stored 5xx would only be replayed
    transport, seen = scripted(envelope(409, "workflow_not_published"))
    async with AsyncNodeloom("sk-test", base_url="http://x", transport=transport) as nl:
        with pytest.raises(Conflict):
            await nl.execute("wf_1")
    assert len(seen) == 1


async def lines(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


async def test_sse_parser_joins_data_lines_and_skips_comments() -> None:
    events = [e async for e in parse_events(lines(
        ": keep-alive", "", "id: 7", "event: node.progress", 'data: {"nodeId": "a",', 'data: "progress": 0.5}', "",
        "id:8", "event:execution.completed", "data:{}", ""))]
    assert [(e.id, e.event) for e in events] == [(7, "node.progress"), (8, "execution.completed")]
    assert events[0].data == {"nodeId": "a", "progress": 0.5} and events[0].node_id == "a"
    assert events[1].terminal and not events[0].terminal
