"""Running `comfyui.*` nodes on a real ComfyUI (API.md "ComfyUI workflows", Running): a graph that mixes native and
ComfyUI nodes, per-node events with ComfyUI's progress, batches as `list<image>`, text out of PreviewAny, errors
mapped to our nodes, refusals (400) to our paths, credits by run-second, cancel, and the tenancy rules."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.support.comfyui import ComfyServer, wait_for_pool
from tests.support.server import LiveServer, publish, run_to_end, wait_status

from nodeloom.storage.models_comfyui import ComfyServer as ComfyServerRow

pytestmark = pytest.mark.slow


def link(src: str, out: str) -> dict[str, str]:
    return {"from": src, "output": out}


@pytest.fixture
def pool(make_server: Callable[..., LiveServer], comfy: ComfyServer) -> Iterator[tuple[LiveServer, httpx.Client]]:
    srv = make_server(comfyui_urls=comfy.url, comfyui_credits_per_second=1.0, comfyui_max_seconds=60)
    _account, key = srv.account(credits=1000)
    with srv.client(key) as c:
        wait_for_pool(c)
        yield srv, c


def mixed_graph() -> dict[str, Any]:
    """The issue's graph: native gradient → ComfyUI blur → ComfyUI invert → native text overlay → output."""
    return {"nodes": [
        {"id": "grad", "type": "image.gradient", "params": {"width": 48, "height": 32, "start": "#000000",
                                                             "end": "#ffffff", "direction": "horizontal"}},
        {"id": "blur", "type": "comfyui.ImageBlur", "inputs": {"image": link("grad", "image"), "blur_radius": 1,
                                                               "sigma": 1.0}},
        {"id": "inv", "type": "comfyui.ImageInvert", "inputs": {"image": link("blur", "image")}},
        {"id": "label", "type": "image.text_overlay", "inputs": {"image": link("inv", "image"), "text": "hi"},
         "params": {"size": 8}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("label", "image")}, "params": {"name": "image"}},
    ]}


def events_of(c: httpx.Client, execution_id: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    with c.stream("GET", f"/api/v1/workflows/executions/{execution_id}/events") as r:
        kind = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind:
                out.append((kind, json.loads(line.split(":", 1)[1])))
    return out


def fetch_image(c: httpx.Client, value: Any) -> Image.Image:
    if isinstance(value, list):
        value = value[0]
    r = httpx.get(value["url"]) if value["url"].startswith("http") else c.get(value["url"])
    assert r.status_code == 200
    return Image.open(io.BytesIO(r.content))


def test_a_mixed_graph_runs_on_comfyui_with_events_per_node(pool: tuple[LiveServer, httpx.Client]) -> None:
    srv, c = pool
    wid = publish(c, mixed_graph())
    body = run_to_end(c, wid)
    assert body["status"] == "COMPLETED", body
    image = fetch_image(c, body["outputs"]["image"])
    assert image.size == (48, 32)
    # inverted: the gradient ran black → white left to right, so the result runs white → black
    left, right = image.convert("L").getpixel((1, 2)), image.convert("L").getpixel((46, 2))
    assert isinstance(left, int) and isinstance(right, int) and left > right + 100
    events = events_of(c, body["executionId"])
    started = [d["nodeId"] for k, d in events if k == "node.started"]
    assert {"grad", "blur", "inv", "label"} <= set(started)
    assert started.index("grad") < started.index("blur") < started.index("inv") < started.index("label")
    completed = {d["nodeId"]: d for k, d in events if k == "node.completed"}
    assert {"grad", "blur", "inv", "label", "out"} <= set(completed)
    segment = completed["blur"]  # the segment's first node carries its run
    assert segment["segment"] == ["blur", "inv"] and segment["runSeconds"] >= 0
    # credits by run-second: one ledger line for the segment, ⌈seconds⌉ × 1 credit
    ledger = srv.services.billing.ledger(_account_of(srv, c), execution_id=body["executionId"])
    charges = [e for e in ledger if e["kind"] == "charge"]
    assert [e["nodeId"] for e in charges] == ["blur"]
    assert charges[0]["amount"] >= 1 and charges[0]["amount"] == float(int(charges[0]["amount"]))
    assert body["nodes"]["blur"]["status"] == "COMPLETED" and body["nodes"]["inv"]["status"] == "COMPLETED"


def _account_of(srv: LiveServer, c: httpx.Client) -> str:
    return str(c.get("/api/v1/account").json()["id"])


def test_estimate_holds_a_segment_as_one_line(pool: tuple[LiveServer, httpx.Client]) -> None:
    _srv, c = pool
    wid = publish(c, mixed_graph())
    r = c.post(f"/api/v1/workflows/{wid}/estimate", json={"inputs": {}})
    assert r.status_code == 200, r.text
    lines = [b for b in r.json()["breakdown"] if b["nodeType"] == "comfyui"]
    assert lines == [{"nodeId": "blur", "nodeType": "comfyui", "credits": 60.0, "nodes": ["blur", "inv"]}]
    spec = c.get("/api/v1/nodes/comfyui.ImageBlur").json()
    assert spec["credits"] == {"per": "runSecond", "amount": 1.0, "maxSeconds": 60.0}


def test_a_batch_comes_back_as_a_list_and_values_through_preview_any(pool: tuple[LiveServer, httpx.Client]) -> None:
    _srv, c = pool
    prefix = f"nl_batch_{uuid.uuid4().hex[:8]}"
    graph = {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "text", "default": "a cat"}},
        {"id": "empty", "type": "comfyui.EmptyImage", "inputs": {"width": 16, "height": 8, "batch_size": 3,
                                                                 "color": 0}},
        {"id": "inv", "type": "comfyui.ImageInvert", "inputs": {"image": link("empty", "image")}},
        {"id": "save", "type": "comfyui.SaveImage", "inputs": {"images": link("inv", "image"),
                                                               "filename_prefix": prefix}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("save", "images")}, "params": {"name": "image"}},
        {"id": "n", "type": "comfyui.PrimitiveInt", "inputs": {"value": 41}},
        {"id": "num", "type": "output.json", "inputs": {"value": link("n", "int")}, "params": {"name": "n"}},
        {"id": "re", "type": "comfyui.RegexReplace", "inputs": {"string": link("prompt", "text"),
                                                                "regex_pattern": "cat", "replace": "fox"}},
        {"id": "txt", "type": "output.text", "inputs": {"text": link("re", "string")}, "params": {"name": "text"}},
    ]}
    body = run_to_end(c, publish(c, graph), {"text": "a cat, a cat"})
    assert body["status"] == "COMPLETED", body
    images = body["outputs"]["image"]
    assert isinstance(images, list) and len(images) == 3  # SaveImage's batch → list<image>, one per image
    assert fetch_image(c, images[2]).convert("RGB").getpixel((0, 0)) == (255, 255, 255)
    assert body["outputs"]["n"] == 41  # INT → integer, through PreviewAny
    assert body["outputs"]["text"] == "a fox, a fox"  # a native text in, STRING out


def test_a_comfyui_failure_names_our_node_and_comfyuis_account(pool: tuple[LiveServer, httpx.Client]) -> None:
    srv, c = pool
    graph = {"nodes": [
        {"id": "s", "type": "comfyui.PrimitiveString", "inputs": {"value": "abc"}},
        {"id": "re", "type": "comfyui.RegexReplace", "inputs": {"string": link("s", "string"),
                                                                "regex_pattern": "(", "replace": "x"}},
        {"id": "out", "type": "output.text", "inputs": {"text": link("re", "string")}, "params": {"name": "t"}},
    ]}
    body = run_to_end(c, publish(c, graph))
    assert body["status"] == "FAILED", body
    error = body["error"]
    assert error["code"] == "comfyui_execution_error" and error["nodeId"] == "re"
    assert error["comfyui"]["nodeId"] == "re" and error["comfyui"]["classType"] == "RegexReplace"
    assert error["comfyui"]["exceptionType"].endswith("error") and error["comfyui"]["exceptionMessage"]
    assert body["nodes"]["re"]["status"] == "FAILED"
    # a failed segment is charged for the seconds it ran: ⌈0.x⌉ = 1 second
    charges = [e for e in srv.services.billing.ledger(_account_of(srv, c), execution_id=body["executionId"])
               if e["kind"] == "charge"]
    assert [(e["nodeId"], e["amount"]) for e in charges] == [("s", 1.0)]


def test_cancel_while_running_ends_at_once_and_leaves_the_server(pool: tuple[LiveServer, httpx.Client],
                                                                  comfy: ComfyServer) -> None:
    srv, c = pool
    # a slow CPU prompt: a big blur (seconds on ComfyUI's CPU)
    graph = {"nodes": [
        {"id": "big", "type": "comfyui.EmptyImage", "inputs": {"width": 2048, "height": 2048, "batch_size": 8,
                                                               "color": 0}},
        {"id": "blur", "type": "comfyui.ImageBlur", "inputs": {"image": link("big", "image"), "blur_radius": 31,
                                                               "sigma": 10.0}},
        {"id": "blur2", "type": "comfyui.ImageBlur", "inputs": {"image": link("blur", "image"), "blur_radius": 31,
                                                                "sigma": 10.0}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("blur2", "image")}, "params": {"name": "i"}},
    ]}
    wid = publish(c, graph)
    eid = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}}).json()["executionId"]
    deadline = time.monotonic() + 60
    while True:  # until ComfyUI has begun executing it
        body = c.get(f"/api/v1/workflows/executions/{eid}/poll").json()
        if body["nodes"]["big"]["status"] in ("RUNNING", "COMPLETED") or body["nodes"]["blur"]["status"] == "RUNNING":
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    assert c.post(f"/api/v1/workflows/executions/{eid}/cancel").status_code == 202
    body = wait_status(c, eid, {"CANCELLED", "COMPLETED", "FAILED"}, timeout=30)
    assert body["status"] == "CANCELLED", body
    # the prompt leaves the server: nothing of ours runs or waits there
    with comfy.client() as cc:
        deadline = time.monotonic() + 60
        while True:
            q = cc.get("/queue").json()
            if not q["queue_running"] and not q["queue_pending"]:
                break
            assert time.monotonic() < deadline, q
            time.sleep(0.2)
    # a cancelled segment is charged for the seconds it ran (at least one), never more than its hold
    ledger = srv.services.billing.ledger(_account_of(srv, c), execution_id=eid)
    charges = [e for e in ledger if e["kind"] == "charge"]
    assert len(charges) == 1 and 1 <= charges[0]["amount"] <= 60


def test_a_literal_file_name_in_a_loader_is_refused(pool: tuple[LiveServer, httpx.Client]) -> None:
    _srv, c = pool
    graph = {"nodes": [
        {"id": "load", "type": "comfyui.LoadImage", "inputs": {"image": "someone_elses_upload.png"}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("load", "image")}, "params": {"name": "i"}},
    ]}
    r = c.post("/api/v1/workflows/validate", json={"graph": graph})
    body = r.json()
    assert body["valid"] is False
    assert any(e["path"] == "nodes[0].inputs.image" for e in body["errors"]), body


def test_caps_bound_sizes_and_batches(pool: tuple[LiveServer, httpx.Client], make_server: Callable[..., LiveServer],
                                      comfy: ComfyServer) -> None:
    _srv, c = pool
    graph = {"nodes": [
        {"id": "e", "type": "comfyui.EmptyImage", "inputs": {"width": 8192, "height": 64, "batch_size": 64,
                                                             "color": 0}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("e", "image")}, "params": {"name": "i"}},
    ]}
    body = c.post("/api/v1/workflows/validate", json={"graph": graph}).json()
    paths = {e["path"] for e in body["errors"]}
    assert {"nodes[0].inputs.width", "nodes[0].inputs.batch_size"} <= paths, body


def test_a_large_native_image_is_not_sent_to_comfyui(make_server: Callable[..., LiveServer],
                                                     comfy: ComfyServer) -> None:
    srv = make_server(comfyui_urls=comfy.url, comfyui_max_image_pixels=32 * 32)
    _account, key = srv.account()
    with srv.client(key) as c:
        wait_for_pool(c)
        graph = {"nodes": [
            {"id": "grad", "type": "image.gradient", "params": {"width": 64, "height": 64}},
            {"id": "inv", "type": "comfyui.ImageInvert", "inputs": {"image": link("grad", "image")}},
            {"id": "out", "type": "output.image", "inputs": {"image": link("inv", "image")}, "params": {"name": "i"}},
        ]}
        body = run_to_end(c, publish(c, graph))
        assert body["status"] == "FAILED" and body["error"]["code"] == "image_too_large", body


def test_the_allow_list_limits_the_node_types(make_server: Callable[..., LiveServer], comfy: ComfyServer) -> None:
    srv = make_server(comfyui_urls=comfy.url, comfyui_allowed_nodes="EmptyImage,ImageInvert,SaveImage")
    _account, key = srv.account()
    with srv.client(key) as c:
        wait_for_pool(c)
        types = {n["type"] for n in c.get("/api/v1/nodes").json()["data"] if n["type"].startswith("comfyui.")}
        assert types == {"comfyui.EmptyImage", "comfyui.ImageInvert", "comfyui.SaveImage"}
        graph = {"nodes": [{"id": "b", "type": "comfyui.ImageBlur", "inputs": {}}]}
        body = c.post("/api/v1/workflows/validate", json={"graph": graph}).json()
        assert body["valid"] is False and body["errors"][0]["path"] == "nodes[0].type"


def test_progress_carries_comfyuis_value_and_max(pool: tuple[LiveServer, httpx.Client]) -> None:
    _srv, c = pool
    graph = {"nodes": [
        {"id": "e", "type": "comfyui.EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 3,
                                                             "color": int(uuid.uuid4().int % 0xFFFFFF)}},
        {"id": "ws", "type": "comfyui.SaveImageWebsocket", "inputs": {"images": link("e", "image")}},
    ]}
    body = run_to_end(c, publish(c, graph))
    assert body["status"] == "COMPLETED", body
    progress = [d for k, d in events_of(c, body["executionId"]) if k == "node.progress" and d["nodeId"] == "ws"]
    # ComfyUI's own steps, as it reports them (SaveImageWebsocket counts the images it sent: 0, 1, 2 of 3)
    assert {p["max"] for p in progress} == {3}
    values = [p["value"] for p in progress]
    assert len(values) >= 2 and values == sorted(values)
    assert all(p["progress"] == p["value"] / 3 for p in progress)


def test_a_published_version_runs_against_its_snapshot(pool: tuple[LiveServer, httpx.Client]) -> None:
    srv, c = pool
    wid = publish(c, mixed_graph())
    version = c.get(f"/api/v1/workflows/{wid}/versions/1").json()
    assert set(version["graph"]["comfyui"]["objectInfo"]) == {"ImageBlur", "ImageInvert"}
    # the pool's /object_info changes (ImageBlur's sigma now stops at 0.5): drafts are checked against the new one,
    # the published version against its snapshot
    with srv.services.db.write() as s:
        row = s.get(ComfyServerRow, srv.services.comfyui.urls[0])
        info = json.loads(json.dumps(row.object_info))
        info["ImageBlur"]["input"]["required"]["sigma"][1]["max"] = 0.5
        row.object_info = info
        row.object_info_at = row.object_info_at + timedelta(seconds=1)
    time.sleep(5.5)  # the catalogue reads the pool's state at most every 5 s
    r = c.post("/api/v1/workflows/validate", json={"graph": mixed_graph()})
    assert r.json()["valid"] is False and r.json()["errors"][0]["path"] == "nodes[1].inputs.sigma"
    assert run_to_end(c, wid)["status"] == "COMPLETED"
    # a draft cannot bring a snapshot of its own (it could declare any inputs): it is dropped
    forged = {**mixed_graph(), "comfyui": {"objectInfo": version["graph"]["comfyui"]["objectInfo"]}}
    r = c.post("/api/v1/workflows", json={"name": "forged", "graph": forged})
    assert r.status_code == 422


def test_a_segment_waiting_on_comfyui_holds_no_worker_slot(make_server: Callable[..., LiveServer],
                                                           make_comfy: Callable[..., ComfyServer]) -> None:
    comfy = make_comfy()
    srv = make_server(comfyui_urls=comfy.url, worker_concurrency=1)
    _a, key = srv.account()
    _b, other_key = srv.account(name="other")
    with srv.client(key) as c, srv.client(other_key) as other:
        wait_for_pool(c)
        slow = {"nodes": [
            {"id": "big", "type": "comfyui.EmptyImage", "inputs": {"width": 2048, "height": 2048, "batch_size": 6,
                                                                   "color": 7}},
            {"id": "blur", "type": "comfyui.ImageBlur", "inputs": {"image": link("big", "image"), "blur_radius": 31,
                                                                   "sigma": 9.0}},
            {"id": "out", "type": "output.image", "inputs": {"image": link("blur", "image")}, "params": {"name": "i"}},
        ]}
        eid = c.post(f"/api/v1/workflows/{publish(c, slow)}/execute", json={"inputs": {}}).json()["executionId"]
        wait_status(c, eid, {"RUNNING"})
        quick = {"nodes": [
            {"id": "t", "type": "input.text", "params": {"name": "t", "default": "x"}},
            {"id": "o", "type": "output.text", "inputs": {"text": link("t", "text")}, "params": {"name": "t"}},
        ]}
        done = run_to_end(other, publish(other, quick))
        assert done["status"] == "COMPLETED"
        # the only worker slot was not held: the slow segment was still running on ComfyUI meanwhile
        assert c.get(f"/api/v1/workflows/executions/{eid}/poll").json()["status"] == "RUNNING"
        assert wait_status(c, eid, {"COMPLETED", "FAILED"}, timeout=180)["status"] == "COMPLETED"


def test_a_segment_past_the_time_limit_is_interrupted_and_fails_node_timeout(
        make_server: Callable[..., LiveServer], make_comfy: Callable[..., ComfyServer]) -> None:
    comfy = make_comfy()
    srv = make_server(comfyui_urls=comfy.url, comfyui_max_seconds=1, comfyui_credits_per_second=1.0)
    account, key = srv.account()
    with srv.client(key) as c:
        wait_for_pool(c)
        slow = {"nodes": [
            {"id": "big", "type": "comfyui.EmptyImage", "inputs": {"width": 2048, "height": 2048, "batch_size": 8,
                                                                   "color": 3}},
            {"id": "blur", "type": "comfyui.ImageBlur", "inputs": {"image": link("big", "image"), "blur_radius": 31,
                                                                   "sigma": 9.0}},
            {"id": "blur2", "type": "comfyui.ImageBlur", "inputs": {"image": link("blur", "image"),
                                                                    "blur_radius": 31, "sigma": 9.0}},
            {"id": "out", "type": "output.image", "inputs": {"image": link("blur2", "image")}, "params": {"name": "i"}},
        ]}
        body = run_to_end(c, publish(c, slow))
        assert body["status"] == "FAILED" and body["error"]["code"] == "node_timeout", body
        with comfy.client() as cc:  # interrupted: it leaves the server
            deadline = time.monotonic() + 60
            while (q := cc.get("/queue").json())["queue_running"] or q["queue_pending"]:
                assert time.monotonic() < deadline, q
                time.sleep(0.2)
        # charged the limit, no more: ⌈1 s⌉ × 1 credit
        charges = [e["amount"] for e in srv.services.billing.ledger(account, execution_id=body["executionId"])
                   if e["kind"] == "charge"]
        assert charges == [1.0]


def test_the_catalogue_never_lists_uploaded_file_names(pool: tuple[LiveServer, httpx.Client],
                                                       comfy: ComfyServer) -> None:
    _srv, c = pool
    # someone's upload sits in the server's input folder
    (comfy.input_dir / "someone_elses_photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    spec = c.get("/api/v1/nodes/comfyui.LoadImage").json()
    assert "someone_elses_photo" not in json.dumps(spec)
    (image,) = [p for p in spec["inputs"] if p["name"] == "image"]
    assert image["type"] == "image" and "enum" not in image["constraints"] and image["constraints"]["linkOnly"]
    assert "someone_elses_photo" not in c.get("/api/v1/nodes").text
