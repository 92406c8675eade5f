"""Credits: estimate, 402, the hold, per-node charges, the ledger (API.md "Credits")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import select
from tests.platform.conftest import balance, chain, error_code, fan_out_graph, make_account, priced_graph
from tests.support.server import LiveServer, publish, wait_status

from nodeloom.storage.models import Account


def test_estimate_prices_the_graph(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    _account, key = make_account(server, credits=12)
    with server.client(key) as c:
        wid = publish(c, chain({"id": "paid", "type": "platform.priced"},
                               {"id": "images", "type": "platform.per_image", "params": {"count": 3}}))
        r = c.post(f"/api/v1/workflows/{wid}/estimate", json={"inputs": {"prompt": "hi"}})
        assert r.status_code == 200, r.text
        assert r.json() == {"credits": 11.0, "balance": 12.0, "sufficient": True, "estimateComplete": True,
                            "breakdown": [{"nodeId": "paid", "nodeType": "platform.priced", "credits": 5.0},
                                          {"nodeId": "images", "nodeType": "platform.per_image", "credits": 6.0}]}
        fan = publish(c, fan_out_graph())
        est = c.post(f"/api/v1/workflows/{fan}/estimate", json={"inputs": {"count": 4}}).json()
        assert est["estimateComplete"] is False and est["credits"] == 3.0  # one element known
        assert {"nodeId": "each", "nodeType": "platform.each", "credits": 3.0, "perElement": True} in est["breakdown"]
        assert c.post(f"/api/v1/workflows/{wid}/estimate", json={"inputs": {"nope": 1}}).status_code == 422
        assert c.post("/api/v1/workflows/wf_missing/estimate", json={}).status_code == 404
    assert balance(server, _account) == 12  # estimating holds nothing


def test_short_balance_is_402_with_breakdown_and_nothing_queued(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    account_id, key = make_account(server, credits=3)
    with server.client(key) as c:
        wid = publish(c, priced_graph())
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={})
        assert r.status_code == 402 and error_code(r) == "insufficient_credits"
        body = r.json()["error"]
        assert body["required"] == 5.0 and body["balance"] == 3.0
        assert body["breakdown"] == [{"nodeId": "paid", "nodeType": "platform.priced", "credits": 5.0}]
        assert c.get("/api/v1/workflows/executions").json()["data"] == []
        assert c.get("/api/v1/usage").json()["executions"]["today"] == 0  # the quota was not spent either
    assert balance(server, account_id) == 3
    assert server.services.queue.depth() == {}


def test_racing_for_the_last_credits_never_goes_below_zero(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    account_id, key = make_account(server, plan="enterprise", credits=12, requests_per_minute=10_000,
                                   executions_per_minute=1000)
    lowest: list[float] = []
    stop = threading.Event()

    def watch() -> None:  # the balance as the database has it, sampled throughout the race
        while not stop.is_set():
            with server.services.db.read() as s:
                lowest.append(float(s.scalar(select(Account.credits).where(Account.id == account_id))))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    with server.client(key, limits=httpx.Limits(max_connections=40)) as c:
        wid = publish(c, priced_graph(seconds=0.2))
        barrier = threading.Barrier(30)

        def send(_: int) -> httpx.Response:
            barrier.wait()
            return c.post(f"/api/v1/workflows/{wid}/execute", json={})

        watcher.start()
        with ThreadPoolExecutor(30) as pool:
            responses = list(pool.map(send, range(30)))
        accepted = [r.json()["executionId"] for r in responses if r.status_code == 202]
        refused = [r for r in responses if r.status_code != 202]
        assert len(accepted) == 2  # 12 credits pay for two 5-credit runs
        assert all(r.status_code == 402 and error_code(r) == "insufficient_credits" for r in refused)
        done = [wait_status(c, eid, {"COMPLETED"}) for eid in accepted]
    stop.set()
    watcher.join()
    assert min(lowest) >= 0
    assert [d["creditsUsed"] for d in done] == [5.0, 5.0]
    assert balance(server, account_id) == 2


def test_nodes_are_charged_as_they_run_and_the_rest_is_released(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    account_id, key = make_account(server, credits=100)
    with server.client(key) as c:
        wid = publish(c, chain({"id": "paid", "type": "platform.priced"},
                               {"id": "broken", "type": "platform.fail"}))
        failed = c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"]
        body = wait_status(c, failed, {"FAILED"})
        assert body["nodes"]["paid"]["credits"] == 5.0 and body["nodes"]["broken"]["credits"] == 0.0
        assert body["creditsUsed"] == 5.0  # the failed node is free
        assert balance(server, account_id) == 95  # held 12 (5 + 7), charged 5, released 7

        cached = publish(c, chain({"id": "upper", "type": "platform.cached", "in": "text", "out": "text"}))
        first = wait_status(c, c.post(f"/api/v1/workflows/{cached}/execute", json={}).json()["executionId"],
                            {"COMPLETED"})
        second = wait_status(c, c.post(f"/api/v1/workflows/{cached}/execute", json={}).json()["executionId"],
                             {"COMPLETED"})
        assert first["creditsUsed"] == 4.0 and second["creditsUsed"] == 0.0
        assert second["nodes"]["upper"]["cached"] is True and second["nodes"]["upper"]["credits"] == 0.0
    assert balance(server, account_id) == 91
    kinds = [(e["kind"], e["nodeId"], e["amount"]) for e in server.services.billing.ledger(account_id,
                                                                                          execution_id=failed)]
    assert kinds == [("hold", "*", 12.0), ("charge", "paid", 5.0), ("release", "*", 7.0)]


def test_fan_out_beyond_the_estimate_is_held_per_element(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    rich_id, rich = make_account(server, credits=20)
    poor_id, poor = make_account(server, credits=5)
    with server.client(rich) as c:
        wid = publish(c, fan_out_graph())
        done = wait_status(c, c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"count": 4}})
                           .json()["executionId"], {"COMPLETED"})
        assert done["outputs"]["items"] == ["item 0!", "item 1!", "item 2!", "item 3!"]
        assert done["nodes"]["each"]["credits"] == 12.0 and done["creditsUsed"] == 12.0
    assert balance(server, rich_id) == 8
    with server.client(poor) as c:
        wid = publish(c, fan_out_graph())
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"count": 3}})
        assert r.status_code == 202  # the known part (one element, 3 credits) is covered
        failed = wait_status(c, r.json()["executionId"], {"FAILED"})
        assert failed["error"]["code"] == "insufficient_credits" and failed["error"]["nodeId"] == "each"
        assert failed["creditsUsed"] == 0.0
    assert balance(server, poor_id) == 5  # the hold came back


def test_a_retried_node_is_charged_once(platform: Callable[..., LiveServer], tmp_path: Path) -> None:
    """The worker stops after the priced node ran; the next process runs it again (its output is not
    resumable) and the ledger's unique (execution, node) charge keeps it to one charge."""
    database = {"database_url": f"sqlite:///{tmp_path / 'shared.db'}"}
    first = platform(**database)
    account_id, key = make_account(first, credits=50)
    with first.client(key) as c:
        wid = publish(c, chain({"id": "paid", "type": "platform.priced"},
                               {"id": "wait", "type": "util.delay", "params": {"seconds": 2.0}}))
        eid = c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"]
        deadline = time.time() + 20
        while c.get(f"/api/v1/workflows/executions/{eid}/poll").json()["nodes"]["paid"]["status"] != "COMPLETED":
            assert time.time() < deadline
            time.sleep(0.02)
    first.stop()  # graceful: the job goes back to the queue mid-run
    assert first.services.billing.ledger(account_id, execution_id=eid)[-1]["kind"] == "charge"
    second = platform(**database)
    with second.client(key) as c:
        done = wait_status(c, eid, {"COMPLETED"})
    assert done["creditsUsed"] == 5.0
    events, _status = second.services.executions.events_after(account_id=account_id, execution_id=eid, after=0)
    ran = [e for e in events if e.type == "node.completed" and e.data.get("nodeId") == "paid"]
    assert len(ran) == 2  # it really ran twice
    entries = second.services.billing.ledger(account_id, execution_id=eid)
    assert [e["kind"] for e in entries].count("charge") == 1
    assert balance(second, account_id) == 45


def test_cancelling_a_queued_execution_releases_its_hold(platform: Callable[..., LiveServer]) -> None:
    server = platform(worker_concurrency=1)
    account_id, key = make_account(server, credits=10)
    with server.client(key) as c:
        wid = publish(c, priced_graph(seconds=1.0))
        running = c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"]
        queued = c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"]
        assert balance(server, account_id) == 0  # both held
        assert c.post(f"/api/v1/workflows/executions/{queued}/cancel").status_code == 202
        assert balance(server, account_id) == 5
        wait_status(c, running, {"COMPLETED"})
    assert balance(server, account_id) == 5


def test_grants_are_in_the_ledger(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    account_id, key = make_account(server, credits=0)
    assert float(server.services.billing.grant(account_id, 2.5, note="welcome")) == 2.5
    assert server.services.billing.ledger(account_id) == [
        {"kind": "grant", "amount": 2.5, "executionId": None, "nodeId": None, "note": "welcome"}]
    with server.client(key) as c:
        assert c.get("/api/v1/account").json()["credits"] == 2.5


def test_runs_on_the_accounts_own_vendor_key_cost_byok_credits(platform: Callable[..., LiveServer]) -> None:
    server = platform()
    account_id, key = make_account(server, credits=20)
    server.services.provider_keys.put(account_id=account_id, provider="fal", api_key="fal-own-key-123")
    with server.client(key) as c:
        own = publish(c, chain({"id": "gen", "type": "platform.hosted", "params": {"own_key": True}}))
        est = c.post(f"/api/v1/workflows/{own}/estimate", json={}).json()
        assert est["credits"] == 1.0  # the account's own key is tried first
        done = wait_status(c, c.post(f"/api/v1/workflows/{own}/execute", json={}).json()["executionId"],
                           {"COMPLETED"})
        assert done["nodes"]["gen"]["credits"] == 1.0
        # the vendor fell back to the operator's key: the node's full price, beyond what was held
        fallback = publish(c, chain({"id": "gen", "type": "platform.hosted", "params": {"own_key": False}}))
        done = wait_status(c, c.post(f"/api/v1/workflows/{fallback}/execute", json={}).json()["executionId"],
                           {"COMPLETED"})
        assert done["nodes"]["gen"]["credits"] == 10.0
    assert balance(server, account_id) == 9


def test_opening_balance_is_a_ledger_grant(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    account_id, _key = server.account(credits=42)
    entries = server.services.billing.ledger(account_id)
    assert entries == [{"kind": "grant", "amount": 42.0, "executionId": None, "nodeId": None,
                        "note": "initial credits"}]
    assert sum(e["amount"] for e in entries if e["kind"] == "grant") == server.services.billing.balance(account_id)
