"""One execution lifecycle (services/lifecycle.py): submit, start, node completions and the end — from the
runner and from cancel alike — reach every listener, in order, inside the transaction that records them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.support.server import make_settings, text_graph

from nodeloom.compose import Services, build
from nodeloom.engine.executor import RunOptions
from nodeloom.engine.graph import Limits, NodeInstance
from nodeloom.errors import ApiError
from nodeloom.services.executions import ExecutionService
from nodeloom.services.heartbeat import Heartbeat
from nodeloom.services.lifecycle import ExecutionListener, Lifecycle
from nodeloom.services.recorder import EventRecorder
from nodeloom.services.runner import ExecutionRunner
from nodeloom.services.submission import Submission
from nodeloom.storage.models import Account, Execution, ExecutionNode


class Refused(ApiError):
    status = 403
    code = "refused"


class Recorder(ExecutionListener):
    """Records what it is told, and whether it was told inside an open transaction."""

    def __init__(self, refuse_queued: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.refuse_queued = refuse_queued

    def admit(self, *, account_id: str, sub: Submission) -> None:
        self.calls.append(("admit", sub.workflow_id))

    def on_queued(self, s: Session, *, account_id: str, sub: Submission, execution_id: str) -> None:
        assert s.in_transaction()
        # the execution this change is about is already in the transaction
        assert s.get(Execution, execution_id) is not None
        self.calls.append(("queued", execution_id))
        if self.refuse_queued:
            raise Refused("no")

    def on_started(self, s: Session, ex: Execution) -> None:
        assert s.in_transaction()
        self.calls.append(("started", ex.status))

    def on_node_completed(self, s: Session, ex: Execution, row: ExecutionNode, node: NodeInstance,
                          data: dict[str, Any]) -> None:
        assert s.in_transaction() and row.status == "COMPLETED"
        self.calls.append(("node", node.id))

    def on_terminal(self, s: Session, ex: Execution) -> None:
        assert s.in_transaction()
        self.calls.append(("ended", ex.status))


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    services = build(make_settings(tmp_path, embedded_workers=False, process_pool_size=0,
                                   node_packs=["tests.support.nodes", "tests.platform.nodes"]), migrate=True)
    yield services
    services.db.dispose()


def with_listener(svc: Services, listener: Recorder, tmp_path: Path) -> tuple[ExecutionService, ExecutionRunner]:
    """The services' own listeners (limits, billing, webhooks) followed by the recorder."""
    lifecycle = Lifecycle([svc.limiter, svc.billing, svc.deliveries, listener], clock=svc.clock)
    executions = ExecutionService(svc.db, workflows=svc.workflows, queue=svc.queue, files=svc.files, hub=svc.hub,
                                  lifecycle=lifecycle, clock=svc.clock)
    runner = ExecutionRunner(
        db=svc.db, registry=svc.runnable, queue=svc.queue, files=svc.files, hub=svc.hub, lifecycle=lifecycle,
        recorder=EventRecorder(db=svc.db, queue=svc.queue, lifecycle=lifecycle, clock=svc.clock),
        heartbeat=Heartbeat(db=svc.db, queue=svc.queue, clock=svc.clock, interval=0.5), clock=svc.clock,
        cache=svc.cache, pool=None, services={}, secrets={}, limits=Limits(), options=RunOptions(),
        work_root=tmp_path / "work")
    return executions, runner


PRICED = {"nodes": [  # costs 5 credits: submitting it holds 5
    {"id": "in", "type": "input.text", "params": {"name": "prompt", "default": "x"}},
    {"id": "priced", "type": "platform.priced", "inputs": {"value": {"from": "in", "output": "text"}}},
    {"id": "out", "type": "output.json", "inputs": {"value": {"from": "priced", "output": "value"}},
     "params": {"name": "value"}},
]}


def submit(svc: Services, executions: ExecutionService, account_id: str, graph: dict[str, Any] | None = None) -> str:
    wid = svc.workflows.create(account_id=account_id, name="w", description="", graph=graph or text_graph())["id"]
    svc.workflows.publish(account_id=account_id, workflow_id=wid)
    sub = executions.prepare(account_id=account_id, workflow_id=wid, body={"inputs": {}})
    return str(executions.submit(account_id=account_id, sub=sub)["executionId"])


def test_a_run_tells_every_listener_each_change_in_order(svc: Services, tmp_path: Path) -> None:
    listener = Recorder()
    executions, runner = with_listener(svc, listener, tmp_path)
    account = svc.accounts.create_account(name="a", plan="pro", credits=10).id
    eid = submit(svc, executions, account)
    [(claim, started)] = svc.queue.claim_many(worker_id="w", limit=1, start=runner.start_in)
    asyncio.run(runner.run(claim, started))
    assert listener.calls[:3] == [("admit", listener.calls[0][1]), ("queued", eid), ("started", "RUNNING")]
    assert sorted(c[1] for c in listener.calls[3:-1] if c[0] == "node") == ["out", "prompt", "tpl"]
    assert listener.calls[-1] == ("ended", "COMPLETED")
    assert executions.poll(account_id=account, execution_id=eid)["status"] == "COMPLETED"


def test_cancelling_a_queued_execution_ends_it_through_the_lifecycle(svc: Services, tmp_path: Path) -> None:
    listener = Recorder()
    executions, _runner = with_listener(svc, listener, tmp_path)
    account = svc.accounts.create_account(name="a", plan="pro", credits=10).id
    eid = submit(svc, executions, account)
    executions.cancel(account_id=account, execution_id=eid)
    assert listener.calls[-1] == ("ended", "CANCELLED")


def test_a_listener_refusing_the_queued_change_leaves_nothing_behind(svc: Services, tmp_path: Path) -> None:
    """The hold billing took before the refusing listener rolls back with the execution."""
    accepting, _runner = with_listener(svc, Recorder(), tmp_path)
    held = svc.accounts.create_account(name="held", plan="pro", credits=10).id
    submit(svc, accepting, held, PRICED)
    refusing, _runner = with_listener(svc, Recorder(refuse_queued=True), tmp_path)
    account = svc.accounts.create_account(name="a", plan="pro", credits=10).id
    with pytest.raises(Refused):
        submit(svc, refusing, account, PRICED)
    with svc.db.read() as s:
        assert s.get(Account, held).credits == Decimal(5)  # accepted: the hold was taken
        assert s.scalar(select(func.count()).select_from(Execution).where(Execution.account_id == account)) == 0
        assert s.get(Account, account).credits == Decimal(10)  # refused after billing held: rolled back
