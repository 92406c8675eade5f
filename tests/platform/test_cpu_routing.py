"""Built-in image operations on small images run in the worker's process (no pickling through the pool); models,
operators' packs and large images still go to the process pool; NODELOOM_CPU_LOCAL_MAX_PIXELS=0 sends all there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from nodeloom.nodes.image_adjust import invert_image
from nodeloom.services.environment import ExecutionEnvironment, ResilientProcessPool


class CountingPool(ResilientProcessPool):
    """Records what reaches the pool instead of starting processes."""

    def __init__(self, local_max_pixels: int):  # no super().__init__: no processes
        self.size = 1
        self.local_max_pixels = local_max_pixels
        self.calls: list[str] = []

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.calls.append(fn.__name__)
        return fn(*args)


def env(pool: CountingPool, tmp_path: Path | None = None) -> ExecutionEnvironment:
    return ExecutionEnvironment(db=None, execution_id="ex_1", pool=pool, services={}, secrets={}, memory={},  # type: ignore[arg-type]
                                workdir=tmp_path)


def size_of(image: Image.Image) -> tuple[int, int]:
    return image.size


def test_small_images_stay_in_process_large_ones_and_foreign_code_go_to_the_pool() -> None:
    pool = CountingPool(local_max_pixels=512 * 512)
    e = env(pool)
    small, medium, large = Image.new("RGB", (64, 64)), Image.new("RGB", (400, 400)), Image.new("RGB", (600, 600))
    for image in (small, medium):
        assert asyncio.run(e.run_cpu(invert_image, image)).getpixel((0, 0)) == (255, 255, 255)
    assert pool.calls == []
    asyncio.run(e.run_cpu(invert_image, large))
    asyncio.run(e.run_cpu(size_of, small))  # not a built-in image module: the pool, whatever the size
    assert pool.calls == ["invert_image", "size_of"]


def test_zero_sends_every_call_to_the_pool() -> None:
    pool = CountingPool(local_max_pixels=0)
    asyncio.run(env(pool).run_cpu(invert_image, Image.new("RGB", (8, 8))))
    assert pool.calls == ["invert_image"]


def test_the_workdir_is_made_only_when_a_node_asks_for_it(tmp_path: Path) -> None:
    e = env(CountingPool(0), tmp_path / "ex_1")
    assert not (tmp_path / "ex_1").exists() and not e.workdir_made
    assert e.service("workdir") == tmp_path / "ex_1" and (tmp_path / "ex_1").is_dir() and e.workdir_made
