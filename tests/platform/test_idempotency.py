"""Idempotency-Key on POST, through real HTTP (API.md "Idempotency")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select
from tests.platform.conftest import balance, error_code, make_account, priced_graph
from tests.support.server import LiveServer, delay_graph, publish, text_graph, wait_status

from nodeloom.clock import FrozenClock
from nodeloom.services.idempotency import Claim, fingerprint
from nodeloom.storage.models_platform import IdempotencyKey


def executions(c: httpx.Client) -> list[dict[str, object]]:
    return list(c.get("/api/v1/workflows/executions", params={"limit": 100}).json()["data"])


def test_fifty_concurrent_duplicates_make_one_execution(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    account_id, key = make_account(server, plan="enterprise", credits=100, requests_per_minute=10_000)
    with server.client(key, limits=httpx.Limits(max_connections=60)) as c:
        wid = publish(c, priced_graph())
        barrier = threading.Barrier(50)

        def send(_: int) -> httpx.Response:
            barrier.wait()
            return c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "once"}},
                          headers={"Idempotency-Key": "order-42"})

        with ThreadPoolExecutor(50) as pool:
            responses = list(pool.map(send, range(50)))
        accepted = [r for r in responses if r.status_code == 202]
        assert {r.status_code for r in responses} <= {202, 409}
        assert all(error_code(r) == "idempotency_key_in_use" for r in responses if r.status_code == 409)
        assert len({r.json()["executionId"] for r in accepted}) == 1
        assert sum(1 for r in accepted if "idempotent-replayed" not in r.headers) == 1
        assert len(executions(c)) == 1
        wait_status(c, accepted[0].json()["executionId"], {"COMPLETED"})
        replay = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "once"}},
                        headers={"Idempotency-Key": "order-42"})
        assert replay.status_code == 202 and replay.headers["idempotent-replayed"] == "true"
    assert balance(server, account_id) == 95  # charged once


def test_replay_after_completion_is_byte_for_byte(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    _account, key = make_account(server)
    with server.client(key) as c:
        wid = publish(c, text_graph())
        first = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "you"}},
                       headers={"Idempotency-Key": "wait-1", "Prefer": "wait=10"})
        assert first.status_code == 200 and first.json()["status"] == "COMPLETED"
        assert "idempotent-replayed" not in first.headers
        again = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "you"}},
                       headers={"Idempotency-Key": "wait-1", "Prefer": "wait=10"})
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["x-request-id"] != first.headers["x-request-id"]
        # the same body written differently (key order, spacing) is the same body
        same = c.post(f"/api/v1/workflows/{wid}/execute", content=b'{ "inputs" : {"prompt":"you"} }',
                      headers={"Idempotency-Key": "wait-1", "Content-Type": "application/json"})
        assert same.content == first.content
        created = c.post("/api/v1/workflows", json={"name": "once", "graph": text_graph()},
                         headers={"Idempotency-Key": "create-1"})
        replayed = c.post("/api/v1/workflows", json={"name": "once", "graph": text_graph()},
                          headers={"Idempotency-Key": "create-1"})
        assert created.status_code == replayed.status_code == 201 and replayed.content == created.content
        names = [w["name"] for w in c.get("/api/v1/workflows").json()["data"]]
        assert names.count("once") == 1
        assert len(executions(c)) == 1


def test_same_key_other_body_or_endpoint_is_422(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    _account, key = make_account(server)
    with server.client(key) as c:
        wid = publish(c, text_graph())
        assert c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "a"}},
                      headers={"Idempotency-Key": "k"}).status_code == 202
        other_body = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "b"}},
                            headers={"Idempotency-Key": "k"})
        assert other_body.status_code == 422 and error_code(other_body) == "idempotency_key_reused"
        other_endpoint = c.post("/api/v1/workflows/validate", json={"graph": text_graph()},
                                headers={"Idempotency-Key": "k"})
        assert other_endpoint.status_code == 422 and error_code(other_endpoint) == "idempotency_key_reused"
        too_long = c.post("/api/v1/workflows/validate", json={"graph": text_graph()},
                          headers={"Idempotency-Key": "x" * 256})
        assert too_long.status_code == 422
        assert len(executions(c)) == 1


def test_duplicate_in_flight_is_409(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    _account, key = make_account(server)
    with server.client(key) as c:
        wid = publish(c, delay_graph(1.5))
        slow: dict[str, httpx.Response] = {}

        def first() -> None:
            slow["r"] = c.post(f"/api/v1/workflows/{wid}/execute", json={},
                               headers={"Idempotency-Key": "slow", "Prefer": "wait=10"})

        thread = threading.Thread(target=first)
        thread.start()
        wait_status(c, executions_when_one(c)["executionId"], {"RUNNING"})
        duplicate = c.post(f"/api/v1/workflows/{wid}/execute", json={},
                           headers={"Idempotency-Key": "slow", "Prefer": "wait=10"})
        thread.join()
        assert duplicate.status_code == 409 and error_code(duplicate) == "idempotency_key_in_use"
        assert slow["r"].status_code == 200
        assert len(executions(c)) == 1


def executions_when_one(c: httpx.Client, timeout: float = 10) -> dict[str, object]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        data = executions(c)
        if data:
            return data[0]
        time.sleep(0.02)
    raise AssertionError("no execution appeared")


def test_refusals_are_not_stored_so_a_corrected_retry_proceeds(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    account_id, key = make_account(server, credits=3)
    read_only = server.key(account_id, ["read"])
    with server.client(key) as c, server.client(read_only) as r:
        wid = publish(c, priced_graph())
        headers = {"Idempotency-Key": "retry-me"}
        forbidden = r.post(f"/api/v1/workflows/{wid}/execute", json={}, headers=headers)
        assert forbidden.status_code == 403
        invalid = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"nope": 1}}, headers=headers)
        assert invalid.status_code == 422
        # the key was given back, so the same key may now carry a different (corrected) body
        short = c.post(f"/api/v1/workflows/{wid}/execute", json={}, headers=headers)
        assert short.status_code == 402 and error_code(short) == "insufficient_credits"
        server.services.billing.grant(account_id, 10)
        ok = c.post(f"/api/v1/workflows/{wid}/execute", json={}, headers=headers)
        assert ok.status_code == 202 and "idempotent-replayed" not in ok.headers
        assert len(executions(c)) == 1


def test_replays_count_as_requests_but_cost_nothing(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    account_id, key = make_account(server, credits=50, executions_per_minute=1, requests_per_minute=20)
    with server.client(key) as c:
        wid = publish(c, priced_graph())
        first = c.post(f"/api/v1/workflows/{wid}/execute", json={}, headers={"Idempotency-Key": "r"})
        assert first.status_code == 202
        wait_status(c, first.json()["executionId"], {"COMPLETED"})
        spent = balance(server, account_id)
        remaining = []
        for _ in range(3):
            replay = c.post(f"/api/v1/workflows/{wid}/execute", json={}, headers={"Idempotency-Key": "r"})
            assert replay.status_code == 202 and replay.content == first.content  # not execution_rate_limited
            remaining.append(int(replay.headers["x-ratelimit-remaining"]))
        assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1]
        assert balance(server, account_id) == spent == 45
        assert c.get("/api/v1/usage").json()["executions"]["today"] == 1
        fresh = c.post(f"/api/v1/workflows/{wid}/execute", json={}, headers={"Idempotency-Key": "other"})
        assert fresh.status_code == 429 and error_code(fresh) == "execution_rate_limited"


def test_secret_minting_endpoints_ignore_the_header(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    _account, key = make_account(server)
    with server.client(key) as c:
        body = {"name": "ci", "scopes": ["read"]}
        one = c.post("/api/v1/keys", json=body, headers={"Idempotency-Key": "mint"})
        two = c.post("/api/v1/keys", json=body, headers={"Idempotency-Key": "mint"})
        assert one.status_code == two.status_code == 201
        assert one.json()["key"] != two.json()["key"] and "idempotent-replayed" not in two.headers
        rotated = [c.post("/api/v1/account/webhook-secret/rotate", headers={"Idempotency-Key": "rot"}).json()
                   for _ in range(2)]
        assert rotated[0]["webhookSecret"] != rotated[1]["webhookSecret"]
    with server.services.db.read() as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_multipart_same_fields_and_file_digests_replay(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    _account, key = make_account(server)
    with server.client(key) as c:
        first = c.post("/api/v1/uploads", files={"file": ("a.txt", b"hello", "text/plain")},
                       headers={"Idempotency-Key": "up"})
        # httpx picks a new multipart boundary each time: the bytes differ, the fields and digests do not
        again = c.post("/api/v1/uploads", files={"file": ("a.txt", b"hello", "text/plain")},
                       headers={"Idempotency-Key": "up"})
        assert first.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
        assert again.content == first.content
        other = c.post("/api/v1/uploads", files={"file": ("a.txt", b"other", "text/plain")},
                       headers={"Idempotency-Key": "up"})
        assert other.status_code == 422 and error_code(other) == "idempotency_key_reused"


def test_keys_expire_after_24_hours_and_are_swept(platform: Callable[..., LiveServer]) -> None:
    clock = FrozenClock()
    server = platform(clock=clock)
    _account, key = make_account(server, requests_per_minute=1000)
    with server.client(key) as c:
        wid = publish(c, text_graph())
        first = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "a"}},
                       headers={"Idempotency-Key": "day"})
        wait_status(c, first.json()["executionId"], {"COMPLETED"})
        clock.advance(23 * 3600)
        assert c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "b"}},
                      headers={"Idempotency-Key": "day"}).status_code == 422
        clock.advance(3600)
        assert server.services.idempotency.sweep() == 1
        later = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "b"}},
                       headers={"Idempotency-Key": "day"})
        assert later.status_code == 202 and later.json()["executionId"] != first.json()["executionId"]
        assert "idempotent-replayed" not in later.headers


def test_an_answer_written_with_the_execution_survives_a_crash(platform: Callable[..., LiveServer]) -> None:
    """The process dies after the execution committed (with its answer) but before it responded: a retry
    is told to wait while the first could still be responding, then gets the stored answer — never a
    second execution."""
    clock = FrozenClock()
    server = platform(clock=clock)
    account_id, key = make_account(server)
    rt = server.services
    with server.client(key) as c:
        wid = publish(c, text_graph())
        path = f"/api/v1/workflows/{wid}/execute"
        claim = rt.idempotency.claim(scope=account_id, key="crash", method="POST", path=path,
                                     fingerprint=fingerprint(method="POST", path=path, query="",
                                                             content_type="application/json", body=b'{"inputs": {}}'))
        assert isinstance(claim, Claim)
        sub = rt.executions.prepare(account_id=account_id, workflow_id=wid, body={"inputs": {}})
        accepted = rt.executions.submit(account_id=account_id, sub=sub, answer=rt.idempotency.store_json(claim, 202))
        # … and the process died here, before answering
        early = c.post(path, json={"inputs": {}}, headers={"Idempotency-Key": "crash"})
        assert early.status_code == 409 and error_code(early) == "idempotency_key_in_use"
        clock.advance(121)
        late = c.post(path, json={"inputs": {}}, headers={"Idempotency-Key": "crash"})
        assert late.status_code == 202 and late.headers["idempotent-replayed"] == "true"
        assert late.json() == accepted
        assert len(executions(c)) == 1
