"""bench/bench_comfyui.py runs end to end (1 round of 2 runs per side) against a real ComfyUI, directly and through
nodeloom, and prints its table with both columns. Timings are never asserted: this only keeps the bench working."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from bench.bench_comfyui import Config, bench
from tests.support.comfyui import ComfyServer
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow


def test_the_comfyui_bench_prints_both_columns(make_server: Callable[..., LiveServer], comfy: ComfyServer) -> None:
    srv = make_server(comfyui_urls=comfy.url)
    _account, key = srv.account(credits=1000)
    cfg = Config(rounds=1, light_runs=2, heavy_runs=2, light_burst=2, heavy_burst=2)
    out = asyncio.run(bench(comfy.url, srv.url, key, cfg, log=lambda _line: None))
    header = next(line for line in out.splitlines() if line.startswith("graph / figure"))
    assert "direct" in header and "nodeloom" in header and "ratio" in header
    rows = [line for line in out.splitlines() if line.startswith("  ")]
    # per graph: p50, p99, throughput — each with a figure in both columns
    assert len(rows) == 6, out
    for row in rows:
        _label, _, figures = row.partition(")")
        direct, nodeloom = figures.split()[:2]
        assert float(direct) > 0 and float(nodeloom) > 0, row
    assert "3-node" in out and "blur" in out
    assert out.count("PASS") + out.count("MISS") == 2  # the heavy graph's two targets get a verdict
