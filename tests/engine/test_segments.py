"""Segments (engine/segments.py): the cut of a graph into remote jobs, and the executor running each as one unit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from nodeloom.engine import events as ev
from nodeloom.engine.context import LocalEnvironment
from nodeloom.engine.errors import NodeError
from nodeloom.engine.executor import RunOptions, run
from nodeloom.engine.graph import Graph, validate
from nodeloom.engine.node import Context, Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Param, Port
from nodeloom.engine.segments import Segment, SegmentContext, plan


class Remote(Node):
    """A node of kind "remote": text in, text out, plus a remote-only MODEL."""

    type = "r.step"
    segment = "remote"
    inputs = (Port("text", "text", required=False), Port("model", "comfyui:MODEL", required=False))
    outputs = (Port("text", "text"), Port("model", "comfyui:MODEL"))
    params = (Param("tag", "text", default=""),)


class Local(Node):
    type = "l.step"
    inputs = (Port("text", "text", required=False),)
    outputs = (Port("text", "text"),)
    params = (Param("tag", "text", default=""),)

    async def run(self, ctx: Context, tag: str, text: str | None = None) -> dict[str, Any]:
        return {"text": f"{text or ''}>{tag}"}


REGISTRY = Registry([Remote, Local])


def graph(*nodes: dict[str, Any]) -> Graph:
    return validate({"nodes": list(nodes)}, REGISTRY)


def r(nid: str, **inputs: Any) -> dict[str, Any]:
    return {"id": nid, "type": "r.step", "params": {"tag": nid}, "inputs": inputs}


def loc(nid: str, **inputs: Any) -> dict[str, Any]:
    return {"id": nid, "type": "l.step", "params": {"tag": nid}, "inputs": inputs}


def link(src: str, out: str = "text") -> dict[str, str]:
    return {"from": src, "output": out}


def test_connected_remote_nodes_form_one_segment() -> None:
    g = graph(loc("in"), r("a", text=link("in")), r("b", text=link("a")), r("c", model=link("a", "model")),
              loc("out", text=link("b")))
    (seg,) = plan(g)
    assert seg.members == ("a", "b", "c") and seg.copies == () and seg.kind == "remote"
    assert seg.id not in g.nodes


def test_a_path_that_leaves_and_reenters_splits_the_segment() -> None:
    # a → local x → b, and a → b directly: one component, but b cannot run in a's prompt
    g = graph(r("a"), loc("x", text=link("a")), r("b", text=link("x"), model=link("a", "model")))
    segs = plan(g)
    assert [s.members for s in segs] == [("a",), ("b",)]
    # b takes a's MODEL, which only the remote server carries: b's job runs a as well
    assert segs[1].copies == ("a",)


def test_unconnected_remote_nodes_are_separate_segments() -> None:
    g = graph(r("a"), r("b"), loc("x", text=link("a")))
    assert [s.members for s in plan(g)] == [("a",), ("b",)]


def test_a_graph_without_remote_nodes_has_no_segments() -> None:
    assert plan(graph(loc("a"), loc("b", text=link("a")))) == []


class Recorder:
    """A SegmentRunner that 'runs' a segment by concatenating tags, reporting each member."""

    def __init__(self, fail: str | None = None, block: asyncio.Event | None = None):
        self.calls: list[tuple[Segment, dict[str, Any]]] = []
        self.fail = fail
        self.block = block
        self.cancelled = False

    async def __call__(self, ctx: SegmentContext, segment: Segment, g: Graph,
                       values: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        self.calls.append((segment, {k: dict(v) for k, v in values.items()}))
        out: dict[str, dict[str, Any]] = {}
        for nid in segment.nodes:
            ctx.started(nid, g.nodes[nid].type.type)
            ctx.node_progress(nid, 1, 2)
            if nid == self.fail:
                raise NodeError("remote failure", code="remote_failed", node_id=nid, extra={"remote": {"id": nid}})
            if self.block is not None:
                try:
                    await self.block.wait()
                except asyncio.CancelledError:
                    self.cancelled = True
                    raise
            node = g.nodes[nid]
            text = values[nid].get("text")
            for name, lk in node.links.items():
                if name == "text" and lk.source in segment.nodes:
                    text = out[lk.source]["text"]
            out[nid] = {"text": f"{text or ''}>{nid}"}
        return {nid: {"text": out[nid]["text"]} for nid in segment.members}


async def collect(g: Graph, runner: Recorder, *, completed: dict[str, dict[str, Any]] | None = None,
                  cancel: asyncio.Event | None = None) -> list[ev.Event]:
    return [e async for e in run(g, execution_id="ex", inputs={}, env=LocalEnvironment(), completed=completed,
                                 cancel_event=cancel, options=RunOptions(segments={"remote": runner}))]


async def test_a_segment_runs_once_with_the_values_that_enter_it() -> None:
    g = graph(loc("in"), r("a", text=link("in")), r("b", text=link("a")), loc("out", text=link("b")))
    runner = Recorder()
    events = await collect(g, runner)
    assert len(runner.calls) == 1
    seg, values = runner.calls[0]
    assert values == {"a": {"text": ">in"}, "b": {}}  # the link inside the segment is the server's to carry
    done = {e.node_id: e.outputs for e in events if e.type == ev.NODE_COMPLETED}
    assert done["out"] == {"text": ">in>a>b>out"}
    progress = [e.data for e in events if e.type == ev.NODE_PROGRESS]
    assert {"nodeId": "a", "progress": 0.5, "value": 1, "max": 2} in progress
    assert events[-1].type == ev.EXECUTION_COMPLETED


async def test_segments_cut_by_a_local_node_run_in_order() -> None:
    g = graph(r("a"), loc("x", text=link("a")), r("b", text=link("x"), model=link("a", "model")),
              loc("out", text=link("b")))
    runner = Recorder()
    events = await collect(g, runner)
    assert [c[0].members for c in runner.calls] == [("a",), ("b",)]
    assert [e.outputs for e in events if e.type == ev.NODE_COMPLETED and e.node_id == "out"] == [
        {"text": ">a>x>b>out"}]


async def test_a_failing_segment_fails_the_execution_with_its_node_and_details() -> None:
    g = graph(r("a"), r("b", text=link("a")), loc("out", text=link("b")))
    events = await collect(g, Recorder(fail="b"))
    failed = events[-1]
    assert failed.type == ev.EXECUTION_FAILED
    assert failed.data["error"] == {"code": "remote_failed", "message": "remote failure", "nodeId": "b",
                                    "remote": {"id": "b"}}
    assert [e.node_id for e in events if e.type == ev.NODE_STARTED] == ["a", "b"]


async def test_no_runner_for_the_kind_fails_clearly() -> None:
    g = graph(r("a"))
    events = [e async for e in run(g, execution_id="ex", inputs={}, env=LocalEnvironment())]
    assert events[-1].data["error"]["code"] == "remote_unavailable"


async def test_cancel_reaches_the_running_segment() -> None:
    g = graph(r("a"), loc("out", text=link("a")))
    block, cancel = asyncio.Event(), asyncio.Event()
    runner = Recorder(block=block)
    task = asyncio.create_task(collect(g, runner, cancel=cancel))
    while not runner.calls:
        await asyncio.sleep(0.01)
    cancel.set()
    events = await task
    assert events[-1].type == ev.EXECUTION_CANCELLED and runner.cancelled


async def test_a_resumed_run_skips_finished_segments_and_reruns_partial_ones() -> None:
    g = graph(r("a"), loc("x", text=link("a")), r("b", text=link("x")), r("c", text=link("b")),
              loc("out", text=link("c")))
    runner = Recorder()
    # a finished; of b's segment only b did: the segment runs again whole
    events = await collect(g, runner, completed={"a": {"text": ">a"}, "x": {"text": ">a>x"}, "b": {"text": "old"}})
    assert [c[0].members for c in runner.calls] == [("b", "c")]
    assert [e.outputs for e in events if e.node_id == "out" and e.type == ev.NODE_COMPLETED] == [
        {"text": ">a>x>b>c>out"}]


@pytest.mark.parametrize("n", [50, 400])
def test_plan_is_fast_on_long_alternating_chains(n: int) -> None:
    nodes: list[dict[str, Any]] = [r("n0")]
    for i in range(1, n):
        maker = r if i % 2 == 0 else loc
        nodes.append(maker(f"n{i}", text=link(f"n{i - 1}")))
    segs = plan(graph(*nodes))
    assert len(segs) == (n + 1) // 2 and all(len(s.members) == 1 for s in segs)
