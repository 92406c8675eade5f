"""Batch claims on the SQL queue: oldest first, per-plan concurrency caps held inside one claim, and a
start hook that fails does not block the queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.support.server import make_settings, text_graph

from nodeloom.compose import build
from nodeloom.storage.models import Execution, Job


@pytest.fixture
def rt(tmp_path: Path) -> Any:
    services = build(make_settings(tmp_path, embedded_workers=False), migrate=True)
    yield services
    services.db.dispose()


def submit(rt: Any, account_id: str, workflow_id: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        sub = rt.executions.prepare(account_id=account_id, workflow_id=workflow_id, body={"inputs": {}})
        ids.append(rt.executions.submit(account_id=account_id, sub=sub)["executionId"])
    return ids


def workflow(rt: Any, account_id: str) -> str:
    wid = rt.workflows.create(account_id=account_id, name="w", description="", graph=text_graph())["id"]
    rt.workflows.publish(account_id=account_id, workflow_id=wid)
    return wid


def test_one_claim_takes_several_jobs_but_never_passes_an_accounts_cap(rt: Any) -> None:
    free = rt.accounts.create_account(name="free", plan="free", credits=100).id  # free: 2 at once
    pro = rt.accounts.create_account(name="pro", plan="pro", credits=100).id
    capped = submit(rt, free, workflow(rt, free), 5)
    other = submit(rt, pro, workflow(rt, pro), 2)

    first = rt.sql_queue.claim_many(worker_id="w1", limit=8)
    taken = [c.execution_id for c, _ in first]
    # oldest first; the free account's third to fifth wait; the pro account's runs pass them
    assert taken == capped[:2] + other
    # nothing more for the capped account while its two run, even from another worker
    assert rt.sql_queue.claim_many(worker_id="w2", limit=8) == []
    rt.sql_queue.ack(first[0][0])  # one of the two finished: room for exactly one more
    again = rt.sql_queue.claim_many(worker_id="w2", limit=8)
    assert [c.execution_id for c, _ in again] == [capped[2]]


def test_the_start_hook_runs_in_the_claims_transaction(rt: Any) -> None:
    acct = rt.accounts.create_account(name="a", plan="pro", credits=100).id
    (eid,) = submit(rt, acct, workflow(rt, acct), 1)
    [(claim, started)] = rt.sql_queue.claim_many(worker_id="w", limit=4, start=rt.runner.start_in)
    assert claim.execution_id == eid and claim.attempt == 1
    graph, inputs, completed, _memory = started
    assert [n["id"] for n in graph["nodes"]] == ["prompt", "tpl", "out"] and completed == {}
    with rt.db.read() as s:
        ex = s.get(Execution, eid)
        assert (ex.status, ex.attempts) == ("RUNNING", 1)
        assert s.scalar(select(Job.state).where(Job.execution_id == eid)) == "claimed"


def test_a_failing_start_hook_still_claims_so_the_runner_retries_it(rt: Any) -> None:
    acct = rt.accounts.create_account(name="a", plan="pro", credits=100).id
    first, second = submit(rt, acct, workflow(rt, acct), 2)

    def start(s: Any, claim: Any) -> Any:
        if claim.execution_id == second:
            raise RuntimeError("boom")
        return rt.runner.start_in(s, claim)

    claims = rt.sql_queue.claim_many(worker_id="w", limit=4, start=start)
    # claimed again without the hook: the runner starts each on its own (and a poisoned one uses up its
    # attempts instead of blocking the queue)
    assert [(c.execution_id, c.attempt, started) for c, started in claims] == [(first, 1, None), (second, 1, None)]
    with rt.db.read() as s:
        assert s.get(Execution, first).status == "QUEUED"  # the failed transaction's start was rolled back
        assert set(s.scalars(select(Job.state))) == {"claimed"}


def test_a_named_claim_starts_in_its_transaction_and_respects_the_cap(rt: Any) -> None:
    """The Celery task's claim: one named job, started in the claim's transaction, never past the cap."""
    free = rt.accounts.create_account(name="free", plan="free", credits=100).id  # free: 2 at once
    a, b, c = submit(rt, free, workflow(rt, free), 3)
    claim, started = rt.sql_queue.claim_execution(execution_id=a, worker_id="w", start=rt.runner.start_in)
    assert claim.execution_id == a and started[2] == {}  # (graph, inputs, completed, memory)
    with rt.db.read() as s:
        assert s.get(Execution, a).status == "RUNNING"
    assert rt.sql_queue.claim_execution(execution_id=a, worker_id="w2") is None  # leased by a live worker

    def boom(s: Any, claim: Any) -> Any:
        raise RuntimeError("boom")

    assert rt.sql_queue.claim_execution(execution_id=b, worker_id="w", start=boom)[1] is None  # claimed anyway
    assert rt.sql_queue.claim_execution(execution_id=c, worker_id="w") is None  # two running: the cap holds
    assert rt.sql_queue.is_waiting(c)
