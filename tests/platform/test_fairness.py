"""Fair scheduling across accounts: claims rotate between the accounts with waiting work, so one account's backlog
never starves another's, and a sleeping node (`util.delay`) holds no worker slot. Assertions are on order and
state, never on durations."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.server import LiveServer, delay_graph, publish, text_graph, wait_status

from nodeloom.clock import FrozenClock
from nodeloom.queue.base import QueueBackend
from nodeloom.queue.memory import MemoryQueue
from nodeloom.queue.sql import SqlQueue
from nodeloom.services.environment import SleepingSlots
from nodeloom.storage.db import Database
from nodeloom.storage.migrate import upgrade


@pytest.fixture(params=["sql", "memory"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[QueueBackend, Database]]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade(url)
    db = Database(url)
    clock = FrozenClock()
    backend: QueueBackend = (SqlQueue(db, clock=clock, lease_seconds=60) if request.param == "sql"
                             else MemoryQueue(clock=clock, lease_seconds=60, db=db))
    yield backend, db
    db.dispose()


def enqueue(q: tuple[QueueBackend, Database], account: str, n: int = 1) -> list[str]:
    backend, db = q
    ids = []
    for _ in range(n):
        eid = f"exec_{uuid.uuid4().hex[:12]}"
        with db.write() as s:
            backend.enqueue(s, execution_id=eid, account_id=account)
        ids.append(eid)
    return ids


def claim_ids(q: tuple[QueueBackend, Database], limit: int) -> list[str]:
    return [c.execution_id for c, _ in q[0].claim_many(worker_id="w", limit=limit)]


def test_a_backlog_does_not_starve_a_newcomer(queue: tuple[QueueBackend, Database]) -> None:
    backlog = enqueue(queue, "acct_big", 10)
    assert claim_ids(queue, 2) == backlog[:2]  # both slots go to the big account: nobody else waits
    (newcomer,) = enqueue(queue, "acct_small")
    # a slot frees up: the newcomer's job goes before the eight older jobs of the account already running two
    assert claim_ids(queue, 1) == [newcomer]


def test_accounts_with_waiting_work_take_turns_on_one_slot(queue: tuple[QueueBackend, Database]) -> None:
    a = enqueue(queue, "acct_a", 3)
    b = enqueue(queue, "acct_b", 3)
    order = []
    for _ in range(6):
        [(claim, _)] = queue[0].claim_many(worker_id="w", limit=1)
        order.append(claim.execution_id)
        queue[0].ack(claim)  # it ran and finished: the slot is free again
    assert order == [a[0], b[0], a[1], b[1], a[2], b[2]]


def test_one_claim_shares_its_slots_between_accounts(queue: tuple[QueueBackend, Database]) -> None:
    a = enqueue(queue, "acct_a", 10)
    b = enqueue(queue, "acct_b", 2)
    taken = claim_ids(queue, 4)
    assert sorted(taken) == sorted(a[:2] + b)
    assert taken == sorted(taken, key=(a + b).index)  # started oldest first


# --- through a real server -----------------------------------------------------------------------------


def busy_graph(seconds: float) -> dict[str, Any]:
    """A node that waits without lending its slot (test.sleep is not util.delay): it holds the worker."""
    return {"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
        {"id": "busy", "type": "test.sleep", "params": {"seconds": seconds},
         "inputs": {"value": {"from": "p", "output": "text"}}},
        {"id": "out", "type": "output.json", "params": {"name": "value"},
         "inputs": {"value": {"from": "busy", "output": "value"}}},
    ]}


def submit(client: httpx.Client, workflow_id: str) -> str:
    r = client.post(f"/api/v1/workflows/{workflow_id}/execute", json={"inputs": {}})
    assert r.status_code == 202, r.text
    return str(r.json()["executionId"])


def status(client: httpx.Client, execution_id: str) -> str:
    return str(client.get(f"/api/v1/workflows/executions/{execution_id}/poll").json()["status"])


def test_a_trivial_run_passes_another_accounts_long_backlog(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(worker_concurrency=1, worker_sleeping_slots=0)
    _big, big_key = server.account(name="big")
    _small, small_key = server.account(name="small")
    with server.client(big_key) as big, server.client(small_key) as small:
        backlog_wf = publish(big, busy_graph(3.0))
        backlog = [submit(big, backlog_wf) for _ in range(3)]
        wait_status(big, backlog[0], {"RUNNING"})
        trivial = submit(small, publish(small, text_graph()))
        done = wait_status(small, trivial, {"COMPLETED"}, timeout=60)
        assert done["outputs"]["greeting"] == "Hello world!"
        # first come, first served would have run the whole backlog first; the small account went next instead
        assert status(big, backlog[2]) == "QUEUED"
        for eid in backlog:
            big.post(f"/api/v1/workflows/executions/{eid}/cancel")


def test_a_sleeping_node_holds_no_worker_slot(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(worker_concurrency=1)
    _big, big_key = server.account(name="big")
    _small, small_key = server.account(name="small")
    with server.client(big_key) as big, server.client(small_key) as small:
        sleeping_wf = publish(big, delay_graph(600))
        sleepers = [submit(big, sleeping_wf) for _ in range(2)]
        trivial = submit(small, publish(small, text_graph()))
        wait_status(small, trivial, {"COMPLETED"}, timeout=60)
        # one worker slot, and both long sleepers run beside the trivial run: sleeping lent it back
        assert [status(big, eid) for eid in sleepers] == ["RUNNING", "RUNNING"]
        for eid in sleepers:
            big.post(f"/api/v1/workflows/executions/{eid}/cancel")
        for eid in sleepers:
            wait_status(big, eid, {"CANCELLED"})


def test_sleeping_slots_are_bounded(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(worker_concurrency=1, worker_sleeping_slots=1)
    _acct, key = server.account()
    with server.client(key) as c:
        wf = publish(c, delay_graph(600))
        first, second, third = (submit(c, wf) for _ in range(3))
        wait_status(c, second, {"RUNNING"})
        # one slot, one lent by a sleeper: two run, the third waits for a slot
        assert status(c, first) == "RUNNING" and status(c, third) == "QUEUED"
        for eid in (first, second, third):
            c.post(f"/api/v1/workflows/executions/{eid}/cancel")


def test_only_sleeps_past_the_threshold_lend_their_slot() -> None:
    slots = SleepingSlots(min_seconds=5)
    with slots.asleep("ex_short", 1.0):
        assert slots.count == 0  # a short pause keeps its slot
    with slots.asleep("ex_long", 60.0), slots.asleep("ex_long", 60.0), slots.asleep("ex_other", 5.0):
        assert slots.count == 2  # executions, not nodes
    assert slots.count == 0
