"""Writes what executions do into rows: the execution, its nodes and its numbered events.

Every change goes through the lifecycle (services/lifecycle.py) inside the transaction that records it,
so an event and everything it implies (status, outputs, charges, outbox rows) commit together or not at
all. `EventRecorder` persists a running execution's engine events in batches,
fenced by the claim's attempt number; `BatchWriter` gathers the events of a fast graph so that one
transaction carries several.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, defer

from nodeloom.clock import Clock
from nodeloom.engine import events as ev
from nodeloom.engine.graph import Graph
from nodeloom.queue.base import Claim, QueueBackend
from nodeloom.services.lifecycle import Lifecycle, drop_events_since, events_mark
from nodeloom.storage.db import Database
from nodeloom.storage.models import Execution, ExecutionNode, File
from nodeloom.types import TERMINAL_STATUSES

T = TypeVar("T")

STATUS_OF_EVENT = {ev.EXECUTION_COMPLETED: "COMPLETED", ev.EXECUTION_FAILED: "FAILED",
                   ev.EXECUTION_CANCELLED: "CANCELLED"}
#: how long the batch writer waits to gather more events into one transaction
COALESCE_S = 0.005

#: statements built once (building and keying one costs more than SQLite takes to answer it)
_WITHOUT_GRAPH = [defer(Execution.graph), defer(Execution.inputs)]
#: the execution row a batch writes to, built once (a `get` with loader options keys its statement on every call)
_FENCED = select(Execution).options(*_WITHOUT_GRAPH).where(Execution.id == bindparam("execution_id"))
_ALL_NODES = select(ExecutionNode).where(ExecutionNode.execution_id == bindparam("execution_id"))
_SOME_NODES = _ALL_NODES.where(ExecutionNode.node_id.in_(bindparam("node_ids", expanding=True)))
_COMPLETED_COUNT = select(func.count()).select_from(ExecutionNode).where(
    ExecutionNode.execution_id == bindparam("execution_id"), ExecutionNode.status == "COMPLETED")


def _instant(data: dict[str, Any], key: str, default: datetime) -> datetime:
    """The instant an engine event carries (`startedAt`, `completedAt`: when the node really started or ended)."""
    value = data.get(key)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return default


class LeaseLost(Exception):
    """Another worker owns this execution now; stop without writing anything more."""


class SerializedBatch:
    """What a batch's node outputs became as JSON: per node.completed event, and the execution's outputs."""

    def __init__(self) -> None:
        self.nodes: dict[int, tuple[dict[str, Any], bool]] = {}  # id(event) → (outputs JSON, resumable)
        self.execution_outputs: dict[str, Any] | None = None
        self.files: list[File] = []  # rows of the files the outputs name (their blobs are stored already)

    def add(self, event: ev.Event, outputs: dict[str, Any], resumable: bool) -> None:
        self.nodes[id(event)] = (outputs, resumable)


class GroupCommit:
    """Writes the event batches of every execution this process runs through one thread: whatever waits when the
    thread comes round goes into ONE transaction, each batch in a savepoint of its own (a batch that fails — another
    worker owns its execution now — rolls back alone). Under load a commit carries many executions' events instead of
    each execution queueing its own transaction on SQLite's single write lock; alone, a batch is written at once.

    `submit`'s future holds what the batch returned, or what it raised (or what the commit raised), once the group
    has committed. The thread ends when idle and starts again with the next batch."""

    IDLE_EXIT_S = 1.0

    def __init__(self, db: Database, *, max_batches: int = 64):
        self.db = db
        self.max_batches = max_batches
        self._cond = threading.Condition()
        self._waiting: list[tuple[Callable[[Session], Any], Future[Any]]] = []
        self._running = False

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Queue `work` for the next group; the future has its result once the group has committed."""
        done: Future[T] = Future()
        with self._cond:
            self._waiting.append((work, done))
            if not self._running:
                self._running = True
                threading.Thread(target=self._loop, name="nodeloom-group-commit", daemon=True).start()
            self._cond.notify()
        return done

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._waiting:
                    self._cond.wait(self.IDLE_EXIT_S)
                    if not self._waiting:
                        self._running = False
                        return
                units, self._waiting = self._waiting[:self.max_batches], self._waiting[self.max_batches:]
            self._write(units)

    def _write(self, units: list[tuple[Callable[[Session], Any], Future[Any]]]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with self.db.write() as s:
                for work, done in units:
                    mark = events_mark(s)
                    try:
                        with s.begin_nested():
                            value = work(s)
                    except Exception as exc:  # this batch only: its savepoint rolled back, its events go too
                        drop_events_since(s, mark)
                        outcomes.append((done, None, exc))
                    else:
                        outcomes.append((done, value, None))
        except Exception as exc:  # the commit itself failed: no batch of this group was written
            for _work, done in units:
                done.set_exception(exc)
            return
        for done, value, error in outcomes:
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(value)


class EventRecorder:
    """Persists a claimed execution's engine events through the lifecycle, fenced by the attempt number."""

    def __init__(self, *, db: Database, queue: QueueBackend, lifecycle: Lifecycle, clock: Clock):
        self.db = db
        self.queue = queue
        self.lifecycle = lifecycle
        self.clock = clock
        self.group = GroupCommit(db)

    def fenced(self, s: Session, claim: Claim) -> Execution:
        """The execution row, unless another attempt owns it now (LeaseLost). Its graph and inputs are not
        needed to record events: not loaded (nor parsed) for every batch."""
        ex = s.scalars(_FENCED, {"execution_id": claim.execution_id}).first()
        if ex is None or ex.attempts != claim.attempt:
            raise LeaseLost()
        return ex

    def finish(self, claim: Claim, *, status: str, error: dict[str, Any] | None = None) -> None:
        """End an execution that never produced engine events (its graph no longer validates)."""
        with self.db.write() as s:
            ex = self.fenced(s, claim)
            if ex.status in TERMINAL_STATUSES:
                return
            self.lifecycle.ended(s, ex, status=status, error=error)
            self.queue.ack(claim, s)

    def submit_batch(self, claim: Claim, graph: Graph, events: list[ev.Event],
                     serialized: SerializedBatch) -> Future[None]:
        """Persist a batch of engine events, atomically, in a transaction that may carry other executions' batches
        too (`GroupCommit`); the future is done once it has committed (or failed)."""
        return self.group.submit(lambda s: self.write_batch_in(s, claim, graph, events, serialized))

    def write_batch_in(self, s: Session, claim: Claim, graph: Graph, events: list[ev.Event],
                       serialized: SerializedBatch) -> None:
        """Persist a batch of engine events in the caller's transaction (savepoint)."""
        ex = self.fenced(s, claim)
        if serialized.files:
            s.add_all(serialized.files)
        now = self.clock.now()
        # one query for the node rows this batch changes (not every row of the execution: a batch of a
        # 1,000-node graph touches a few), and one count of those already done, for the progress
        touched = {e.node_id for e in events if e.node_id and e.type != ev.NODE_PROGRESS}
        cancelling = any(e.type == ev.EXECUTION_CANCELLED for e in events)
        node_rows: dict[str, ExecutionNode] = {}
        if touched or cancelling:
            node_rows = {r.node_id: r for r in (
                s.scalars(_ALL_NODES, {"execution_id": ex.id}) if cancelling else
                s.scalars(_SOME_NODES, {"execution_id": ex.id, "node_ids": list(touched)}))}
        done = 0
        if any(e.type == ev.NODE_COMPLETED for e in events):
            done = s.connection().scalar(_COMPLETED_COUNT, {"execution_id": ex.id}) or 0

        def node_row(nid: str) -> ExecutionNode:
            if nid not in node_rows:  # rows are created at submit; this covers an older graph shape
                node_rows[nid] = ExecutionNode(execution_id=ex.id, node_id=nid,
                                               node_type=graph.nodes[nid].type.type, memory={})
                s.add(node_rows[nid])
            return node_rows[nid]

        for event in events:
            data = dict(event.data)
            nid = event.node_id
            if event.type in ev.TERMINAL_EVENTS:
                status = STATUS_OF_EVENT[event.type]
                if status == "CANCELLED":
                    for row in node_rows.values():
                        if row.status == "RUNNING":
                            row.status, row.completed_at = "CANCELLED", now
                outputs = serialized.execution_outputs if status == "COMPLETED" else None
                self.lifecycle.ended(s, ex, status=status, outputs=outputs, error=data.get("error"))
                self.queue.ack(claim, s)
                continue
            if event.type == ev.NODE_COMPLETED and nid:
                row = node_row(nid)
                outputs, resumable = serialized.nodes[id(event)]
                if row.status != "COMPLETED":
                    done += 1
                row.status, row.cached = "COMPLETED", bool(data.get("cached"))
                row.completed_at = _instant(data, "completedAt", now)
                row.started_at = _instant(data, "startedAt", row.started_at or row.completed_at)
                row.outputs, row.resumable = outputs, resumable
                ex.progress = min(0.99, done / max(1, len(graph.nodes)))
                data["outputs"] = outputs
                self.lifecycle.node_completed(s, ex, row, graph.nodes[nid], data)
                continue
            if event.type == ev.NODE_STARTED and nid:
                row = node_row(nid)
                row.status, row.started_at = "RUNNING", _instant(data, "startedAt", now)
            elif event.type == ev.NODE_FAILED and nid:
                row = node_row(nid)
                row.status, row.error = "FAILED", data.get("error")
                row.completed_at = _instant(data, "completedAt", now)
                row.started_at = _instant(data, "startedAt", row.started_at or row.completed_at)
            self.lifecycle.event(s, ex, type=event.type, data=data)


class BatchWriter:
    """Drains engine events into batches handed to `flush` (one transaction each), so a fast graph costs
    few commits. A terminal event closes the writer after it is flushed."""

    def __init__(self, flush: Callable[[list[ev.Event]], Awaitable[None]]):
        self._flush = flush
        self._queue: asyncio.Queue[ev.Event | None] = asyncio.Queue()
        #: the run produced its last event: a batch being gathered is written now, not COALESCE_S later
        self._ending = asyncio.Event()
        self._task = asyncio.create_task(self._loop())

    async def put(self, event: ev.Event) -> None:
        self._queue.put_nowait(event)
        if event.type in ev.TERMINAL_EVENTS:
            await self.close()

    async def close(self) -> None:
        """Flush what is queued and stop; re-raises what a flush raised (e.g. LeaseLost)."""
        self._ending.set()
        if not self._task.done():
            await self._queue.put(None)
            await asyncio.shield(self._task)
        if self._task.done() and not self._task.cancelled():
            error = self._task.exception()
            if error is not None:
                raise error

    async def abort(self) -> None:
        """Stop without raising (the run is ending anyway)."""
        self._ending.set()
        if not self._task.done():
            await self._queue.put(None)
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            if first.type not in ev.TERMINAL_EVENTS and not self._ending.is_set():
                # a fast graph emits its next events within a few milliseconds: wait that long for them, so
                # one transaction carries several events instead of one each (SSE sees them COALESCE_S later) —
                # unless the run ends first: a graph that finishes within the wait is written in one go, at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ending.wait(), COALESCE_S)
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    await self._flush(batch)
                    return
                batch.append(item)
            await self._flush(batch)
