"""Run one node type (or a small graph) through the real validator and executor.

`run_cpu` crosses a real process boundary (a spawn pool), so every pure function a node hands to the
pool, and every value it passes, is proven picklable. Live values that JSON cannot carry (images, media
files) enter the graph through `test.value`, a test-only input node that reads them from the execution
inputs; everything else is a literal, checked by the validator like any API graph.
"""

from __future__ import annotations

import asyncio
import functools
import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from nodeloom.engine import events as ev
from nodeloom.engine.context import LocalEnvironment
from nodeloom.engine.errors import NodeError
from nodeloom.engine.executor import run
from nodeloom.engine.graph import validate
from nodeloom.engine.node import Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Port
from nodeloom.nodes import (
    core,
    image,
    image_adjust,
    image_analyze,
    image_compose,
    image_mask,
    lists,
    logic,
    prompt,
    text,
    workflow_io,
)
from nodeloom.nodes.core import NAME, InputNode

T = TypeVar("T")

PACKS = (text, prompt, workflow_io, logic, lists, image, image_adjust, image_compose, image_mask, image_analyze)


class LiveValue(InputNode):
    type = "test.value"
    display_name = "Live value"
    description = "Test only: hands the execution input named `name` to the graph as it is (an image, a file)."
    value_type = "any"
    params = (NAME,)
    outputs = (Port("value", "any"),)


def pack_nodes() -> list[type[Node]]:
    return [t for pack in PACKS for t in pack.nodes()]


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    return Registry([*pack_nodes(), *core.nodes(), LiveValue])


_pool: ProcessPoolExecutor | None = None


def pool() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    return _pool


def shutdown_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


class PoolEnvironment(LocalEnvironment):
    """A LocalEnvironment whose `run_cpu` runs in a process pool, as a worker's does."""

    async def run_cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool(), fn, *args)


@dataclass
class GraphRun:
    nodes: dict[str, dict[str, Any]]  # node id -> its outputs
    outputs: dict[str, Any]  # the workflow's named outputs


async def run_graph(graph: dict[str, Any], inputs: dict[str, Any] | None = None) -> GraphRun:
    """Validate and execute; a failed execution raises NodeError with the executor's code and message."""
    plan = validate(graph, registry())
    nodes: dict[str, dict[str, Any]] = {}
    async for event in run(plan, execution_id="ex_test", account_id="acc_test", inputs=inputs or {},
                           env=PoolEnvironment()):
        if event.type == ev.NODE_COMPLETED:
            nodes[event.node_id] = event.outputs  # type: ignore[index]
        elif event.type == ev.EXECUTION_FAILED:
            error = event.data["error"]
            raise NodeError(error["message"], code=error["code"], node_id=error.get("nodeId"))
        elif event.type == ev.EXECUTION_COMPLETED:
            return GraphRun(nodes, event.outputs or {})
    raise AssertionError("the execution ended without a terminal event")


def _is_literal(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


async def run_node(node_type: str, inputs: dict[str, Any] | None = None,
                   params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one node of `node_type` in a graph of its own and return its outputs."""
    nodes: list[dict[str, Any]] = []
    live: dict[str, Any] = {}
    wired: dict[str, Any] = {}
    for name, value in (inputs or {}).items():
        if _is_literal(value):
            wired[name] = value
            continue
        source = f"in_{name}"
        nodes.append({"id": source, "type": "test.value", "params": {"name": source}})
        live[source] = value
        wired[name] = {"from": source, "output": "value"}
    nodes.append({"id": "node", "type": node_type, "inputs": wired, "params": params or {}})
    return (await run_graph({"nodes": nodes}, live)).nodes["node"]


# --- test images ------------------------------------------------------------------------------------


def pixels(img: Image.Image) -> np.ndarray:
    """The image as a float array (H, W[, C]) for measuring."""
    return np.asarray(img, dtype=np.float64)


def ramp(width: int = 64, height: int = 48) -> Image.Image:
    """Red rises left to right, green top to bottom, blue constant: every pixel says where it came from."""
    xs = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    ys = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([xs, ys, np.full_like(xs, 96)], -1).round().astype(np.uint8))


def noise(width: int = 64, height: int = 64, seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (height, width, channels) if channels else (height, width)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def quadrants(size: int = 40) -> Image.Image:
    """Red, green / blue, white quadrants."""
    img = Image.new("RGB", (size, size))
    half = size // 2
    for (x, y), colour in {(0, 0): (255, 0, 0), (half, 0): (0, 255, 0), (0, half): (0, 0, 255),
                           (half, half): (255, 255, 255)}.items():
        img.paste(colour, (x, y, x + half, y + half))
    return img


def disc_mask(size: int = 64, radius: int = 16) -> Image.Image:
    ys, xs = np.ogrid[:size, :size]
    inside = (xs - size / 2 + 0.5) ** 2 + (ys - size / 2 + 0.5) ** 2 <= radius**2
    return Image.fromarray(np.where(inside, 255, 0).astype(np.uint8))
