"""Runs one claimed execution: engine events in, rows out; heartbeats; resume from completed nodes."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import defer

from nodeloom.clock import Clock
from nodeloom.engine import events as ev
from nodeloom.engine.errors import GraphError
from nodeloom.engine.executor import RunOptions, run
from nodeloom.engine.graph import Graph, Limits, NodeInstance, output_name, validate
from nodeloom.engine.registry import Registry
from nodeloom.logs import execution_id_var
from nodeloom.media.values import MediaFile
from nodeloom.queue.base import Claim, QueueBackend
from nodeloom.services.cache import MemoryCache
from nodeloom.services.environment import ExecutionEnvironment
from nodeloom.services.files import FILE_MARKER, FileService
from nodeloom.services.hub import EventHub
from nodeloom.services.media import decode_image
from nodeloom.services.recorder import append_event, record_terminal
from nodeloom.storage.db import Database
from nodeloom.storage.models import Execution, ExecutionNode
from nodeloom.types import TERMINAL_STATUSES

log = logging.getLogger("nodeloom.runner")


#: how long the event writer waits to gather more events into one transaction
COALESCE_S = 0.005


#: what `start_in` returns for an execution that must not run (it ended while starting)
NOTHING_TO_RUN = object()


class LeaseLost(Exception):
    """Another worker owns this execution now; stop without writing anything more."""


class ExecutionRunner:
    def __init__(self, *, db: Database, registry: Registry, queue: QueueBackend, files: FileService, hub: EventHub,
                 clock: Clock, cache: MemoryCache, pool: Any, services: Mapping[str, Any],
                 secrets: Mapping[str, str], limits: Limits, options: RunOptions, heartbeat_seconds: float,
                 work_root: Path, max_attempts: int = 5):
        self.db = db
        self.registry = registry
        self.queue = queue
        self.files = files
        self.hub = hub
        self.clock = clock
        self.cache = cache
        self.pool = pool
        self.services = services
        self.secrets = secrets
        self.limits = limits
        self.options = options
        self.heartbeat_seconds = heartbeat_seconds
        self.work_root = work_root
        self.max_attempts = max_attempts
        self.metrics: Any = None  # services.metrics.Metrics, wired by the composition root
        self._last_beat: dict[str, float] = {}  # execution id → when its lease was last extended
        #: called inside the terminal transaction (billing settles, webhooks write their outbox rows)
        self.terminal_hooks: list[Callable[[Any, Execution], None]] = []
        #: called inside the transaction that records any other event, with its type and node id
        #: (webhooks write outbox rows for execution.started and node.completed)
        self.event_hooks: list[Callable[[Any, Execution, str, str | None], None]] = []
        #: called inside the transaction that records a node.completed, with the node's row, its graph
        #: node and the event data (`cached`, `elements` for a fan-out): billing charges the node here
        self.node_hooks: list[Callable[[Any, Execution, ExecutionNode, NodeInstance, dict[str, Any]], None]] = []

    # ------------------------------------------------------------------------------------------------
    async def run(self, claim: Claim, started: Any = None) -> None:
        """Run a claimed execution. `started` is what `start_in` returned in the claim's transaction
        (None: start it here, in a transaction of its own)."""
        execution_id_var.set(claim.execution_id)
        try:
            await self._run(claim, started)
        except LeaseLost:
            log.warning("lease lost for %s (attempt %s); another worker took over", claim.execution_id,
                        claim.attempt)
        except asyncio.CancelledError:
            # graceful shutdown: hand the job back so the next worker (or our restart) resumes it
            await asyncio.shield(asyncio.to_thread(self.queue.release, claim))
            raise
        finally:
            self._last_beat.pop(claim.execution_id, None)
            self.hub.notify(claim.execution_id)

    async def _run(self, claim: Claim, started: Any) -> None:
        start = started if started is not None else await asyncio.to_thread(self._start, claim)
        if start is NOTHING_TO_RUN:
            return
        ex_graph, inputs, completed, memory = start
        eid = claim.execution_id
        try:
            graph = validate(ex_graph, self.registry, limits=self.limits)
        except GraphError as exc:
            await asyncio.to_thread(self._finish, claim, "FAILED", None,
                                    {"code": "invalid_graph", "message": str(exc)})
            return
        completed_live = await asyncio.to_thread(self._rehydrate, graph, completed) if completed else {}
        workdir = self.work_root / eid
        workdir.mkdir(parents=True, exist_ok=True)
        env = ExecutionEnvironment(db=self.db, execution_id=eid, pool=self.pool,
                                   services={**self.services, "workdir": workdir}, secrets=self.secrets,
                                   memory=memory)
        cancel = asyncio.Event()
        writer = _Writer(self, claim, graph)
        for nid, outputs in completed.items():
            if nid in graph.nodes and graph.nodes[nid].type.role == "output":
                writer.outputs[output_name(graph.nodes[nid])] = outputs.get("value")
        heartbeat = asyncio.create_task(self._heartbeat(claim, cancel, writer))
        try:
            async for event in run(graph, execution_id=eid, account_id=claim.account_id, inputs=inputs, env=env,
                                   completed=completed_live, cache=self.cache.for_account(claim.account_id),
                                   cancel_event=cancel, options=self.options):
                if writer.lost:
                    raise LeaseLost()
                self._observe(graph, event)
                await writer.put(event)
            await writer.close()
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await writer.abort()
            shutil.rmtree(workdir, ignore_errors=True)
        if writer.lost:
            raise LeaseLost()

    def _observe(self, graph: Graph, event: ev.Event) -> None:
        if self.metrics is None or not event.node_id or event.node_id not in graph.nodes:
            return
        node_type = graph.nodes[event.node_id].type.type
        if event.type == ev.NODE_COMPLETED:
            outcome = "cached" if event.data.get("cached") else "completed"
            self.metrics.node_results.labels(node_type, outcome).inc()
            if outcome == "completed":
                self.metrics.node_seconds.labels(node_type).observe(float(event.data.get("durationMs", 0)) / 1000)
        elif event.type == ev.NODE_FAILED:
            self.metrics.node_results.labels(node_type, "failed").inc()

    async def _heartbeat(self, claim: Claim, cancel: asyncio.Event, writer: _Writer) -> None:
        while True:
            await asyncio.sleep(min(self.heartbeat_seconds, 1.0))
            alive, cancel_requested = await asyncio.to_thread(self._beat, claim)
            if not alive:
                writer.lost = True
                cancel.set()
                return
            if cancel_requested:
                cancel.set()

    def _beat(self, claim: Claim) -> tuple[bool, bool]:
        now = self.clock.time()
        alive = True
        if now - self._last_beat.get(claim.execution_id, 0) >= self.heartbeat_seconds:
            alive = self.queue.heartbeat(claim)
            self._last_beat[claim.execution_id] = now
        with self.db.read() as s:  # one column, every second, for every running execution: not the whole row
            cancel_requested = s.scalar(select(Execution.cancel_requested).where(Execution.id == claim.execution_id))
            return alive, bool(cancel_requested)

    # ------------------------------------------------------------------------------------------------
    def _start(self, claim: Claim) -> Any:
        with self.db.write() as s:
            return self.start_in(s, claim)

    def start_in(self, s: Any, claim: Claim) -> Any:
        """Mark a claimed execution RUNNING in the caller's transaction (the claim's, on the SQL queue) and
        read what running it needs; NOTHING_TO_RUN when it ended here (gone, cancelled, out of attempts)."""
        ex = s.get(Execution, claim.execution_id)
        if ex is None or ex.status in TERMINAL_STATUSES:
            self.queue.ack(claim, s)
            return NOTHING_TO_RUN
        now = self.clock.now()
        if ex.cancel_requested:
            record_terminal(s, ex, status="CANCELLED", outputs=None, error=None, now=now)
            self._terminal(s, ex)
            self.queue.ack(claim, s)
            return NOTHING_TO_RUN
        if claim.attempt > self.max_attempts:
            record_terminal(s, ex, status="FAILED", outputs=None, now=now, error={
                "code": "too_many_attempts",
                "message": f"gave up after {claim.attempt - 1} attempts (the worker kept dying)"})
            self._terminal(s, ex)
            self.queue.ack(claim, s)
            return NOTHING_TO_RUN
        first_start = not ex.attempts  # never started before: its node rows are all as submit made them
        ex.attempts = claim.attempt
        if ex.status == "QUEUED":
            ex.status = "RUNNING"
            ex.started_at = now
            append_event(s, ex, type=ev.EXECUTION_STARTED, data={"executionId": ex.id, "status": "RUNNING"},
                         now=now)
            self._observed(s, ex, ev.EXECUTION_STARTED, None)
        if first_start:
            return ex.graph, dict(ex.inputs or {}), {}, {}
        rows = s.scalars(select(ExecutionNode).where(ExecutionNode.execution_id == ex.id)).all()
        completed = {r.node_id: r.outputs or {} for r in rows if r.status == "COMPLETED" and r.resumable}
        memory = {r.node_id: dict(r.memory or {}) for r in rows if r.memory}
        for r in rows:
            if r.node_id not in completed and r.status != "QUEUED":
                r.status = "QUEUED"  # it was interrupted; it will run again
        return ex.graph, dict(ex.inputs or {}), completed, memory

    def _rehydrate(self, graph: Graph, completed: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Persisted outputs back to live values (stored images decoded) for nodes that will not run again."""
        out: dict[str, dict[str, Any]] = {}
        for nid, outputs in completed.items():
            if nid not in graph.nodes:
                continue
            if graph.nodes[nid].type.role == "output":
                out[nid] = outputs
                continue
            out[nid] = {k: self._live(v) for k, v in outputs.items()}
        return out

    def _live(self, value: Any) -> Any:
        if isinstance(value, dict) and FILE_MARKER in value:
            row = self.files.get_any(value[FILE_MARKER])
            if row is None:
                return None
            path = self.files.blobs.path(row.blob_key)
            if row.content_type.startswith("image/"):
                return decode_image(path.read_bytes())
            return MediaFile(path=path, content_type=row.content_type, file_id=row.id)
        if isinstance(value, list):
            return [self._live(v) for v in value]
        return value

    def _fenced(self, s: Any, claim: Claim) -> Execution:
        # the graph and inputs are not needed to record events: not loaded (nor parsed) for every batch
        ex = s.get(Execution, claim.execution_id, options=[defer(Execution.graph), defer(Execution.inputs)])
        if ex is None or ex.attempts != claim.attempt:
            raise LeaseLost()
        return ex

    def _terminal(self, s: Any, ex: Execution) -> None:
        for hook in self.terminal_hooks:
            hook(s, ex)

    def _observed(self, s: Any, ex: Execution, event_type: str, node_id: str | None) -> None:
        for hook in self.event_hooks:
            hook(s, ex, event_type, node_id)

    def _finish(self, claim: Claim, status: str, outputs: dict[str, Any] | None, error: dict[str, Any] | None) -> None:
        with self.db.write() as s:
            ex = self._fenced(s, claim)
            if ex.status in TERMINAL_STATUSES:
                return
            record_terminal(s, ex, status=status, outputs=outputs, error=error, now=self.clock.now())
            self._terminal(s, ex)
            self.queue.ack(claim, s)

    def write_batch(self, claim: Claim, graph: Graph, events: list[ev.Event], serialized: dict[str, Any]) -> None:
        """Persist a batch of engine events in one transaction (fenced by the attempt number)."""
        with self.db.write() as s:
            ex = self._fenced(s, claim)
            now = self.clock.now()
            # one query for every node row of the execution: the batch updates several and needs the count
            node_rows: dict[str, ExecutionNode] = {
                r.node_id: r for r in s.scalars(select(ExecutionNode).where(ExecutionNode.execution_id == ex.id))}

            def node_row(nid: str) -> ExecutionNode:
                if nid not in node_rows:  # rows are created at submit; this covers an older graph shape
                    node_rows[nid] = ExecutionNode(execution_id=ex.id, node_id=nid,
                                                   node_type=graph.nodes[nid].type.type, memory={})
                    s.add(node_rows[nid])
                return node_rows[nid]

            for event in events:
                data = dict(event.data)
                if event.type == ev.NODE_STARTED and event.node_id:
                    row = node_row(event.node_id)
                    row.status, row.started_at = "RUNNING", now
                elif event.type == ev.NODE_PROGRESS and event.node_id:
                    pass
                elif event.type == ev.NODE_COMPLETED and event.node_id:
                    row = node_row(event.node_id)
                    outputs, resumable = serialized[id(event)]
                    row.status, row.completed_at, row.cached = "COMPLETED", now, bool(data.get("cached"))
                    row.started_at = row.started_at or now
                    row.outputs, row.resumable = outputs, resumable
                    for hook in self.node_hooks:
                        hook(s, ex, row, graph.nodes[event.node_id], data)
                    data["outputs"] = outputs
                    done = sum(1 for r in node_rows.values() if r.status == "COMPLETED")
                    ex.progress = min(0.99, done / max(1, len(graph.nodes)))
                elif event.type == ev.NODE_FAILED and event.node_id:
                    row = node_row(event.node_id)
                    row.status, row.completed_at, row.error = "FAILED", now, data.get("error")
                if event.type in ev.TERMINAL_EVENTS:
                    status = {ev.EXECUTION_COMPLETED: "COMPLETED", ev.EXECUTION_FAILED: "FAILED",
                              ev.EXECUTION_CANCELLED: "CANCELLED"}[event.type]
                    if status == "CANCELLED":
                        for row in node_rows.values():
                            if row.status == "RUNNING":
                                row.status, row.completed_at = "CANCELLED", now
                    outputs = serialized.get("__outputs__") if status == "COMPLETED" else None
                    s.flush()
                    record_terminal(s, ex, status=status, outputs=outputs, error=data.get("error"), now=now)
                    self._terminal(s, ex)
                    self.queue.ack(claim, s)
                else:
                    append_event(s, ex, type=event.type, data=data, now=now)
                    self._observed(s, ex, event.type, event.node_id)

    def serialize(self, claim: Claim, graph: Graph, event: ev.Event, stored: dict[str, Any]) -> tuple[Any, bool]:
        """JSON for a node's outputs. Media is stored only for output nodes (decoded once, encoded once)."""
        node = graph.nodes[event.node_id] if event.node_id else None
        persist_media = node is not None and node.type.role == "output"
        resumable = True

        def convert(value: Any) -> Any:
            nonlocal resumable
            if isinstance(value, Image.Image):
                if persist_media:
                    fmt = str(node.params.get("format") or "png") if node else "png"
                    return self.files.store_image(account_id=claim.account_id, image=value, fmt=fmt,
                                                  execution_id=claim.execution_id).marker()
                resumable = False
                return {"type": "image", "width": value.width, "height": value.height, "mode": value.mode}
            if isinstance(value, MediaFile):
                if persist_media or value.file_id:
                    if value.file_id and not persist_media:
                        row = self.files.get_any(value.file_id)
                        if row is not None:
                            return {FILE_MARKER: row.id, "contentType": row.content_type}
                    data = value.read_bytes()
                    meta = value.meta or {}
                    return self.files.store(account_id=claim.account_id, data=data, content_type=value.content_type,
                                            execution_id=claim.execution_id, width=meta.get("width"),
                                            height=meta.get("height"), duration_s=meta.get("durationS")).marker()
                resumable = False
                return {"type": "file", "contentType": value.content_type, "size": value.size}
            if isinstance(value, dict):
                return {str(k): convert(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [convert(v) for v in value]
            if value is None or isinstance(value, (str, int, float, bool)):
                return value
            resumable = False
            return repr(value)[:200]

        outputs = {k: convert(v) for k, v in (event.outputs or {}).items()}
        if persist_media and node is not None:
            stored[output_name(node)] = outputs.get("value")
        return outputs, resumable


class _Writer:
    """Drains engine events into batched transactions, so a fast graph costs few commits."""

    def __init__(self, runner: ExecutionRunner, claim: Claim, graph: Graph):
        self.runner = runner
        self.claim = claim
        self.graph = graph
        self.queue: asyncio.Queue[ev.Event | None] = asyncio.Queue()
        self.outputs: dict[str, Any] = {}
        self.lost = False
        self.task = asyncio.create_task(self._loop())

    async def put(self, event: ev.Event) -> None:
        await self.queue.put(event)
        if event.type in ev.TERMINAL_EVENTS:
            await self.close()

    async def close(self) -> None:
        if not self.task.done():
            await self.queue.put(None)
            await asyncio.shield(self.task)
        if self.task.done() and not self.task.cancelled() and self.task.exception():
            raise self.task.exception()  # type: ignore[misc]

    async def abort(self) -> None:
        if not self.task.done():
            await self.queue.put(None)
            await asyncio.gather(self.task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            first = await self.queue.get()
            if first is None:
                return
            batch = [first]
            if first.type not in ev.TERMINAL_EVENTS:
                # a fast graph emits its next events within a few milliseconds: wait that long for them, so
                # one transaction carries several events instead of one each (SSE sees them COALESCE_S later)
                await asyncio.sleep(COALESCE_S)
            while not self.queue.empty():
                item = self.queue.get_nowait()
                if item is None:
                    await self._flush(batch)
                    return
                batch.append(item)
            await self._flush(batch)

    async def _flush(self, batch: list[ev.Event]) -> None:
        try:
            await asyncio.to_thread(self._write, batch)
        except LeaseLost:
            self.lost = True
            raise
        self.runner.hub.notify(self.claim.execution_id)

    def _write(self, batch: list[ev.Event]) -> None:
        serialized: dict[Any, Any] = {}
        for event in batch:
            if event.type == ev.NODE_COMPLETED and event.node_id:
                serialized[id(event)] = self.runner.serialize(self.claim, self.graph, event, self.outputs)
        if any(e.type == ev.EXECUTION_COMPLETED for e in batch):
            serialized["__outputs__"] = {name: self.outputs.get(name) for name in
                                         (output_name(self.graph.nodes[n]) for n in self.graph.order
                                          if self.graph.nodes[n].type.role == "output")}
        self.runner.write_batch(self.claim, self.graph, batch, serialized)


def default_work_root() -> Path:
    return Path(tempfile.gettempdir()) / "nodeloom-work"
