"""Graph limits are configuration (default 1,000 nodes), and the engine stays linear well past them: a 5,000-node
chain validates and runs without recursion, and the work per node does not grow with the graph. Counts, never
wall-clock time."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from nodeloom.engine import events as ev
from nodeloom.engine.cache import merkle_keys
from nodeloom.engine.context import LocalEnvironment
from nodeloom.engine.errors import GraphError
from nodeloom.engine.executor import run
from nodeloom.engine.graph import Limits, validate
from nodeloom.engine.node import Context, Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Port
from nodeloom.settings import Settings


class Step(Node):
    type = "t.step"
    inputs = (Port("value", "any", required=False),)
    outputs = (Port("value", "any"),)

    async def run(self, ctx: Context, value: Any = None) -> dict[str, Any]:
        return {"value": (value or 0) + 1}


REGISTRY = Registry([Step])


def chain(n: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "n0", "type": "t.step"}]
    nodes += [{"id": f"n{i}", "type": "t.step", "inputs": {"value": {"from": f"n{i - 1}", "output": "value"}}}
              for i in range(1, n)]
    return {"nodes": nodes}


@contextmanager
def shallow_stack(frames: int = 120) -> Iterator[None]:
    """Only `frames` Python frames beyond the caller's: recursion over the graph would raise RecursionError."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def execute(n: int) -> list[ev.Event]:
    graph = validate(chain(n), REGISTRY, limits=Limits(max_nodes=n))

    async def go() -> list[ev.Event]:
        return [e async for e in run(graph, execution_id="ex_scale", inputs={}, env=LocalEnvironment())]

    return asyncio.run(go())


def test_default_limit_is_1000_nodes_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_nodes == 1000 and Limits().max_nodes == 1000
    validate(chain(1000), REGISTRY)
    with pytest.raises(GraphError, match="too many nodes: 1001 > limit 1000"):
        validate(chain(1001), REGISTRY)
    monkeypatch.setenv("NODELOOM_MAX_NODES", "20000")
    assert Settings().max_nodes == 20000


def test_a_5000_node_chain_validates_and_runs_without_recursion() -> None:
    n = 5000
    with shallow_stack():
        graph = validate(chain(n), REGISTRY, limits=Limits(max_nodes=n))
        assert len(merkle_keys(graph, inputs={}, salt="s")) == n
    events = execute(n)  # asyncio's own frames need more than a shallow stack; the engine adds none per node
    completed = [e for e in events if e.type == ev.NODE_COMPLETED]
    assert len(completed) == n and [e.type for e in events].count(ev.NODE_STARTED) == n
    assert events[-1].type == ev.EXECUTION_COMPLETED
    assert completed[-1].outputs == {"value": n}


def calls_to(fn: Any) -> int:
    """Python function calls (and generator/coroutine resumptions) made while `fn` runs: work, not time."""
    count = 0

    def profile(_frame: Any, event: str, _arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_work_per_node_does_not_grow_with_the_graph() -> None:
    small, large = 500, 4000
    for step in ("validate", "run"):
        if step == "validate":
            costs = [calls_to(lambda n=n: validate(chain(n), REGISTRY, limits=Limits(max_nodes=n)))  # type: ignore[misc]
                     for n in (small, large)]
        else:
            costs = [calls_to(lambda n=n: execute(n)) for n in (small, large)]  # type: ignore[misc]
        per_node = [cost / n for cost, n in zip(costs, (small, large), strict=True)]
        # linear: 8× the nodes costs about 8× the calls (a quadratic engine would cost 64×)
        assert per_node[1] <= per_node[0] * 1.25, (step, per_node)
