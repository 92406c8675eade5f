"""The ready-set executor ("topological dissolve").

Every node whose parents are done starts at once, bounded by a semaphore. The executor propagates
cancellation, enforces per-node deadlines, serves deterministic nodes from the cache by Merkle key,
fans lists out over scalar ports, and yields events; it never knows who listens.

`run` is the loop that passes events on; `_ReadySet` is one run's state and the work on it. Nothing
the state holds refers back to it once its node tasks are done or cancelled (a node's failure is kept
without its traceback), so a finished run — every node's results, media included — is freed by
reference counting alone, not at the next garbage collection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nodeloom.engine import events as ev
from nodeloom.engine.cache import Cache, merkle_keys
from nodeloom.engine.context import Environment, NodeContext
from nodeloom.engine.errors import NodeCancelled, NodeError, NodeTimeout
from nodeloom.engine.graph import Graph, NodeInstance, output_name
from nodeloom.engine.segments import Segment, SegmentContext, SegmentRunner, plan


@dataclass
class RunOptions:
    concurrency: int = 8
    fanout_concurrency: int = 4
    node_timeout_s: float = 600.0
    #: awaited with (execution id, node, element count) before a fan-out starts its elements; raising a
    #: NodeError fails the node (billing refuses elements the account cannot pay for)
    admit: Callable[[str, NodeInstance, int], Awaitable[None]] | None = None
    #: who runs the segments of each kind (engine/segments.py): {"comfyui": ...}
    segments: Mapping[str, SegmentRunner] = field(default_factory=dict)
    #: the wall clock (epoch seconds) nodes' `startedAt`/`completedAt` are read from (the services' Clock.time)
    now: Callable[[], float] = time.time
    #: the execution's memory budget: what its nodes' outputs held in memory may add up to (bytes, as `size_of`
    #: counts them: decoded images, buffers); a node whose outputs would pass it fails `node_memory`
    memory_budget: int | None = None
    size_of: Callable[[Any], int] | None = None


class _Failed(Exception):
    def __init__(self, error: NodeError):
        self.error = error


async def run(
    graph: Graph,
    *,
    execution_id: str,
    account_id: str = "",
    inputs: Mapping[str, Any],
    env: Environment,
    completed: Mapping[str, dict[str, Any]] | None = None,
    cache: Cache | None = None,
    cancel_event: asyncio.Event | None = None,
    options: RunOptions | None = None,
) -> AsyncIterator[ev.Event]:
    """Run `graph`, yielding events. `completed` holds outputs of nodes finished by an earlier attempt."""
    cancel = cancel_event or asyncio.Event()
    state = _ReadySet(graph, execution_id=execution_id, account_id=account_id, inputs=inputs, env=env,
                      completed=completed, cache=cache, cancel=cancel, options=options or RunOptions())
    queue = state.queue  # the waiter's callback holds the queue only, so it never keeps the state alive
    state.start_ready([unit for unit in state.units if unit in state.remaining])
    cancel_waiter = asyncio.create_task(cancel.wait())
    cancel_waiter.add_done_callback(lambda _t: queue.put_nowait(None))
    try:
        while state.tasks or not queue.empty():
            item = await queue.get()
            if item is not None:
                yield item
                continue
            if cancel.is_set() or state.failure is not None:
                break
        failure = state.failure
        if cancel.is_set() and failure is None:
            await _cancel_all(state.tasks)
            while not queue.empty():
                item = queue.get_nowait()
                if item is not None and item.type != ev.NODE_PROGRESS:
                    yield item
            yield ev.Event(ev.EXECUTION_CANCELLED, None, {})
            return
        if failure is not None:
            await _cancel_all(state.tasks)
            while not queue.empty():  # what the failed node's segment reported before it failed
                item = queue.get_nowait()
                if item is not None and item.type != ev.NODE_PROGRESS:
                    yield item
            extra = dict(failure.extra or {})
            failed: dict[str, Any] = {"nodeId": failure.node_id,
                                      "error": {"code": failure.code, "message": failure.message, **extra}}
            ended = state.options.now()
            if failure.node_id in state.started:
                failed["startedAt"] = instant(state.started[failure.node_id])
            failed["completedAt"] = instant(ended)
            yield ev.Event(ev.NODE_FAILED, failure.node_id, failed)
            yield ev.Event(ev.EXECUTION_FAILED, None, {"error": {
                "code": failure.code, "message": failure.message, "nodeId": failure.node_id, **extra}})
            return
        results = state.results
        outputs = {output_name(graph.nodes[nid]): results[nid].get("value")
                   for nid in graph.order if graph.nodes[nid].type.role == "output" and nid in results}
        yield ev.Event(ev.EXECUTION_COMPLETED, None, {}, outputs)
    finally:
        cancel_waiter.cancel()
        await _cancel_all(state.tasks)


class _ReadySet:
    """One run's state — results so far, the parents each waiting node still waits for, the running node
    tasks, the first failure — and the work on it: a node task runs its node and then starts the children
    it made ready itself, so `run`'s loop wakes only to pass events on, or when the run failed, was
    cancelled or has nothing left."""

    __slots__ = ("graph", "execution_id", "account_id", "inputs", "env", "cache", "cancel", "options", "queue",
                 "results", "keys", "sem", "remaining", "children", "tasks", "failure", "fanned_runs", "segments",
                 "units", "started", "held", "__weakref__")

    def __init__(
        self,
        graph: Graph,
        *,
        execution_id: str,
        account_id: str,
        inputs: Mapping[str, Any],
        env: Environment,
        completed: Mapping[str, dict[str, Any]] | None,
        cache: Cache | None,
        cancel: asyncio.Event,
        options: RunOptions,
    ):
        self.graph = graph
        self.execution_id = execution_id
        self.account_id = account_id
        self.inputs = inputs
        self.env = env
        self.cache = cache
        self.cancel = cancel
        self.options = options
        #: events for `run` to yield; None wakes it to look at the state (failure, cancellation, nothing left)
        self.queue: asyncio.Queue[ev.Event | None] = asyncio.Queue()
        self.results: dict[str, dict[str, Any]] = dict(completed or {})
        self.keys = merkle_keys(graph, inputs=inputs, salt=execution_id)
        self.sem = asyncio.Semaphore(max(1, options.concurrency))
        #: what runs as one unit: a node, or a segment of nodes that run elsewhere (keyed by the segment's id)
        self.segments: dict[str, Segment] = {seg.id: seg for seg in plan(graph)}
        if not self.segments:
            self.units: list[str] = graph.order
            #: the parents each unit that has not started yet still waits for
            self.remaining = {nid: {p for p in graph.nodes[nid].parents} for nid in graph.order
                              if nid not in self.results}
            self.children: dict[str, list[str]] = {nid: [] for nid in graph.order}
            for nid in graph.order:
                for parent in graph.nodes[nid].parents:
                    self.children[parent].append(nid)
            done = set(self.results)
            if done:
                for nid in list(self.remaining):
                    self.remaining[nid] -= done
        else:
            self._plan_units()
        #: the running node tasks by unit id (node or segment) (a node runs at most once per run)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        #: the first failure, kept without its traceback (see `node_task`)
        self.failure: NodeError | None = None
        #: how many elements each fan-out ran (what it is charged for)
        self.fanned_runs: dict[str, int] = {}
        #: bytes the run's results hold in memory (counted when a memory budget is set)
        self.held = 0
        #: when each node that ran started (epoch seconds), for its events' `startedAt`
        self.started: dict[str, float] = {}

    def _plan_units(self) -> None:
        """Units, their parents and children when the graph has segments: a segment waits for what any of its
        nodes (copies included) takes from outside it, and is done when each of its members is."""
        graph, results = self.graph, self.results
        unit_of = {m: seg.id for seg in self.segments.values() for m in seg.members}
        self.units = []
        for nid in graph.order:
            unit = unit_of.get(nid, nid)
            if unit == nid or nid == self.segments[unit].first:
                self.units.append(unit)
        done = {u for u in self.units if all(m in results for m in self._members(u))}
        self.remaining, self.children = {}, {u: [] for u in self.units}
        for unit in self.units:
            inside = set(self.segments[unit].nodes) if unit in self.segments else {unit}
            parents = {unit_of.get(p, p) for nid in inside for p in graph.nodes[nid].parents if p not in inside}
            for parent in parents:
                self.children[parent].append(unit)
            if unit not in done:
                self.remaining[unit] = parents - done

    def _members(self, unit: str) -> tuple[str, ...]:
        seg = self.segments.get(unit)
        return seg.members if seg is not None else (unit,)

    def start_ready(self, nids: list[str]) -> None:
        remaining, tasks = self.remaining, self.tasks
        for nid in nids:
            if nid in remaining and not remaining[nid]:
                del remaining[nid]
                tasks[nid] = asyncio.create_task(self.node_task(nid), name=f"node:{nid}")

    async def node_task(self, nid: str) -> None:
        """Runs one node, then starts the children it made ready (no round trip through `run`'s loop)."""
        wake = False
        try:
            await self.run_node(nid)
        except asyncio.CancelledError:
            raise
        except _Failed as exc:
            # a copy without the traceback: its frames hold this state, and keeping them would be a cycle
            self.failure, wake = self.failure or _detached(exc.error), True
        except NodeCancelled:
            self.cancel.set()
        except Exception as exc:
            self.failure, wake = self.failure or NodeError(f"{type(exc).__name__}: {exc}", node_id=nid), True
        else:
            if not self.cancel.is_set() and self.failure is None:
                children, remaining = self.children[nid], self.remaining
                for child in children:
                    if child in remaining:
                        remaining[child].discard(nid)
                self.start_ready(children)
        finally:
            tasks = self.tasks
            tasks.pop(nid, None)
            if wake or not tasks:
                self.queue.put_nowait(None)

    async def run_node(self, nid: str) -> None:
        if nid in self.segments:
            await self.run_segment(self.segments[nid])
            return
        node = self.graph.nodes[nid]
        results, queue = self.results, self.queue
        async with self.sem:
            if self.cancel.is_set():
                return
            kwargs = self.gather_inputs(node)
            # a required input whose link carries no value (a router's other branch): the node does not run
            missing = [p.name for p in node.type.inputs
                       if p.required and p.default is None and p.name in node.links and kwargs.get(p.name) is None]
            if missing:
                results[nid] = {p.name: None for p in node.type.outputs}
                at = instant(self.options.now())
                queue.put_nowait(ev.Event(ev.NODE_COMPLETED, nid, {
                    "nodeId": nid, "cached": False, "skipped": True, "durationMs": 0, "startedAt": at,
                    "completedAt": at, "message": "skipped: no value for " + ", ".join(missing)}, results[nid]))
                return
            key = self.keys[nid]
            cache = self.cache
            if cache is not None and not (node.type.role == "node" and node.type.is_deterministic(node.params)):
                cache = None  # only deterministic nodes are served from, and stored in, the cache
            if cache is not None:
                hit = await cache.get(key)
                if hit is not None:
                    results[nid] = hit
                    at = instant(self.options.now())
                    queue.put_nowait(ev.Event(ev.NODE_COMPLETED, nid, {"nodeId": nid, "cached": True, "durationMs": 0,
                                                                    "startedAt": at, "completedAt": at}, hit))
                    return
            now = self.options.now
            self.started[nid] = began = now()
            started_at = instant(began)
            started = time.perf_counter()
            queue.put_nowait(ev.Event(ev.NODE_STARTED, nid, {"nodeId": nid, "nodeType": node.type.type,
                                                             "startedAt": started_at}))
            try:
                out = await self.run_fanned(node, kwargs) if node.fanned_inputs else await self.call(node, kwargs, None)
            except (NodeCancelled, asyncio.CancelledError):
                raise
            except NodeError as exc:
                exc.node_id = exc.node_id or nid
                raise _Failed(exc) from exc
            except Exception as exc:  # a node's bug becomes a FAILED node with a clear message
                raise _Failed(NodeError(f"{type(exc).__name__}: {exc}", node_id=nid)) from exc
            self.admit_memory(nid, out)
            results[nid] = out
            if cache is not None:
                await cache.put(key, out)
            duration = round((time.perf_counter() - started) * 1000, 3)
            data: dict[str, Any] = {"nodeId": nid, "cached": False, "durationMs": duration, "startedAt": started_at,
                                    "completedAt": instant(now())}
            if nid in self.fanned_runs:
                data["elements"] = self.fanned_runs[nid]  # how many times a fan-out ran (what it is charged for)
            queue.put_nowait(ev.Event(ev.NODE_COMPLETED, nid, data, out))

    async def run_segment(self, seg: Segment) -> None:
        """Run a segment through its kind's runner; its members complete as the runner reports them, or at its end."""
        graph, results, queue = self.graph, self.results, self.queue
        first = graph.nodes[seg.first]
        async with self.sem:
            if self.cancel.is_set():
                return
            runner = self.options.segments.get(seg.kind)
            if runner is None:
                raise _Failed(NodeError(f"no {seg.kind} server is configured to run node '{seg.first}' "
                                        f"({first.type.type})", code=f"{seg.kind}_unavailable", node_id=seg.first))
            inside = set(seg.nodes)
            values = {nid: self.gather_inputs(graph.nodes[nid], skip=inside) for nid in seg.nodes}
            now, began = self.options.now, self.options.now()
            seg_started = instant(began)
            self.started.setdefault(seg.first, began)
            member_started: dict[str, str] = {}

            def report(kind: str, node_id: str, data: dict[str, Any], outputs: dict[str, Any] | None) -> None:
                if kind == ev.NODE_STARTED:
                    self.started[node_id] = t = now()
                    data = {**data, "startedAt": data.get("startedAt") or instant(t)}
                    member_started[node_id] = data["startedAt"]
                elif kind in (ev.NODE_COMPLETED, ev.NODE_FAILED):
                    data = {"startedAt": member_started.get(node_id, seg_started), "completedAt": instant(now()),
                            **data}
                if kind == ev.NODE_COMPLETED:
                    results[node_id] = outputs or {}
                queue.put_nowait(ev.Event(kind, node_id, data, (outputs or {}) if kind == ev.NODE_COMPLETED else None))

            ctx = SegmentContext(report=report, execution_id=self.execution_id, account_id=self.account_id,
                                 node_id=seg.first, inputs=self.inputs, env=self.env,
                                 emit_progress=self.emit_progress, cancel_event=self.cancel, node_type=first.type.type,
                                 secrets=first.type.secrets)
            started = time.perf_counter()
            try:
                out = await runner(ctx, seg, graph, values)
            except (NodeCancelled, asyncio.CancelledError):
                raise
            except NodeError as exc:
                exc.node_id = exc.node_id or seg.first
                raise _Failed(exc) from exc
            except Exception as exc:
                raise _Failed(NodeError(f"{type(exc).__name__}: {exc}", node_id=seg.first)) from exc
            duration = round((time.perf_counter() - started) * 1000, 3)
            ended = instant(now())
            for nid in seg.members:
                if nid not in ctx.reported:
                    self.admit_memory(nid, out.get(nid) or {})
            for nid in seg.members:
                if nid in ctx.reported:
                    continue
                results[nid] = out.get(nid) or {}
                queue.put_nowait(ev.Event(ev.NODE_COMPLETED, nid, {
                    "nodeId": nid, "cached": False, "durationMs": duration,
                    "startedAt": member_started.get(nid, seg_started), "completedAt": ended}, results[nid]))

    def admit_memory(self, nid: str, out: Mapping[str, Any]) -> None:
        """Count a node's outputs against the execution's memory budget (they stay live until the run ends)."""
        budget, size_of = self.options.memory_budget, self.options.size_of
        if budget is None or size_of is None:
            return
        self.held += sum(size_of(value) for value in out.values())
        if self.held > budget:
            raise _Failed(NodeError(
                f"node '{nid}' brings what this execution holds in memory to {self.held // 2**20} MiB, over its "
                f"budget of {budget // 2**20} MiB", code="node_memory", node_id=nid))

    def gather_inputs(self, node: NodeInstance, skip: set[str] | None = None) -> dict[str, Any]:
        results = self.results
        values = dict(node.literals)
        for name, link in node.links.items():
            if skip is not None and link.source in skip:
                continue  # a link inside a segment: the remote server carries it
            values[name] = results[link.source].get(link.output)
        for port in node.type.inputs:
            if port.name not in values and port.default is not None and port.name not in node.links:
                values[port.name] = port.default
        return values

    async def emit_progress(self, node_id: str, fraction: float, message: str | None) -> None:
        data: dict[str, Any] = {"nodeId": node_id, "progress": fraction}
        if message:
            data["message"] = message
        self.queue.put_nowait(ev.Event(ev.NODE_PROGRESS, node_id, data))

    async def call(self, node: NodeInstance, kwargs: dict[str, Any], element: int | None) -> dict[str, Any]:
        """Run the node once (one element of a fan-out, or the whole node) within its deadline."""
        ctx = NodeContext(execution_id=self.execution_id, account_id=self.account_id, node_id=node.id,
                          inputs=self.inputs, env=self.env, emit_progress=self.emit_progress,
                          cancel_event=self.cancel, element=element, node_type=node.type.type,
                          secrets=node.type.secrets)
        instance = node.type()
        timeout = node.type.timeout_s or self.options.node_timeout_s
        try:
            async with asyncio.timeout(timeout):
                out = await instance.run(ctx, **node.params, **kwargs)
        except TimeoutError as exc:
            raise NodeTimeout(f"node '{node.id}' ran past its {timeout:g} s deadline", node_id=node.id) from exc
        return out or {}

    async def run_fanned(self, node: NodeInstance, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Run the node once per element of its list inputs (paired by index; a list of one is repeated)."""
        lengths = {name: len(kwargs[name]) for name in node.fanned_inputs if isinstance(kwargs.get(name), list)}
        sizes = set(lengths.values()) - {1}
        if len(sizes) > 1:
            detail = ", ".join(f"{k}={v}" for k, v in sorted(lengths.items()))
            raise NodeError(f"list inputs have different lengths ({detail}); lists are paired by index",
                            code="list_length_mismatch", node_id=node.id)
        n = sizes.pop() if sizes else (1 if lengths else 0)
        self.fanned_runs[node.id] = n
        if self.options.admit is not None:
            await self.options.admit(self.execution_id, node, n)
        inner = asyncio.Semaphore(max(1, self.options.fanout_concurrency))
        done = 0

        async def one(i: int) -> dict[str, Any]:
            nonlocal done
            args = dict(kwargs)
            for name in lengths:
                seq = kwargs[name]
                args[name] = seq[0] if len(seq) == 1 else seq[i]
            async with inner:
                out = await self.call(node, args, i)
            done += 1
            await self.emit_progress(node.id, done / n, f"{done}/{n}")
            return out

        outs = await asyncio.gather(*(one(i) for i in range(n)))
        names = [p.name for p in node.type.outputs] or sorted({k for o in outs for k in o})
        return {name: [o.get(name) for o in outs] for name in names}


def instant(t: float) -> str:
    """Epoch seconds as the API writes instants (ISO 8601 UTC, milliseconds, Z)."""
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _detached(error: NodeError) -> NodeError:
    """The failure as `run` reports it (message, code, node), without the traceback and chained exceptions
    it came with: their frames refer to the run's state, which keeps the failure until the run ends."""
    return NodeError(error.message, code=error.code, node_id=error.node_id, extra=error.extra)


async def _cancel_all(tasks: dict[str, asyncio.Task[None]]) -> None:
    """Cancel the running node tasks and wait until they have ended. `asyncio.wait`, not `gather`: the
    caller's task keeps what it last awaited until it awaits again, and a gather would keep the cancelled
    tasks — and through their frames the run's state — that long. (A node task catches every Exception,
    so there is no exception that `wait`, unlike `gather`, would leave unretrieved.)"""
    running = list(tasks.values())
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running)
    tasks.clear()
