"""The ComfyUI pool's state (services/comfyui/pool.py) against real servers: health from `/system_stats`, queues,
the last `/object_info` kept (and shared through the database) when a server dies, 503 when none ever answered,
and the same state through `nodeloom comfyui status` and `/metrics`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.comfyui import ComfyServer
from tests.support.server import ROOT, LiveServer, free_port, make_settings

from nodeloom.clock import SystemClock
from nodeloom.compose import build
from nodeloom.services.comfyui.pool import ComfyPool, Need, NoServer, PoolUnavailable
from nodeloom.storage.db import Database
from nodeloom.storage.migrate import upgrade
from nodeloom.storage.models_comfyui import ComfyServer as ComfyServerRow


def pool(tmp_path: Path, urls: list[str]) -> ComfyPool:
    url = f"sqlite:///{tmp_path / 'pool.db'}"
    upgrade(url)
    return ComfyPool(Database(url), urls=urls, clock=SystemClock())


@pytest.mark.slow
def test_health_queue_and_object_info_are_kept_when_a_server_dies(tmp_path: Path,
                                                                    make_comfy: Callable[..., ComfyServer]) -> None:
    own = make_comfy()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    p = pool(tmp_path, [own.url, dead])
    with pytest.raises(PoolUnavailable):
        p.object_info()  # configured, but no server has answered yet
    asyncio.run(p.check())
    states = {s.url: s for s in p.servers()}
    assert states[own.url].healthy and states[own.url].error is None and states[own.url].node_types > 400
    assert (states[own.url].queue_running, states[own.url].queue_pending) == (0, 0)
    assert not states[dead].healthy and "ComfyUnavailable" in (states[dead].error or "")
    assert "ImageInvert" in p.object_info()

    own.kill()
    asyncio.run(p.check())
    assert not {s.url: s for s in p.servers()}[own.url].healthy
    # the last /object_info is kept: import and validation go on while the pool is down
    assert "ImageInvert" in p.object_info()
    # and every process sees it: a second pool on the same database, which never checked anything itself
    again = ComfyPool(p.db, urls=[own.url, dead], clock=SystemClock())
    assert "ImageInvert" in again.object_info()


def test_a_server_without_comfyui_servers_says_so(tmp_path: Path) -> None:
    with pytest.raises(PoolUnavailable) as refused:
        pool(tmp_path, []).object_info()
    assert refused.value.status == 503 and refused.value.code == "comfyui_unavailable"
    assert "NODELOOM_COMFYUI_URLS" in refused.value.message


def test_comfyui_urls_are_checked_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be an http"):
        make_settings(tmp_path, comfyui_urls="ftp://gpu1:8188")
    with pytest.raises(ValueError, match="twice"):
        make_settings(tmp_path, comfyui_urls="http://gpu1:8188,http://gpu1:8188/")
    assert make_settings(tmp_path, comfyui_urls="http://a:8188/, http://b:8188").comfyui_urls == [
        "http://a:8188", "http://b:8188"]


@pytest.mark.slow
def test_status_command_and_metrics_show_each_server(tmp_path: Path, comfy: ComfyServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    env = {**os.environ, "NODELOOM_DATA_DIR": str(data), "NODELOOM_SECRET_KEY": "test-secret-key-0123456789",
           "NODELOOM_COMFYUI_URLS": f"{comfy.url},{dead}", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "nodeloom.cli", "migrate"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    out = subprocess.run([sys.executable, "-m", "nodeloom.cli", "comfyui", "status", "--check", "--json"], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    servers = {s["url"]: s for s in json.loads(out.stdout.strip().splitlines()[-1])["data"]}
    assert servers[comfy.url]["healthy"] is True and servers[comfy.url]["nodeTypes"] > 400
    assert servers[dead]["healthy"] is False

    # /metrics of a server on the same database reads what the command's check wrote
    settings = make_settings(tmp_path, comfyui_urls=f"{comfy.url},{dead}", embedded_workers=False)
    assert settings.data_dir == data  # no worker runs here: nothing checks the pool but the command above
    srv = LiveServer(settings).start()
    try:
        text = httpx.get(srv.url + "/metrics", timeout=30).text
    finally:
        srv.stop()
    assert f'nodeloom_comfyui_healthy{{server="{comfy.url}"}} 1.0' in text
    assert f'nodeloom_comfyui_healthy{{server="{dead}"}} 0.0' in text


def test_the_composition_root_runs_the_check_only_when_a_pool_is_configured(tmp_path: Path) -> None:
    without = build(make_settings(tmp_path / "a"), migrate=True)
    with_pool = build(make_settings(tmp_path / "b", comfyui_urls="http://127.0.0.1:1"), migrate=True)
    try:
        assert "comfyui" not in {d.name for d in without.duties}
        assert "comfyui" in {d.name for d in with_pool.duties}
    finally:
        without.db.dispose()
        with_pool.db.dispose()


def _seed(p: ComfyPool, rows: dict[str, tuple[bool, int, dict[str, Any]]]) -> None:
    """Servers as a check would have recorded them: url → (healthy, queue length, /object_info)."""
    with p.db.write() as s:
        for url, (healthy, queued, info) in rows.items():
            s.add(ComfyServerRow(url=url, healthy=healthy, queue_running=queued, queue_pending=0,
                                 node_types=len(info), object_info=info, object_info_at=SystemClock().now(),
                                 checked_at=SystemClock().now()))


def _info(*classes: str, ckpts: tuple[str, ...] = ()) -> dict[str, Any]:
    info: dict[str, Any] = {c: {"input": {"required": {}}, "output": ["IMAGE"]} for c in classes}
    if ckpts:
        info["CheckpointLoaderSimple"] = {"input": {"required": {"ckpt_name": [list(ckpts)]}},
                                          "output": ["MODEL", "CLIP", "VAE"]}
    return info


def test_routing_picks_a_healthy_server_with_the_types_and_files_least_loaded_first(tmp_path: Path) -> None:
    a, b, c, d = (f"http://gpu{i}:8188" for i in range(4))
    p = pool(tmp_path, [a, b, c, d])
    _seed(p, {
        a: (True, 3, _info("ImageInvert", ckpts=("sdxl.safetensors",))),  # has it, busy
        b: (True, 0, _info("ImageInvert", ckpts=("flux.safetensors",))),  # idle, lacks the checkpoint
        c: (True, 1, _info("ImageInvert", ckpts=("sdxl.safetensors",))),  # has it, less busy
        d: (False, 0, _info("ImageInvert", ckpts=("sdxl.safetensors",))),  # has it, down
    })
    need = Need(frozenset({"ImageInvert", "CheckpointLoaderSimple"}),
                (("CheckpointLoaderSimple", "ckpt_name", "sdxl.safetensors"),))
    assert p.acquire("ex1/n", need, ttl_s=30) == c
    assert p.acquire("ex2/n", need, ttl_s=30) == c  # one running and one queued of ours per server
    assert p.acquire("ex3/n", need, ttl_s=30) == a  # c is full: the next fitting one
    assert p.acquire("ex4/n", need, ttl_s=30) == a
    assert p.acquire("ex5/n", need, ttl_s=30) is None  # every fitting server holds two: wait
    assert p.acquire("ex1/n", need, ttl_s=30) == c  # a holder keeps (renews) its lease
    p.release("ex1/n")
    assert p.acquire("ex5/n", need, ttl_s=30) == c
    assert p.leases() == {a: 2, c: 2}
    with pytest.raises(NoServer, match="flux"):  # nobody has this checkpoint: no waiting, a clear error
        p.acquire("ex6/n", Need(frozenset({"CheckpointLoaderSimple"}),
                                (("CheckpointLoaderSimple", "ckpt_name", "flux-dev.safetensors"),)), ttl_s=30)
    # a lease its holder stops renewing expires
    assert p.acquire("ex7/n", Need(frozenset({"ImageInvert"})), ttl_s=-1) == b
    assert b not in p.leases()
