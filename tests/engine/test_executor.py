"""The ready-set executor: concurrency, cancellation, deadlines, Merkle caching, fan-out, resume."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.support import nodes as test_nodes

from nodeloom.engine import events as ev
from nodeloom.engine.cache import merkle_keys
from nodeloom.engine.context import LocalEnvironment
from nodeloom.engine.errors import NodeError
from nodeloom.engine.executor import RunOptions, run
from nodeloom.engine.graph import validate
from nodeloom.engine.node import Context, Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes import builtin_nodes

RUNS: list[str] = []


class Record(Node):
    type = "t.record"
    inputs = (Port("value", "any", required=False),)
    params = (Param("tag", "text", default=""),)
    outputs = (Port("value", "any"),)

    async def run(self, ctx: Context, tag: str, value: Any = None) -> dict[str, Any]:
        RUNS.append(tag)
        return {"value": f"{value}|{tag}"}


class Texts(Node):
    type = "t.texts"
    params = (Param("items", "json", default=[]),)
    outputs = (Port("items", "list<text>"),)

    async def run(self, ctx: Context, items: list[str]) -> dict[str, Any]:
        return {"items": items}


class DictCache:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    async def put(self, key: str, outputs: dict[str, Any]) -> None:
        self.data[key] = outputs


@pytest.fixture
def registry() -> Registry:
    RUNS.clear()
    return Registry([*builtin_nodes(), *test_nodes.nodes(), Record, Texts])


async def collect(graph: Any, registry: Registry, **kw: Any) -> list[ev.Event]:
    g = validate(graph, registry)
    kw.setdefault("inputs", {})
    return [e async for e in run(g, execution_id=kw.pop("execution_id", "ex_t"), env=LocalEnvironment(), **kw)]


async def test_independent_branches_run_concurrently(registry: Registry) -> None:
    graph = {"nodes": [
        {"id": "a", "type": "test.sleep", "params": {"seconds": 0.3}},
        {"id": "b", "type": "test.sleep", "params": {"seconds": 0.3}},
        {"id": "c", "type": "test.sleep", "params": {"seconds": 0.3}},
    ]}
    events = await collect(graph, registry)
    kinds = [(e.type, e.node_id) for e in events if e.type in (ev.NODE_STARTED, ev.NODE_COMPLETED)]
    first_completion = next(i for i, k in enumerate(kinds) if k[0] == ev.NODE_COMPLETED)
    # all three started before any finished: they overlapped
    assert sum(1 for k in kinds[:first_completion] if k[0] == ev.NODE_STARTED) == 3
    assert events[-1].type == ev.EXECUTION_COMPLETED


async def test_concurrency_is_bounded(registry: Registry) -> None:
    graph = {"nodes": [{"id": f"n{i}", "type": "test.sleep", "params": {"seconds": 0.05}} for i in range(6)]}
    events = await collect(graph, registry, options=RunOptions(concurrency=2))
    running = peak = 0
    for e in events:
        if e.type == ev.NODE_STARTED:
            running += 1
            peak = max(peak, running)
        elif e.type == ev.NODE_COMPLETED:
            running -= 1
    assert peak == 2


async def test_dependencies_wait_for_parents(registry: Registry) -> None:
    graph = {"nodes": [
        {"id": "a", "type": "t.record", "params": {"tag": "a"}},
        {"id": "b", "type": "t.record", "params": {"tag": "b"}, "inputs": {"value": {"from": "a", "output": "value"}}},
        {"id": "c", "type": "t.record", "params": {"tag": "c"}, "inputs": {"value": {"from": "b", "output": "value"}}},
        {"id": "o", "type": "output.json", "params": {"name": "out"}, "inputs": {"value": {"from": "c", "output": "value"}}},
    ]}
    events = await collect(graph, registry)
    assert RUNS == ["a", "b", "c"]
    assert events[-1].outputs == {"out": "None|a|b|c"}


async def test_cancellation_stops_running_nodes(registry: Registry) -> None:
    graph = {"nodes": [{"id": "slow", "type": "test.sleep", "params": {"seconds": 30}},
                       {"id": "after", "type": "t.record", "params": {"tag": "after"},
                        "inputs": {"value": {"from": "slow", "output": "value"}}}]}
    g = validate(graph, registry)
    cancel = asyncio.Event()
    seen: list[str] = []

    async def consume() -> None:
        async for e in run(g, execution_id="ex", inputs={}, env=LocalEnvironment(), cancel_event=cancel):
            seen.append(e.type)
            if e.type == ev.NODE_STARTED:
                cancel.set()

    await asyncio.wait_for(consume(), 5)
    assert seen[-1] == ev.EXECUTION_CANCELLED
    assert "after" not in RUNS


async def test_per_node_deadline(registry: Registry) -> None:
    events = await collect({"nodes": [{"id": "t", "type": "test.timeboxed", "params": {"seconds": 5}}]}, registry)
    assert events[-1].type == ev.EXECUTION_FAILED
    assert events[-1].data["error"]["code"] == "node_timeout"
    assert events[-1].data["error"]["nodeId"] == "t"


async def test_default_deadline_from_options(registry: Registry) -> None:
    events = await collect({"nodes": [{"id": "t", "type": "test.sleep", "params": {"seconds": 5}}]}, registry,
                           options=RunOptions(node_timeout_s=0.2))
    assert events[-1].data["error"]["code"] == "node_timeout"


async def test_failure_reports_node_and_message(registry: Registry) -> None:
    events = await collect({"nodes": [{"id": "f", "type": "test.fail", "params": {"message": "nope"}}]}, registry)
    failed = [e for e in events if e.type == ev.NODE_FAILED]
    assert failed and failed[0].node_id == "f"
    assert events[-1].data["error"] == {"code": "test_failure", "message": "nope", "nodeId": "f"}


async def test_cache_serves_deterministic_nodes_only(registry: Registry) -> None:
    graph = {"nodes": [
        {"id": "a", "type": "t.record", "params": {"tag": "a"}},
        {"id": "s", "type": "test.sleep", "params": {"seconds": 0}, "inputs": {"value": {"from": "a", "output": "value"}}},
        {"id": "b", "type": "t.record", "params": {"tag": "b"}, "inputs": {"value": {"from": "s", "output": "value"}}},
    ]}
    cache = DictCache()
    await collect(graph, registry, cache=cache, execution_id="ex1")
    assert RUNS == ["a", "b"]
    events = await collect(graph, registry, cache=cache, execution_id="ex2")
    cached = {e.node_id: e.data["cached"] for e in events if e.type == ev.NODE_COMPLETED}
    # a is served from the cache; s is not deterministic, so neither it nor b (downstream) is cached
    assert cached == {"a": True, "s": False, "b": False}
    assert RUNS == ["a", "b", "b"]


def test_merkle_keys_change_downstream_only(registry: Registry) -> None:
    def graph(tag: str) -> Any:
        return validate({"nodes": [
            {"id": "x", "type": "t.record", "params": {"tag": "x"}},
            {"id": "a", "type": "t.record", "params": {"tag": tag}},
            {"id": "b", "type": "t.record", "params": {"tag": "b"}, "inputs": {"value": {"from": "a", "output": "value"}}},
        ]}, registry)

    k1 = merkle_keys(graph("a1"), inputs={}, salt="s")
    k2 = merkle_keys(graph("a2"), inputs={}, salt="s")
    assert k1["x"] == k2["x"]
    assert k1["a"] != k2["a"] and k1["b"] != k2["b"]


def test_merkle_keys_include_execution_inputs(registry: Registry) -> None:
    g = validate({"nodes": [{"id": "p", "type": "input.text", "params": {"name": "p"}}]}, registry)
    assert merkle_keys(g, inputs={"p": "a"}, salt="s")["p"] != merkle_keys(g, inputs={"p": "b"}, salt="s")["p"]


async def test_fan_out_runs_once_per_element_and_pairs_by_index(registry: Registry) -> None:
    graph = {"nodes": [
        {"id": "l", "type": "t.texts", "params": {"items": ["fox", "cat", "owl"]}},
        {"id": "t", "type": "text.template", "params": {"template": "a {{ text }}"},
         "inputs": {"text": {"from": "l", "output": "items"}}},
        {"id": "o", "type": "output.json", "params": {"name": "out"}, "inputs": {"value": {"from": "t", "output": "text"}}},
    ]}
    events = await collect(graph, registry)
    assert events[-1].outputs == {"out": ["a fox", "a cat", "a owl"]}


async def test_fan_out_length_mismatch_fails_clearly(registry: Registry) -> None:
    class Two(Node):
        type = "t.two"
        inputs = (Port("a", "text"), Port("b", "text"))
        outputs = (Port("v", "text"),)

        async def run(self, ctx: Context, a: str, b: str) -> dict[str, Any]:
            return {"v": a + b}

    reg = Registry([*registry, Two])
    graph = {"nodes": [
        {"id": "l2", "type": "t.texts", "params": {"items": ["a", "b"]}},
        {"id": "l3", "type": "t.texts", "params": {"items": ["x", "y", "z"]}},
        {"id": "l1", "type": "t.texts", "params": {"items": ["!"]}},
        {"id": "ok", "type": "t.two", "inputs": {"a": {"from": "l3", "output": "items"},
                                                 "b": {"from": "l1", "output": "items"}}},
        {"id": "bad", "type": "t.two", "inputs": {"a": {"from": "l2", "output": "items"},
                                                  "b": {"from": "l3", "output": "items"}}},
    ]}
    events = await collect(graph, reg)
    done = {e.node_id: e.outputs for e in events if e.type == ev.NODE_COMPLETED}
    if "ok" in done:  # a list of length 1 is repeated
        assert done["ok"] == {"v": ["x!", "y!", "z!"]}
    assert events[-1].type == ev.EXECUTION_FAILED
    assert events[-1].data["error"]["code"] == "list_length_mismatch"


async def test_resume_skips_completed_nodes(registry: Registry) -> None:
    graph = {"nodes": [
        {"id": "a", "type": "t.record", "params": {"tag": "a"}},
        {"id": "b", "type": "t.record", "params": {"tag": "b"}, "inputs": {"value": {"from": "a", "output": "value"}}},
        {"id": "o", "type": "output.json", "params": {"name": "out"}, "inputs": {"value": {"from": "b", "output": "value"}}},
    ]}
    events = await collect(graph, registry, completed={"a": {"value": "restored"}})
    assert RUNS == ["b"]
    assert events[-1].outputs == {"out": "restored|b"}


async def test_progress_events(registry: Registry) -> None:
    events = await collect({"nodes": [{"id": "d", "type": "util.delay", "params": {"seconds": 1.0}}]}, registry)
    progress = [e.data["progress"] for e in events if e.type == ev.NODE_PROGRESS]
    assert progress and progress == sorted(progress) and 0 < progress[0] <= 1


class Blob:
    """An output value that a weak reference can watch."""


class MakeBlob(Node):
    type = "t.blob"
    outputs = (Port("value", "any"),)

    async def run(self, ctx: Context) -> dict[str, Any]:
        return {"value": Blob()}


def test_a_finished_run_frees_its_results_without_the_garbage_collector() -> None:
    import gc
    import weakref

    reg = Registry([MakeBlob, Record])
    graph = validate({"nodes": [{"id": "a", "type": "t.blob"},
                                {"id": "b", "type": "t.record", "inputs": {"value": {"from": "a", "output": "value"}}}]},
                     reg)
    refs: list[weakref.ref[Any]] = []

    async def go() -> None:
        async for event in run(graph, execution_id="ex_gc", inputs={}, env=LocalEnvironment()):
            if event.type == ev.NODE_COMPLETED and event.node_id == "a":
                refs.append(weakref.ref(event.outputs["value"]))  # type: ignore[index]
            del event

    gc.disable()
    try:
        asyncio.run(go())
        # reference counting alone freed it: no cycle (such as the executor's closures) kept the run alive
        assert refs and refs[0]() is None
    finally:
        gc.enable()


class Hold(Node):
    """Fails, or sleeps until cancelled, after its parent produced a Blob (which the run then holds)."""

    type = "t.hold"
    inputs = (Port("value", "any"),)
    params = (Param("fail", "boolean", default=False),)
    outputs = (Port("value", "any"),)
    deterministic = False

    async def run(self, ctx: Context, fail: bool, value: Any = None) -> dict[str, Any]:
        if fail:
            raise NodeError("held up", code="held")
        await asyncio.sleep(30)
        return {"value": value}


@pytest.mark.parametrize("ending", [ev.EXECUTION_COMPLETED, ev.EXECUTION_FAILED, ev.EXECUTION_CANCELLED])
def test_the_run_state_is_freed_as_the_generator_finishes(ending: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """However a run ends (a failure's traceback and a cancelled task's frames included), nothing refers back
    to its state: reference counting frees it, and every result it held, the moment the generator finishes."""
    import gc
    import weakref

    from nodeloom.engine import executor

    states: list[weakref.ref[Any]] = []
    init = executor._ReadySet.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        states.append(weakref.ref(self))

    monkeypatch.setattr(executor._ReadySet, "__init__", spy)
    nodes: list[dict[str, Any]] = [{"id": "a", "type": "t.blob"}]
    if ending == ev.EXECUTION_COMPLETED:
        nodes.append({"id": "b", "type": "t.record", "inputs": {"value": {"from": "a", "output": "value"}}})
    else:  # a failure cancels the sleeping sibling; a cancellation cancels the sleeping node
        nodes.append({"id": "s", "type": "t.hold", "inputs": {"value": {"from": "a", "output": "value"}}})
        if ending == ev.EXECUTION_FAILED:
            nodes.append({"id": "f", "type": "t.hold", "params": {"fail": True},
                          "inputs": {"value": {"from": "a", "output": "value"}}})
    graph = validate({"nodes": nodes}, Registry([MakeBlob, Record, Hold]))
    blobs: list[weakref.ref[Any]] = []
    seen: list[str] = []

    async def go() -> None:
        cancel = asyncio.Event()
        async for event in run(graph, execution_id="ex_gc", inputs={}, env=LocalEnvironment(), cancel_event=cancel):
            seen.append(event.type)
            if event.type == ev.NODE_COMPLETED and event.node_id == "a":
                assert event.outputs is not None
                blobs.append(weakref.ref(event.outputs["value"]))
            if event.type == ev.NODE_STARTED and event.node_id == "s" and ending == ev.EXECUTION_CANCELLED:
                cancel.set()
            del event
        # still inside the event loop, before any other task or callback ran: freed by reference counting
        assert states and states[0]() is None
        assert blobs and blobs[0]() is None

    gc.disable()
    try:
        asyncio.run(go())
    finally:
        gc.enable()
    assert seen[-1] == ending
