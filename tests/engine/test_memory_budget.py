"""The per-execution memory budget (RunOptions.memory_budget): what a run's node outputs hold in memory is counted
as they complete, and the node that would cross the budget fails `node_memory` (issue #15, decode limits)."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from nodeloom.engine import events as ev
from nodeloom.engine.context import LocalEnvironment
from nodeloom.engine.executor import RunOptions, run
from nodeloom.engine.graph import validate
from nodeloom.engine.node import Context, Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Param, Port
from nodeloom.media.images import memory_size


class Canvas(Node):
    type = "t.canvas"
    params = (Param("side", "integer", default=8),)
    outputs = (Port("image", "image"),)

    async def run(self, ctx: Context, side: int) -> dict[str, Any]:
        return {"image": Image.new("RGB", (side, side))}


def chain(*sides: int) -> Any:
    return validate({"nodes": [{"id": f"c{i}", "type": "t.canvas", "params": {"side": s}}
                               for i, s in enumerate(sides)]}, Registry([Canvas]))


async def events(graph: Any, budget: int | None) -> list[ev.Event]:
    options = RunOptions(memory_budget=budget, size_of=memory_size, concurrency=1)
    return [e async for e in run(graph, execution_id="ex", inputs={}, env=LocalEnvironment(), options=options)]


def test_memory_size_counts_decoded_pixels_buffers_and_containers() -> None:
    assert memory_size(Image.new("RGB", (10, 10))) == 300
    assert memory_size(Image.new("RGBA", (10, 10))) == 400
    assert memory_size(Image.new("F", (10, 10))) == 400
    assert memory_size([Image.new("L", (4, 4)), {"b": b"12345"}, "xyz"]) == 16 + 5 + 3


async def test_a_run_within_its_budget_completes() -> None:
    done = await events(chain(100, 100), budget=2 * 100 * 100 * 3)
    assert done[-1].type == ev.EXECUTION_COMPLETED


async def test_the_node_that_crosses_the_budget_fails_node_memory() -> None:
    done = await events(chain(100, 100, 100), budget=2 * 100 * 100 * 3 + 10)
    failed = done[-1]
    assert failed.type == ev.EXECUTION_FAILED
    assert failed.data["error"]["code"] == "node_memory" and failed.data["error"]["nodeId"] == "c2"


@pytest.mark.parametrize("budget", [None])
async def test_no_budget_counts_nothing(budget: int | None) -> None:
    assert (await events(chain(200, 200, 200), budget))[-1].type == ev.EXECUTION_COMPLETED
