"""Runs one claimed execution: start it, feed the engine's events to the recorder, resume what an
earlier attempt finished.

The runner only orchestrates. What the pieces do lives beside it:
- `services/lifecycle.py` — every state change and what it implies (billing, usage, webhooks);
- `services/recorder.py` — the fenced, batched persistence of engine events;
- `services/heartbeat.py` — the lease and cancel requests while it runs;
- `media/outputs.py` — node outputs ⇄ JSON (what is stored, what a resumed run reads back).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.engine import events as ev
from nodeloom.engine.errors import GraphError
from nodeloom.engine.executor import RunOptions, run
from nodeloom.engine.graph import Graph, Limits, output_name, validate
from nodeloom.engine.registry import Registry
from nodeloom.logs import execution_id_var
from nodeloom.media.images import INLINE_MAX_PIXELS, decode_image, encode_image
from nodeloom.media.outputs import live_value, serialize_outputs
from nodeloom.media.values import FILE_MARKER, MediaFile
from nodeloom.queue.base import Claim, QueueBackend
from nodeloom.services.cache import MemoryCache
from nodeloom.services.environment import ExecutionEnvironment, ResilientProcessPool
from nodeloom.services.files import FileService
from nodeloom.services.heartbeat import Heartbeat
from nodeloom.services.hub import EventHub
from nodeloom.services.lifecycle import Lifecycle
from nodeloom.services.metrics import Metrics
from nodeloom.services.recorder import BatchWriter, EventRecorder, LeaseLost, SerializedBatch
from nodeloom.storage.db import Database
from nodeloom.storage.models import Execution, ExecutionNode, File
from nodeloom.types import TERMINAL_STATUSES

log = logging.getLogger("nodeloom.runner")

__all__ = ["NOTHING_TO_RUN", "ExecutionRunner", "LeaseLost", "Started"]


class Started(NamedTuple):
    """What running a started execution needs, read in the transaction that started it."""

    graph: Any
    inputs: dict[str, Any]
    completed: dict[str, dict[str, Any]]  # outputs of nodes an earlier attempt finished (resumable ones)
    memory: dict[str, dict[str, Any]]  # nodes' durable memory (vendor job ids …)


#: what `start_in` returns for an execution that must not run (it ended while starting)
NOTHING_TO_RUN = object()


class _ExecutionFiles:
    """`media.outputs.OutputStore` for one execution: its outputs stored as the account's files."""

    def __init__(self, files: FileService, *, account_id: str, execution_id: str):
        self.files = files
        self.account_id = account_id
        self.execution_id = execution_id
        #: file rows of the batch being serialized: they commit in the batch's transaction, with the events and
        #: node rows that name them (`take_rows`)
        self._rows: list[File] = []

    def store_image(self, image: Image.Image, *, fmt: str) -> dict[str, Any]:
        data, ctype = encode_image(image, fmt)
        return self._prepare(data=data, content_type=ctype, width=image.width, height=image.height)

    def store_file(self, media: MediaFile) -> dict[str, Any]:
        meta = media.meta or {}
        return self._prepare(data=media.read_bytes(), content_type=media.content_type, width=meta.get("width"),
                             height=meta.get("height"), duration_s=meta.get("durationS"))

    def _prepare(self, **kwargs: Any) -> dict[str, Any]:
        stored, row = self.files.prepare(account_id=self.account_id, execution_id=self.execution_id, **kwargs)
        self._rows.append(row)
        return stored.marker()

    def take_rows(self) -> list[File]:
        rows, self._rows = self._rows, []
        return rows

    def stored_marker(self, file_id: str) -> dict[str, Any] | None:
        row = self.files.get_any(file_id)
        return None if row is None else {FILE_MARKER: row.id, "contentType": row.content_type}


def _light(graph: Graph, batch: list[ev.Event], light_disk: bool) -> bool:
    """Whether serializing the batch's node outputs is light enough for the event loop: no file (storing or looking
    one up is I/O), and images only where they are not stored (inner nodes) or are thumbnails (≤ INLINE_MAX_PIXELS)
    written to a disk that is not fsync'd."""

    def light(value: Any, stored: bool) -> bool:
        if isinstance(value, Image.Image):
            return not stored or (light_disk and value.width * value.height <= INLINE_MAX_PIXELS)
        if isinstance(value, MediaFile):
            return False
        if isinstance(value, dict):
            return all(light(v, stored) for v in value.values())
        if isinstance(value, (list, tuple)):
            return all(light(v, stored) for v in value)
        return True

    for event in batch:
        if event.type == ev.NODE_COMPLETED and event.node_id and event.outputs:
            if not light(event.outputs, graph.nodes[event.node_id].type.role == "output"):
                return False
    return True


class ExecutionRunner:
    def __init__(self, *, db: Database, registry: Registry, queue: QueueBackend, files: FileService, hub: EventHub,
                 lifecycle: Lifecycle, recorder: EventRecorder, heartbeat: Heartbeat, clock: Clock,
                 cache: MemoryCache, pool: ResilientProcessPool | None, services: Mapping[str, Any],
                 secrets: Mapping[str, str], limits: Limits, options: RunOptions, work_root: Path,
                 metrics: Metrics | None = None, max_attempts: int = 5):
        self.db = db
        self.registry = registry
        self.queue = queue
        self.files = files
        self.hub = hub
        self.lifecycle = lifecycle
        self.recorder = recorder
        self.heartbeat = heartbeat
        self.clock = clock
        self.cache = cache
        self.pool = pool
        self.services = services
        self.secrets = secrets
        self.limits = limits
        self.options = options
        self.work_root = work_root
        self.metrics = metrics
        self.max_attempts = max_attempts

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
            self.hub.notify(claim.execution_id)

    async def _run(self, claim: Claim, started: Any) -> None:
        start = started if started is not None else await asyncio.to_thread(self._start, claim)
        if not isinstance(start, Started):
            return
        eid = claim.execution_id
        try:
            graph = validate(start.graph, self.registry.for_graph(start.graph), limits=self.limits)
        except GraphError as exc:
            await asyncio.to_thread(self.recorder.finish, claim, status="FAILED",
                                    error={"code": "invalid_graph", "message": str(exc)})
            return
        completed_live = await asyncio.to_thread(self._rehydrate, graph, start.completed) if start.completed else {}
        workdir = self.work_root / eid  # made when a node first asks for it
        env = ExecutionEnvironment(db=self.db, execution_id=eid, pool=self.pool, services=self.services,
                                   secrets=self.secrets, memory=start.memory, workdir=workdir)
        cancel = asyncio.Event()
        lost = asyncio.Event()
        outputs: dict[str, Any] = {}  # output name → its stored JSON, as output nodes complete
        for nid, values in start.completed.items():
            if nid in graph.nodes and graph.nodes[nid].type.role == "output":
                outputs[output_name(graph.nodes[nid])] = values.get("value")
        store = _ExecutionFiles(self.files, account_id=claim.account_id, execution_id=eid)

        light_disk = not getattr(self.files.blobs, "fsync", True)

        async def flush(batch: list[ev.Event]) -> None:
            try:
                if _light(graph, batch, light_disk):  # nothing to encode or store but thumbnails: no thread trip
                    serialized = self._serialize(graph, batch, outputs, store)
                else:
                    serialized = await asyncio.to_thread(self._serialize, graph, batch, outputs, store)
                # the batch's transaction: on the group-commit thread, with whatever other executions have waiting
                await asyncio.wrap_future(self.recorder.submit_batch(claim, graph, batch, serialized))
            except LeaseLost:
                lost.set()
                raise
            # only a terminal event ends the run in a batch (`Prefer: wait` sleeps through the others)
            self.hub.notify(eid, ended=any(e.type in ev.TERMINAL_EVENTS for e in batch))

        def on_lost() -> None:
            lost.set()
            cancel.set()

        writer = BatchWriter(flush)
        heartbeat = asyncio.create_task(self.heartbeat.watch(claim, on_cancel=cancel.set, on_lost=on_lost))
        try:
            async for event in run(graph, execution_id=eid, account_id=claim.account_id, inputs=start.inputs,
                                   env=env, completed=completed_live, cache=self.cache.for_account(claim.account_id),
                                   cancel_event=cancel, options=self.options):
                if lost.is_set():
                    raise LeaseLost()
                self._observe(graph, event)
                await writer.put(event)
            await writer.close()
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await writer.abort()
            if env.workdir_made or claim.attempt > 1:  # (an earlier attempt may have left one behind)
                await asyncio.to_thread(shutil.rmtree, workdir, True)
        if lost.is_set():
            raise LeaseLost()

    @staticmethod
    def _serialize(graph: Graph, batch: list[ev.Event], outputs: dict[str, Any],
                   store: _ExecutionFiles) -> SerializedBatch:
        """JSON for the batch's node outputs. Media is stored only for output nodes (decoded once, encoded once)."""
        serialized = SerializedBatch()
        for event in batch:
            if event.type != ev.NODE_COMPLETED or not event.node_id:
                continue
            node = graph.nodes[event.node_id]
            is_output = node.type.role == "output"
            values, resumable = serialize_outputs(event.outputs or {}, persist_media=is_output, store=store,
                                                  image_format=str(node.params.get("format") or "png"))
            if is_output:
                outputs[output_name(node)] = values.get("value")
            serialized.add(event, values, resumable)
        serialized.files = store.take_rows()
        if any(e.type == ev.EXECUTION_COMPLETED for e in batch):
            serialized.execution_outputs = {
                name: outputs.get(name) for name in (output_name(graph.nodes[n]) for n in graph.order
                                                     if graph.nodes[n].type.role == "output")}
        return serialized

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

    # ------------------------------------------------------------------------------------------------
    def _start(self, claim: Claim) -> Started | object:
        with self.db.write() as s:
            return self.start_in(s, claim)

    def start_in(self, s: Session, claim: Claim) -> Started | object:
        """Mark a claimed execution RUNNING in the caller's transaction (the claim's, on the SQL queue) and
        read what running it needs; NOTHING_TO_RUN when it ended here (gone, cancelled, out of attempts)."""
        ex = s.get(Execution, claim.execution_id)
        if ex is None or ex.status in TERMINAL_STATUSES:
            self.queue.ack(claim, s)
            return NOTHING_TO_RUN
        if ex.cancel_requested:
            self.lifecycle.ended(s, ex, status="CANCELLED")
            self.queue.ack(claim, s)
            return NOTHING_TO_RUN
        if claim.attempt > self.max_attempts:
            self.lifecycle.ended(s, ex, status="FAILED", error={
                "code": "too_many_attempts",
                "message": f"gave up after {claim.attempt - 1} attempts (the worker kept dying)"})
            self.queue.ack(claim, s)
            return NOTHING_TO_RUN
        first_start = not ex.attempts  # never started before: its node rows are all as submit made them
        ex.attempts = claim.attempt
        if ex.status == "QUEUED":
            self.lifecycle.started(s, ex)
        if first_start:
            return Started(graph=ex.graph, inputs=dict(ex.inputs or {}), completed={}, memory={})
        rows = s.scalars(select(ExecutionNode).where(ExecutionNode.execution_id == ex.id)).all()
        completed = {r.node_id: r.outputs or {} for r in rows if r.status == "COMPLETED" and r.resumable}
        memory = {r.node_id: dict(r.memory or {}) for r in rows if r.memory}
        for r in rows:
            if r.node_id not in completed and r.status != "QUEUED":
                r.status = "QUEUED"  # it was interrupted; it will run again
        return Started(graph=ex.graph, inputs=dict(ex.inputs or {}), completed=completed, memory=memory)

    def _rehydrate(self, graph: Graph, completed: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Persisted outputs back to live values (stored images decoded) for nodes that will not run again."""
        out: dict[str, dict[str, Any]] = {}
        for nid, outputs in completed.items():
            if nid not in graph.nodes:
                continue
            if graph.nodes[nid].type.role == "output":
                out[nid] = outputs
                continue
            out[nid] = {k: live_value(v, open_file=self._open_file) for k, v in outputs.items()}
        return out

    def _open_file(self, file_id: str) -> Any:
        row = self.files.get_any(file_id)
        if row is None:
            return None
        if row.content_type.startswith("image/"):
            return decode_image(self.files.read_bytes(row))
        return MediaFile(path=self.files.local_path(row), content_type=row.content_type, file_id=row.id)
