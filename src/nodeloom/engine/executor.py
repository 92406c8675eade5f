"""The ready-set executor ("topological dissolve").

Every node whose parents are done starts at once, bounded by a semaphore. The executor propagates
cancellation, enforces per-node deadlines, serves deterministic nodes from the cache by Merkle key,
fans lists out over scalar ports, and yields events; it never knows who listens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nodeloom.engine import events as ev
from nodeloom.engine.cache import Cache, merkle_keys
from nodeloom.engine.context import Environment, NodeContext
from nodeloom.engine.errors import NodeCancelled, NodeError, NodeTimeout
from nodeloom.engine.graph import Graph, NodeInstance, output_name


@dataclass
class RunOptions:
    concurrency: int = 8
    fanout_concurrency: int = 4
    node_timeout_s: float = 600.0
    #: awaited with (execution id, node, element count) before a fan-out starts its elements; raising a
    #: NodeError fails the node (billing refuses elements the account cannot pay for)
    admit: Callable[[str, NodeInstance, int], Awaitable[None]] | None = None


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
    opts = options or RunOptions()
    cancel = cancel_event or asyncio.Event()
    queue: asyncio.Queue[ev.Event | None] = asyncio.Queue()
    results: dict[str, dict[str, Any]] = dict(completed or {})
    keys = merkle_keys(graph, inputs=inputs, salt=execution_id)
    sem = asyncio.Semaphore(max(1, opts.concurrency))
    remaining = {nid: {p for p in graph.nodes[nid].parents} for nid in graph.order if nid not in results}
    children: dict[str, list[str]] = {nid: [] for nid in graph.order}
    for nid in graph.order:
        for parent in graph.nodes[nid].parents:
            children[parent].append(nid)
    for nid in list(remaining):
        remaining[nid] -= set(results)

    async def emit_progress(node_id: str, fraction: float, message: str | None) -> None:
        data: dict[str, Any] = {"nodeId": node_id, "progress": fraction}
        if message:
            data["message"] = message
        queue.put_nowait(ev.Event(ev.NODE_PROGRESS, node_id, data))

    def gather_inputs(node: NodeInstance) -> dict[str, Any]:
        values = dict(node.literals)
        for name, link in node.links.items():
            values[name] = results[link.source].get(link.output)
        for port in node.type.inputs:
            if port.name not in values and port.default is not None:
                values[port.name] = port.default
        return values

    async def call(node: NodeInstance, kwargs: dict[str, Any], element: int | None) -> dict[str, Any]:
        ctx = NodeContext(execution_id=execution_id, account_id=account_id, node_id=node.id, inputs=inputs,
                          env=env, emit_progress=emit_progress, cancel_event=cancel, element=element)
        instance = node.type()
        timeout = node.type.timeout_s or opts.node_timeout_s
        try:
            async with asyncio.timeout(timeout):
                out = await instance.run(ctx, **node.params, **kwargs)
        except TimeoutError as exc:
            raise NodeTimeout(f"node '{node.id}' ran past its {timeout:g} s deadline", node_id=node.id) from exc
        return out or {}

    fanned_runs: dict[str, int] = {}

    async def run_fanned(node: NodeInstance, kwargs: dict[str, Any]) -> dict[str, Any]:
        lengths = {name: len(kwargs[name]) for name in node.fanned_inputs if isinstance(kwargs.get(name), list)}
        sizes = set(lengths.values()) - {1}
        if len(sizes) > 1:
            detail = ", ".join(f"{k}={v}" for k, v in sorted(lengths.items()))
            raise NodeError(f"list inputs have different lengths ({detail}); lists are paired by index",
                            code="list_length_mismatch", node_id=node.id)
        n = sizes.pop() if sizes else (1 if lengths else 0)
        fanned_runs[node.id] = n
        if opts.admit is not None:
            await opts.admit(execution_id, node, n)
        inner = asyncio.Semaphore(max(1, opts.fanout_concurrency))
        done = 0

        async def one(i: int) -> dict[str, Any]:
            nonlocal done
            args = dict(kwargs)
            for name in lengths:
                seq = kwargs[name]
                args[name] = seq[0] if len(seq) == 1 else seq[i]
            async with inner:
                out = await call(node, args, i)
            done += 1
            await emit_progress(node.id, done / n, f"{done}/{n}")
            return out

        outs = await asyncio.gather(*(one(i) for i in range(n)))
        names = [p.name for p in node.type.outputs] or sorted({k for o in outs for k in o})
        return {name: [o.get(name) for o in outs] for name in names}

    async def run_node(nid: str) -> None:
        node = graph.nodes[nid]
        async with sem:
            if cancel.is_set():
                return
            kwargs = gather_inputs(node)
            # a required input whose link carries no value (a router's other branch): the node does not run
            missing = [p.name for p in node.type.inputs
                       if p.required and p.default is None and p.name in node.links and kwargs.get(p.name) is None]
            if missing:
                results[nid] = {p.name: None for p in node.type.outputs}
                queue.put_nowait(ev.Event(ev.NODE_COMPLETED, nid, {
                    "nodeId": nid, "cached": False, "skipped": True, "durationMs": 0,
                    "message": "skipped: no value for " + ", ".join(missing)}, results[nid]))
                return
            key = keys[nid]
            cacheable = cache is not None and node.type.role == "node" and node.type.is_deterministic(node.params)
            if cacheable:
                hit = await cache.get(key)  # type: ignore[union-attr]
                if hit is not None:
                    results[nid] = hit
                    queue.put_nowait(ev.Event(ev.NODE_COMPLETED, nid, {"nodeId": nid, "cached": True,
                                                                    "durationMs": 0}, hit))
                    return
            started = time.perf_counter()
            queue.put_nowait(ev.Event(ev.NODE_STARTED, nid, {"nodeId": nid, "nodeType": node.type.type}))
            try:
                out = await run_fanned(node, kwargs) if node.fanned_inputs else await call(node, kwargs, None)
            except (NodeCancelled, asyncio.CancelledError):
                raise
            except NodeError as exc:
                exc.node_id = exc.node_id or nid
                raise _Failed(exc) from exc
            except Exception as exc:  # a node's bug becomes a FAILED node with a clear message
                raise _Failed(NodeError(f"{type(exc).__name__}: {exc}", node_id=nid)) from exc
            results[nid] = out
            if cacheable:
                await cache.put(key, out)  # type: ignore[union-attr]
            duration = round((time.perf_counter() - started) * 1000, 3)
            data: dict[str, Any] = {"nodeId": nid, "cached": False, "durationMs": duration}
            if nid in fanned_runs:
                data["elements"] = fanned_runs[nid]  # how many times a fan-out ran (what it is charged for)
            queue.put_nowait(ev.Event(ev.NODE_COMPLETED, nid, data, out))

    tasks: dict[asyncio.Task[None], str] = {}
    failure: NodeError | None = None

    async def node_task(nid: str) -> None:
        """Runs one node, then starts the children it made ready (no round trip through the loop below,
        which wakes only to pass events on, or when the run failed, was cancelled or has nothing left)."""
        nonlocal failure
        wake = False
        try:
            await run_node(nid)
        except asyncio.CancelledError:
            raise
        except _Failed as exc:
            failure, wake = failure or exc.error, True
        except NodeCancelled:
            cancel.set()
        except Exception as exc:
            failure, wake = failure or NodeError(f"{type(exc).__name__}: {exc}", node_id=nid), True
        else:
            if not cancel.is_set() and failure is None:
                for child in children[nid]:
                    if child in remaining:
                        remaining[child].discard(nid)
                start_ready(children[nid])
        finally:
            task = asyncio.current_task()
            if task is not None:
                tasks.pop(task, None)
            if wake or not tasks:
                queue.put_nowait(None)

    def start_ready(nids: list[str]) -> None:
        for nid in nids:
            if nid in remaining and not remaining[nid]:
                del remaining[nid]
                task = asyncio.create_task(node_task(nid), name=f"node:{nid}")
                tasks[task] = nid

    start_ready([nid for nid in graph.order if nid in remaining])
    cancel_waiter = asyncio.create_task(cancel.wait())
    cancel_waiter.add_done_callback(lambda _t: queue.put_nowait(None))
    try:
        while tasks or not queue.empty():
            item = await queue.get()
            if item is not None:
                yield item
                continue
            if cancel.is_set() or failure is not None:
                break
        if cancel.is_set() and failure is None:
            await _cancel_all(tasks)
            while not queue.empty():
                item = queue.get_nowait()
                if item is not None and item.type != ev.NODE_PROGRESS:
                    yield item
            yield ev.Event(ev.EXECUTION_CANCELLED, None, {})
            return
        if failure is not None:
            await _cancel_all(tasks)
            yield ev.Event(ev.NODE_FAILED, failure.node_id, {
                "nodeId": failure.node_id, "error": {"code": failure.code, "message": failure.message}})
            yield ev.Event(ev.EXECUTION_FAILED, None, {"error": {
                "code": failure.code, "message": failure.message, "nodeId": failure.node_id}})
            return
        outputs = {output_name(graph.nodes[nid]): results[nid].get("value")
                   for nid in graph.order if graph.nodes[nid].type.role == "output" and nid in results}
        yield ev.Event(ev.EXECUTION_COMPLETED, None, {}, outputs)
    finally:
        cancel_waiter.cancel()
        await _cancel_all(tasks)
        # node_task and start_ready refer to each other: rebinding them breaks that cycle, so a finished
        # run's state (every node's results) is freed at once rather than at the next garbage collection
        node_task = start_ready = _finished  # noqa: F841


def _finished(*_args: Any) -> Any:
    raise RuntimeError("this run has finished")


async def _cancel_all(tasks: dict[asyncio.Task[None], str]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    tasks.clear()
