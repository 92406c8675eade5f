"""Each node's `startedAt`/`completedAt` are when it really started and finished (ms), not when its batch was written:
in the poll body and in its events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from tests.api.test_executions import read_sse
from tests.support.server import publish, run_to_end

from nodeloom.engine import events as ev
from nodeloom.engine.context import LocalEnvironment
from nodeloom.engine.executor import run
from nodeloom.engine.graph import validate
from nodeloom.engine.registry import Registry
from nodeloom.nodes import builtin_nodes

#: two delays one after the other (each long enough that their instants differ at millisecond precision)
SEQUENTIAL = {"nodes": [
    {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "x"}},
    {"id": "first", "type": "util.delay", "inputs": {"value": {"from": "prompt", "output": "text"}},
     "params": {"seconds": 0.03}},
    {"id": "second", "type": "util.delay", "inputs": {"value": {"from": "first", "output": "value"}},
     "params": {"seconds": 0.03}},
    {"id": "out", "type": "output.json", "inputs": {"value": {"from": "second", "output": "value"}},
     "params": {"name": "value"}},
]}


def at(value: Any) -> datetime:
    assert isinstance(value, str) and value.endswith("Z") and len(value.split(".")[-1]) == 4, value  # .mmmZ
    return datetime.fromisoformat(value)


def assert_sequential(times: dict[str, tuple[datetime, datetime]]) -> None:
    (s1, c1), (s2, c2) = times["first"], times["second"]
    assert s1 < c1 <= s2 < c2  # each took time, and the second started only once the first had finished


async def test_engine_events_carry_each_nodes_own_instants() -> None:
    graph = validate(SEQUENTIAL, Registry(builtin_nodes()))
    events = [e async for e in run(graph, execution_id="ex_t", inputs={}, env=LocalEnvironment())]
    started = {e.node_id: e.data["startedAt"] for e in events if e.type == ev.NODE_STARTED}
    completed = {e.node_id: e.data for e in events if e.type == ev.NODE_COMPLETED}
    for nid in ("first", "second"):
        assert completed[nid]["startedAt"] == started[nid]
    assert_sequential({nid: (at(completed[nid]["startedAt"]), at(completed[nid]["completedAt"]))
                       for nid in ("first", "second")})


def test_poll_and_events_show_when_each_node_ran(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, SEQUENTIAL)
    body = run_to_end(c, wid)
    assert body["status"] == "COMPLETED", body
    nodes = body["nodes"]
    assert_sequential({nid: (at(nodes[nid]["startedAt"]), at(nodes[nid]["completedAt"])) for nid in ("first", "second")})
    # not the instant their batch was written: the nodes of one execution do not all share one time
    assert len({nodes[nid]["completedAt"] for nid in nodes}) > 1
    execution_start, execution_end = at(body["startedAt"]), at(body["completedAt"])
    assert execution_start <= at(nodes["first"]["startedAt"]) and at(nodes["second"]["completedAt"]) <= execution_end

    events = read_sse(c, f"/api/v1/workflows/executions/{body['executionId']}/events")
    completed = {e["data"]["nodeId"]: e["data"] for e in events if e["event"] == "node.completed"}
    started = {e["data"]["nodeId"]: e["data"] for e in events if e["event"] == "node.started"}
    for nid in ("first", "second"):
        assert completed[nid]["startedAt"] == started[nid]["startedAt"] == nodes[nid]["startedAt"]
        assert completed[nid]["completedAt"] == nodes[nid]["completedAt"]
