"""Request rates, execution rates, daily quotas and the headers, through real HTTP (API.md "Rate limits")."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from tests.platform.conftest import error_code, make_account, priced_graph
from tests.support.server import LiveServer, publish, require_service, text_graph, wait_status

from nodeloom.clock import FrozenClock
from nodeloom.services.accounts import Principal
from nodeloom.types import ALL_SCOPES

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-request-id")


def assert_rate_headers(response: httpx.Response) -> None:
    for name in RATE_HEADERS:
        assert name in response.headers, f"{name} missing on a {response.status_code}: {dict(response.headers)}"
    assert int(response.headers["x-ratelimit-reset"]) >= int(time.time())


def test_headers_on_200_401_404_422_429_and_500(platform: Callable[..., LiveServer]) -> None:
    server = platform()

    async def boom(request: Request) -> None:
        raise RuntimeError("SELECT secret FROM somewhere")  # never reaches the client

    server.app.add_api_route("/api/v1/test/boom", boom, methods=["GET"])
    _account, key = make_account(server, plan="free")
    with server.client(key) as c, server.client() as anonymous:
        responses = {
            200: c.get("/api/v1/usage"),
            401: anonymous.get("/api/v1/workflows"),
            404: c.get("/api/v1/workflows/wf_missing"),
            422: c.post("/api/v1/workflows", json={"name": ""}),
            500: c.get("/api/v1/test/boom"),
        }
        for _ in range(10):
            last = c.get("/api/v1/usage")
        responses[429] = last
    for status, response in responses.items():
        assert response.status_code == status, (status, response.text)
        assert_rate_headers(response)
    assert responses[200].headers["x-ratelimit-limit"] == "10"  # the free plan's budget
    assert responses[401].headers["x-ratelimit-limit"] == "60"  # the client address's budget
    assert responses[500].json() == {"error": {"code": "internal_error", "message":
                                               "something went wrong on our side; the request id identifies it"}}
    assert "SELECT" not in responses[500].text


def test_free_plan_eleventh_request_is_429_with_retry_after(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    _account, key = make_account(server, plan="free")
    with server.client(key) as c:
        remaining = [int(c.get("/api/v1/usage").headers["x-ratelimit-remaining"]) for _ in range(10)]
        assert remaining == list(range(9, -1, -1))
        before = time.time()
        r = c.get("/api/v1/usage")
    assert r.status_code == 429 and error_code(r) == "rate_limited"
    retry_after = int(r.headers["retry-after"])
    assert r.json()["error"]["retryAfter"] == retry_after
    # the first of the ten leaves the 60 s window a little under 60 s from now
    assert 55 <= retry_after <= 60
    assert abs(int(r.headers["x-ratelimit-reset"]) - (before + retry_after)) <= 2
    assert r.headers["x-ratelimit-remaining"] == "0"


def test_the_window_slides(platform: Callable[..., LiveServer]) -> None:
    server = platform(rate_limit_window_seconds=2, plans={"free": {"requests_per_minute": 3}})
    _account, key = make_account(server, plan="free")
    with server.client(key) as c:
        assert [c.get("/api/v1/usage").status_code for _ in range(4)] == [200, 200, 200, 429]
        time.sleep(2.1)
        assert c.get("/api/v1/usage").status_code == 200


def test_unauthenticated_requests_are_limited_per_address_and_operations_are_not(
        platform: Callable[..., LiveServer]) -> None:
    server = platform(anonymous_requests_per_minute=3)
    _account, key = make_account(server, plan="pro")
    with server.client() as anonymous, server.client(key) as c:
        assert [anonymous.get("/api/v1/workflows").status_code for _ in range(4)] == [401, 401, 401, 429]
        bad_key = anonymous.get("/api/v1/workflows", headers={"Authorization": "Bearer sk-" + "x" * 40})
        assert bad_key.status_code == 429  # an invalid key spends the address's budget
        assert c.get("/api/v1/workflows").status_code == 200  # a valid key has its own
        for path in ("/healthz", "/readyz"):
            for _ in range(5):
                r = anonymous.get(path)
                assert r.status_code == 200
                assert_rate_headers(r)
        upload = c.post("/api/v1/uploads", files={"file": ("a.txt", b"hello", "text/plain")}).json()
        for _ in range(5):  # signed downloads are not limited
            assert anonymous.get(upload["url"]).status_code == 200


def test_dashboard_sessions_have_their_own_budget(platform: Callable[..., LiveServer]) -> None:
    server = platform(session_requests_per_minute=3)
    account_id, key = make_account(server, plan="free")

    def session_auth(request: Request) -> Principal | None:
        cookie = request.cookies.get("session")
        if cookie is None:
            return None
        request.state.session_id = cookie
        return Principal(account_id=account_id, scopes=frozenset(ALL_SCOPES), user_id="usr_1")

    server.app.state.session_auth = session_auth
    with server.client(cookies={"session": "one"}) as one, server.client(cookies={"session": "two"}) as two, \
            server.client(key) as api:
        first = [one.get("/api/v1/usage") for _ in range(4)]
        assert [r.status_code for r in first] == [200, 200, 200, 429]
        assert first[0].headers["x-ratelimit-limit"] == "3"
        assert two.get("/api/v1/usage").status_code == 200  # another session: another budget
        assert api.get("/api/v1/usage").headers["x-ratelimit-remaining"] == "9"  # the plan's API budget is untouched


def test_eleventh_execution_in_a_minute_is_execution_rate_limited(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    _account, key = make_account(server, plan="pro", requests_per_minute=1000)
    with server.client(key) as c:
        wid = publish(c, text_graph())
        codes = [c.post(f"/api/v1/workflows/{wid}/execute", json={}).status_code for _ in range(10)]
        assert codes == [202] * 10
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={})
        assert r.status_code == 429 and error_code(r) == "execution_rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60 and r.json()["error"]["retryAfter"] == int(r.headers["retry-after"])
        assert_rate_headers(r)
        assert len(c.get("/api/v1/workflows/executions", params={"limit": 100}).json()["data"]) == 10


def test_daily_quota_resets_at_utc_midnight(platform: Callable[..., LiveServer]) -> None:
    clock = FrozenClock(1_800_000_000.0)  # 2027-01-15 08:00:00 UTC
    server = platform(clock=clock)
    account_id, key = make_account(server, plan="free", executions_per_day=2, requests_per_minute=1000)
    with server.client(key) as c:
        wid = publish(c, text_graph())
        for _ in range(2):
            wait_status(c, c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"], {"COMPLETED"})
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={})
        assert r.status_code == 429 and error_code(r) == "daily_quota_exceeded"
        assert r.json()["error"]["retryAfter"] == 16 * 3600 == int(r.headers["retry-after"])
        assert c.get("/api/v1/usage").json()["executions"]["today"] == 2
        clock.advance(16 * 3600)  # midnight
        assert c.post(f"/api/v1/workflows/{wid}/execute", json={}).status_code == 202
    assert server.services.limiter.executions_on(account_id, "2027-01-16") == 1


def test_checks_run_in_order(platform: Callable[..., LiveServer]) -> None:
    """Execution rate, then daily quota, then credits: the first refusal answers."""
    server = platform()
    _account, key = make_account(server, plan="pro", credits=10, requests_per_minute=1000, executions_per_day=2,
                                 executions_per_minute=3)
    with server.client(key) as c:
        wid = publish(c, priced_graph())
        assert [c.post(f"/api/v1/workflows/{wid}/execute", json={}).status_code for _ in range(2)] == [202, 202]
        third = c.post(f"/api/v1/workflows/{wid}/execute", json={})  # quota and credits are both short
        assert third.status_code == 429 and error_code(third) == "daily_quota_exceeded"
        fourth = c.post(f"/api/v1/workflows/{wid}/execute", json={})  # now the execution rate is spent too
        assert fourth.status_code == 429 and error_code(fourth) == "execution_rate_limited"


def test_concurrency_cap_makes_executions_wait_not_fail(platform: Callable[..., LiveServer]) -> None:
    server = platform(worker_concurrency=8)
    _capped_id, capped = make_account(server, plan="free", requests_per_minute=10_000)  # free: 2 at once
    _other_id, other = make_account(server, plan="pro")
    with server.client(capped) as c, server.client(other) as o:
        slow = publish(c, {"nodes": [
            {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
            {"id": "wait", "type": "util.delay", "inputs": {"value": {"from": "p", "output": "text"}},
             "params": {"seconds": 0.8}}]})
        ids = [c.post(f"/api/v1/workflows/{slow}/execute", json={}).json()["executionId"] for _ in range(5)]
        other_wf = publish(o, text_graph())
        other_run = o.post(f"/api/v1/workflows/{other_wf}/execute", json={}).json()["executionId"]
        deadline = time.time() + 30
        while time.time() < deadline:
            polls = [c.get(f"/api/v1/workflows/executions/{i}/poll").json() for i in ids]
            if all(p["status"] == "COMPLETED" for p in polls):
                break
            time.sleep(0.05)
        # the other account's run was not stuck behind the capped account's queue
        assert wait_status(o, other_run, {"COMPLETED"}, timeout=5)["status"] == "COMPLETED"
    assert [p["status"] for p in polls] == ["COMPLETED"] * 5
    # the most executions that ever ran at the same moment, from their own start/end times (polling several
    # executions one after another is not one instant, so it cannot measure this)
    edges = sorted([(p["startedAt"], 1) for p in polls] + [(p["completedAt"], -1) for p in polls],
                   key=lambda e: (e[0], e[1]))
    running = most_running = 0
    for _at, step in edges:
        running += step
        most_running = max(most_running, running)
    assert most_running == 2


@pytest.mark.redis
def test_redis_limits_are_shared_by_two_api_processes(platform: Callable[..., LiveServer], tmp_path: Path) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    shared: dict[str, Any] = {"redis_url": "redis://127.0.0.1:6379/0",
                              "rate_limit_namespace": f"test-{uuid.uuid4().hex[:12]}",
                              "database_url": f"sqlite:///{tmp_path / 'shared.db'}"}
    first = platform(**shared)
    second = platform(**shared)
    _account, key = make_account(first, plan="free")
    with first.client(key) as a, second.client(key) as b:
        codes = [(a if i % 2 else b).get("/api/v1/usage").status_code for i in range(10)]
        assert codes == [200] * 10
        for client in (a, b):
            r = client.get("/api/v1/usage")
            assert r.status_code == 429 and error_code(r) == "rate_limited"
            assert int(r.headers["retry-after"]) >= 1
