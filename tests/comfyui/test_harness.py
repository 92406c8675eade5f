"""The harness against a real ComfyUI, with plain httpx and no product code.

Also pins the protocol facts the ComfyUI integration relies on: a client-chosen prompt_id is kept as given, and
ComfyUI does not deduplicate it — posting the same id twice queues and runs the prompt twice (history keeps only
the last run). Crash recovery must therefore look in /queue and /history before it submits again.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.support.comfyui import ComfyServer

pytestmark = pytest.mark.slow


def invert_graph(prefix: str, color: int = 0, size: int = 64) -> dict[str, Any]:
    """EmptyImage(size×size, color) → ImageInvert → SaveImage(prefix), in ComfyUI's API format."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def submit(client: httpx.Client, graph: dict[str, Any], prompt_id: str, client_id: str) -> dict[str, Any]:
    r = client.post("/prompt", json={"prompt": graph, "prompt_id": prompt_id, "client_id": client_id})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["prompt_id"] == prompt_id  # kept as given
    assert body["node_errors"] == {}
    return body


def in_queue(client: httpx.Client, prompt_id: str) -> bool:
    q = client.get("/queue").json()
    return any(item[1] == prompt_id for item in q["queue_running"] + q["queue_pending"])


def wait_done(client: httpx.Client, prompt_id: str, timeout: float = 60) -> dict[str, Any]:
    """The /history entry of prompt_id once it is completed and no run of that id is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        # /queue before /history: ComfyUI moves a run from the queue to the history atomically, so an id seen
        # out of the queue has its last run's entry in the history (the other order can read an older run's)
        queued = in_queue(client, prompt_id)
        entry: dict[str, Any] | None = client.get(f"/history/{prompt_id}").json().get(prompt_id)
        if not queued and entry is not None and entry["status"]["completed"]:
            return entry
        if entry is not None and entry["status"]["status_str"] == "error":
            raise AssertionError(f"prompt {prompt_id} failed: {entry['status']}")
        if time.monotonic() > deadline:
            raise AssertionError(f"prompt {prompt_id} not done after {timeout} s: {entry}")
        time.sleep(0.1)


def fetch_png(client: httpx.Client, image: dict[str, str]) -> Image.Image:
    r = client.get("/view", params={"filename": image["filename"], "subfolder": image["subfolder"],
                                    "type": image["type"]})
    assert r.status_code == 200, r.text
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(r.content))
    img.load()
    return img


def saved(server: ComfyServer, prefix: str) -> list[str]:
    return sorted(p.name for p in server.output_dir.rglob(f"{prefix}_*.png"))


def new_id() -> str:
    return str(uuid.uuid4())  # newer ComfyUI versions accept only a lowercase UUID


def test_invert_roundtrip(comfy: ComfyServer) -> None:
    prompt_id, prefix = new_id(), f"harness-{uuid.uuid4().hex[:8]}"
    with comfy.client() as c:
        submit(c, invert_graph(prefix), prompt_id, client_id=new_id())
        entry = wait_done(c, prompt_id)
        assert entry["status"]["status_str"] == "success"
        [image] = entry["outputs"]["3"]["images"]
        assert image["type"] == "output" and image["filename"].startswith(prefix)
        img = fetch_png(c, image)
    assert img.format == "PNG" and img.size == (64, 64)
    # EmptyImage's default color 0 is black; inverted, every pixel is white
    assert img.convert("RGB").getextrema() == ((255, 255), (255, 255), (255, 255))
    assert saved(comfy, prefix) == [image["filename"]]


def test_same_prompt_id_runs_twice(comfy: ComfyServer) -> None:
    """Not deduplicated: both posts are queued and both run; /history keeps one entry, the last run's."""
    prompt_id, prefix, client_id = new_id(), f"dup-{uuid.uuid4().hex[:8]}", new_id()
    with comfy.client() as c:
        first = submit(c, invert_graph(prefix, color=0x000000), prompt_id, client_id)
        second = submit(c, invert_graph(prefix, color=0x102030), prompt_id, client_id)
        assert second["number"] > first["number"]
        entry = wait_done(c, prompt_id)
        assert entry["prompt"][0] == second["number"]  # the second run's entry replaced the first's
        [image] = entry["outputs"]["3"]["images"]
        assert fetch_png(c, image).convert("RGB").getpixel((0, 0)) == (0xEF, 0xDF, 0xCF)
    files = saved(comfy, prefix)
    assert len(files) == 2, files  # the prompt ran twice: two files
    pixels = {Image.open(comfy.output_dir / f).convert("RGB").getpixel((0, 0)) for f in files}
    assert pixels == {(255, 255, 255), (0xEF, 0xDF, 0xCF)}


def test_identical_resubmission_is_served_from_cache(comfy: ComfyServer) -> None:
    """The same id with the same graph also runs twice, but a live server's cache makes the rerun a no-op."""
    prompt_id, prefix, client_id = new_id(), f"same-{uuid.uuid4().hex[:8]}", new_id()
    with comfy.client() as c:
        submit(c, invert_graph(prefix), prompt_id, client_id)
        second = submit(c, invert_graph(prefix), prompt_id, client_id)
        entry = wait_done(c, prompt_id)
        assert entry["prompt"][0] == second["number"]
        events = dict(entry["status"]["messages"])
        assert sorted(events["execution_cached"]["nodes"]) == ["1", "2", "3"]
        assert [img["filename"] for img in entry["outputs"]["3"]["images"]] == saved(comfy, prefix)
    assert len(saved(comfy, prefix)) == 1


def test_own_server_kill_restart_and_no_cache(make_comfy: Callable[..., ComfyServer]) -> None:
    """A server of the test's own: without its cache an identical resubmission writes twice; kill and restart
    (same url, folders kept) lose the in-memory history."""
    server = make_comfy(extra_args=["--cache-none"])
    prompt_id, prefix = new_id(), "own"
    with server.client() as c:
        submit(c, invert_graph(prefix), prompt_id, client_id=new_id())
        submit(c, invert_graph(prefix), prompt_id, client_id=new_id())
        wait_done(c, prompt_id)
    assert len(saved(server, prefix)) == 2

    pid, url = server.pid, server.url
    server.kill()
    assert not server.running
    with pytest.raises(httpx.ConnectError), server.client(timeout=2) as c:
        c.get("/system_stats")

    server.restart()
    assert server.running and server.pid != pid and server.url == url
    with server.client() as c:
        assert c.get(f"/history/{prompt_id}").json() == {}
    assert len(saved(server, prefix)) == 2  # the folders outlive the process


def test_object_info(object_info: dict[str, Any]) -> None:
    assert "ImageInvert" in object_info
    invert = object_info["ImageInvert"]
    assert invert["input"]["required"]["image"][0] == "IMAGE"
    assert invert["output"] == ["IMAGE"]
    assert any("api_node" in cls for cls in object_info.values())
    assert any(cls.get("api_node") for cls in object_info.values())  # paid partner nodes are flagged
