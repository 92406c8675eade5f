"""Crashes and load around real ComfyUI servers (API.md "ComfyUI workflows", Running):
- our process SIGKILLed while ComfyUI runs a segment → the restarted server re-attaches to the stored prompt id and
  completes; ComfyUI's output folder shows the prompt ran once;
- two servers, the one running the segment SIGKILLed → it runs again on the other and completes;
- a server holds at most one running and one queued segment of ours; cancelling one queued on ComfyUI takes it off
  ComfyUI's queue (and costs nothing) while the running one completes;
- animated WEBP and video outputs come back as our files."""

from __future__ import annotations

import io
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select
from tests.support.comfyui import ComfyServer, wait_for_pool
from tests.support.server import LiveServer, cli_account, free_port, publish, spawn_server, wait_http, wait_status

from nodeloom.storage.models import ExecutionNode

pytestmark = pytest.mark.slow


def link(src: str, out: str) -> dict[str, str]:
    return {"from": src, "output": out}


def slow_graph(prefix: str, *, sigma: float = 10.0, size: int = 1536, batch: int = 4) -> dict[str, Any]:
    """Seconds of work for ComfyUI's CPU: two wide blurs of a batch, saved under `prefix`."""
    return {"nodes": [
        {"id": "big", "type": "comfyui.EmptyImage", "inputs": {"width": size, "height": size, "batch_size": batch,
                                                               "color": 0x336699}},
        {"id": "blur", "type": "comfyui.ImageBlur", "inputs": {"image": link("big", "image"), "blur_radius": 31,
                                                               "sigma": sigma}},
        {"id": "blur2", "type": "comfyui.ImageBlur", "inputs": {"image": link("blur", "image"), "blur_radius": 31,
                                                                "sigma": sigma}},
        {"id": "save", "type": "comfyui.SaveImage", "inputs": {"images": link("blur2", "image"),
                                                               "filename_prefix": prefix}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("save", "images")}, "params": {"name": "image"}},
    ]}


def queue_of(server: ComfyServer) -> dict[str, list[Any]]:
    with server.client() as cc:
        body: dict[str, list[Any]] = cc.get("/queue").json()
        return body


def wait_running_on(servers: list[ComfyServer], timeout: float = 60) -> ComfyServer:
    deadline = time.monotonic() + timeout
    while True:
        for server in servers:
            try:
                if queue_of(server)["queue_running"]:
                    return server
            except httpx.HTTPError:
                pass
        assert time.monotonic() < deadline, "no server began running the segment"
        time.sleep(0.05)


def prompt_of(srv: LiveServer, execution_id: str) -> str | None:
    """The ComfyUI prompt id the segment stored (its first node's memory) before posting it."""
    with srv.services.db.read() as s:
        memory = s.scalar(select(ExecutionNode.memory).where(ExecutionNode.execution_id == execution_id,
                                                             ExecutionNode.node_id == "big"))
    return (memory or {}).get("comfyui", {}).get("promptId")


def saved(server: ComfyServer, prefix: str) -> list[Path]:
    return sorted(server.output_dir.glob(f"{prefix}_*.png"))


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_our_process_killed_mid_job_reattaches_and_the_prompt_runs_once(
        tmp_path: Path, make_comfy: Callable[..., ComfyServer], how: signal.Signals) -> None:
    """A crash (SIGKILL) or a graceful stop (SIGTERM: the job is handed back) leaves the prompt running on ComfyUI;
    the restarted server re-attaches to it — only a caller's cancel takes a prompt off the server."""
    comfy = make_comfy()
    data = tmp_path / "data"
    key = cli_account(data, name="crash", credits=10000)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"NODELOOM_COMFYUI_URLS": comfy.url, "NODELOOM_COMFYUI_CHECK_SECONDS": "1"}
    prefix = f"nl_crash_{uuid.uuid4().hex[:8]}"
    proc = spawn_server(data, port, env)
    try:
        wait_http(url)
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        wait_for_pool(c)
        wid = publish(c, slow_graph(prefix))
        eid = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}}).json()["executionId"]
        wait_running_on([comfy])
    finally:
        proc.send_signal(how)
        proc.wait(timeout=60)
    proc = spawn_server(data, port, env)
    try:
        wait_http(url)
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        body = wait_status(c, eid, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=180)
        assert body["status"] == "COMPLETED", body
        assert len(body["outputs"]["image"]) == 4
        # ComfyUI ran the prompt once: one batch of four files, not two
        assert len(saved(comfy, prefix)) == 4
        with comfy.client() as cc:
            history = cc.get("/history").json()
        assert sum(1 for entry in history.values()
                   if any(n.get("inputs", {}).get("filename_prefix") == prefix
                          for n in entry["prompt"][2].values())) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_server_killed_mid_run_fails_over_to_another(make_server: Callable[..., LiveServer],
                                                       make_comfy: Callable[..., ComfyServer]) -> None:
    one, two = make_comfy(), make_comfy()
    srv = make_server(comfyui_urls=f"{one.url},{two.url}", comfyui_check_seconds=1)
    _account, key = srv.account(credits=10000)
    with srv.client(key) as c:
        wait_for_pool(c)
        deadline = time.monotonic() + 60
        while len(srv.services.comfyui.healthy_urls()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        prefix = f"nl_failover_{uuid.uuid4().hex[:8]}"
        wid = publish(c, slow_graph(prefix))
        eid = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}}).json()["executionId"]
        victim = wait_running_on([one, two])
        survivor = two if victim is one else one
        victim.kill()
        body = wait_status(c, eid, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=180)
        assert body["status"] == "COMPLETED", body
        assert len(saved(survivor, prefix)) == 4
        # the dead server is unhealthy now; brought back, it rejoins the pool
        assert victim.url not in srv.services.comfyui.healthy_urls()
        victim.restart()
        deadline = time.monotonic() + 60
        while victim.url not in srv.services.comfyui.healthy_urls():
            assert time.monotonic() < deadline, "the restarted server never rejoined"
            time.sleep(0.2)


def test_one_running_one_queued_per_server_and_cancel_while_queued(make_server: Callable[..., LiveServer],
                                                                    make_comfy: Callable[..., ComfyServer]) -> None:
    comfy = make_comfy()
    srv = make_server(comfyui_urls=comfy.url, comfyui_credits_per_second=1.0, comfyui_max_seconds=120)
    account, key = srv.account(credits=10000)
    with srv.client(key) as c:
        wait_for_pool(c)
        ids = []
        for i in range(3):
            wid = publish(c, slow_graph(f"nl_q{i}_{uuid.uuid4().hex[:6]}", sigma=5.0 + i), name=f"q{i}")
            ids.append(c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}}).json()["executionId"])
        deadline = time.monotonic() + 60
        while True:  # one runs on ComfyUI, one waits in ComfyUI's queue, the third waits with us
            q = queue_of(comfy)
            if q["queue_running"] and q["queue_pending"]:
                break
            assert time.monotonic() < deadline, q
            time.sleep(0.05)
        for _ in range(10):  # never more than two of ours on the server
            q = queue_of(comfy)
            assert len(q["queue_running"]) + len(q["queue_pending"]) <= 2
            time.sleep(0.05)
        queued_prompt = q["queue_pending"][0][1]
        # which execution's prompt is queued on ComfyUI: the one whose memory names it
        queued = next(i for i in ids if prompt_of(srv, i) == queued_prompt)
        assert c.post(f"/api/v1/workflows/executions/{queued}/cancel").status_code == 202
        body = wait_status(c, queued, {"CANCELLED", "COMPLETED", "FAILED"}, timeout=30)
        assert body["status"] == "CANCELLED"
        deadline = time.monotonic() + 30
        while queued_prompt in str(queue_of(comfy)["queue_pending"]) or queued_prompt in str(
                queue_of(comfy)["queue_running"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # never started on ComfyUI: nothing charged
        assert not [e for e in srv.services.billing.ledger(account, execution_id=queued) if e["kind"] == "charge"]
        for other in ids:
            if other != queued:
                assert wait_status(c, other, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=180)["status"] == \
                    "COMPLETED"


def test_animated_webp_and_video_outputs(make_server: Callable[..., LiveServer], comfy: ComfyServer) -> None:
    srv = make_server(comfyui_urls=comfy.url)
    _account, key = srv.account()
    with srv.client(key) as c:
        wait_for_pool(c)
        tag = uuid.uuid4().hex[:8]
        graph: dict[str, Any] = {"nodes": [
            {"id": "red", "type": "comfyui.EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 2,
                                                                   "color": 0xFF0000}},
            {"id": "blue", "type": "comfyui.EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 2,
                                                                    "color": 0x0000FF}},
            {"id": "frames", "type": "comfyui.ImageBatch", "inputs": {"image1": link("red", "image"),
                                                                      "image2": link("blue", "image")}},
            {"id": "webp", "type": "comfyui.SaveAnimatedWEBP", "inputs": {
                "images": link("frames", "image"), "filename_prefix": f"nl_anim_{tag}", "fps": 4.0, "lossless": True,
                "quality": 80, "method": "default"}},
            {"id": "anim", "type": "output.image", "inputs": {"image": link("webp", "image")},
             "params": {"name": "animation"}},
        ]}
        has_video = c.get("/api/v1/nodes/comfyui.CreateVideo").status_code == 200
        assert has_video, "the fixture's ComfyUI (with PyAV) has CreateVideo and SaveVideo"
        if has_video:
            graph["nodes"] += [
                {"id": "mk", "type": "comfyui.CreateVideo", "inputs": {"images": link("frames", "image"), "fps": 4.0}},
                {"id": "sv", "type": "comfyui.SaveVideo", "inputs": {"video": link("mk", "video"),
                                                                     "filename_prefix": f"nl_vid_{tag}",
                                                                     "format": "auto", "codec": "auto"}},
                {"id": "vid", "type": "output.video", "inputs": {"video": link("sv", "video")},
                 "params": {"name": "video"}},
            ]
        body = wait_status(c, c.post(f"/api/v1/workflows/{publish(c, graph)}/execute",
                                     json={"inputs": {}}).json()["executionId"], {"COMPLETED", "FAILED"}, timeout=120)
        assert body["status"] == "COMPLETED", body
        anim = body["outputs"]["animation"]
        assert anim["contentType"] == "image/webp"
        data = httpx.get(anim["url"]).content if anim["url"].startswith("http") else c.get(anim["url"]).content
        animation = Image.open(io.BytesIO(data))
        assert animation.format == "WEBP" and animation.n_frames >= 2  # (equal neighbours are merged into one)
        if has_video:
            video = body["outputs"]["video"]
            assert video["contentType"].startswith("video/")
            data = httpx.get(video["url"]).content if video["url"].startswith("http") else c.get(video["url"]).content
            assert b"ftyp" in data[:16]
