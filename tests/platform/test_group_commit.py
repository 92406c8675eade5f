"""GroupCommit: the event batches of many executions share one transaction, each in a savepoint of its own."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from nodeloom.clock import FrozenClock
from nodeloom.services.accounts import AccountService
from nodeloom.services.lifecycle import append_event
from nodeloom.services.recorder import GroupCommit, LeaseLost
from nodeloom.storage.db import Database
from nodeloom.storage.migrate import upgrade
from nodeloom.storage.models import Execution, ExecutionEvent


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'group.db'}"
    upgrade(url)
    return Database(url)


def make_executions(db: Database, n: int) -> list[str]:
    clock = FrozenClock()
    account = AccountService(db, secret_key="group-commit-secret-0123", clock=clock).create_account(name="a")
    ids = [f"ex_{i}" for i in range(n)]
    with db.write() as s:
        for eid in ids:
            s.add(Execution(id=eid, account_id=account.id, workflow_id="wf", graph={}, inputs={}, status="RUNNING",
                            created_at=clock.now()))
    return ids


def record(eid: str, kind: str, *, fail: bool = False) -> Any:
    def work(s: Session) -> str:
        ex = s.get(Execution, eid)
        assert ex is not None
        append_event(s, ex, type=kind, data={"executionId": eid}, now=FrozenClock().now())
        ex.progress = 0.5
        if fail:
            raise LeaseLost()
        return eid
    return work


def events_of(db: Database, eid: str) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(ExecutionEvent.type).where(ExecutionEvent.execution_id == eid)
                              .order_by(ExecutionEvent.seq)))


def test_waiting_batches_share_one_commit_and_a_failing_one_rolls_back_alone(db: Database) -> None:
    ids = make_executions(db, 6)
    group = GroupCommit(db)
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    gate, holding = threading.Event(), threading.Event()

    def first(s: Session) -> str:  # holds the group's thread until the others are waiting
        holding.set()
        gate.wait(10)
        return str(record(ids[0], "node.started")(s))

    with ThreadPoolExecutor(6) as pool:
        head = pool.submit(lambda: group.submit(first).result())
        assert holding.wait(10)  # the group's thread took the first batch alone and is inside it
        rest = [group.submit(record(eid, "node.started", fail=(eid == ids[3]))) for eid in ids[1:]]
        for _ in range(1000):  # every other batch is queued behind the first
            if len(group._waiting) == len(rest):
                break
            threading.Event().wait(0.01)
        assert len(group._waiting) == len(rest)
        gate.set()
        assert head.result(10) == ids[0]
        results = []
        for eid, future in zip(ids[1:], rest, strict=True):
            if eid == ids[3]:
                with pytest.raises(LeaseLost):
                    future.result(10)
            else:
                results.append(future.result(10))
    assert results == [ids[1], ids[2], ids[4], ids[5]]
    assert len(commits) == 2  # the first batch alone, then the four waiting ones (and the failed one) together
    for eid in ids:
        assert events_of(db, eid) == ([] if eid == ids[3] else ["node.started"])
    with db.read() as s:  # the failed batch's other change went with its savepoint
        assert s.scalar(select(Execution.progress).where(Execution.id == ids[3])) == 0.0
        assert s.scalar(select(func.count()).select_from(Execution).where(Execution.progress == 0.5)) == 5


def test_a_batch_alone_is_written_at_once_and_the_thread_ends_when_idle(db: Database) -> None:
    [eid] = make_executions(db, 1)
    group = GroupCommit(db)
    group.IDLE_EXIT_S = 0.05
    assert group.submit(record(eid, "node.completed")).result(10) == eid
    assert events_of(db, eid) == ["node.completed"]
    deadline = threading.Event()
    for _ in range(100):
        if not group._running:
            break
        deadline.wait(0.02)
    assert not group._running
    assert group.submit(record(eid, "execution.completed")).result(10) == eid  # and starts again
    assert events_of(db, eid) == ["node.completed", "execution.completed"]
