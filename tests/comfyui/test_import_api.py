"""`POST /api/v1/workflows/import/comfyui` and its re-import, through a real server whose pool is a real ComfyUI:
the three shapes (API JSON, UI JSON, a PNG ComfyUI saved) become a draft of `comfyui.*` nodes with `importNotes`,
which validates and publishes like any other workflow; the catalogue lists the pool's node types; without a pool
that ever answered, 503 `comfyui_unavailable`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.comfyui.test_import_formats import API, saved_png, ui_workflow
from tests.support.comfyui import ComfyServer
from tests.support.server import LiveServer, free_port

pytestmark = pytest.mark.slow


def pool_server(make_server: Callable[..., LiveServer], urls: str) -> tuple[LiveServer, httpx.Client]:
    srv = make_server(comfyui_urls=urls)
    _account, key = srv.account()
    return srv, srv.client(key)


def wait_for_pool(client: httpx.Client) -> None:
    """The embedded worker checks the pool when it starts: wait until its node types are known."""
    deadline = time.monotonic() + 120
    while not client.get("/api/v1/nodes/comfyui.ImageInvert").json().get("available"):
        assert time.monotonic() < deadline, "the pool's node types never appeared"
        time.sleep(0.2)


def prompt() -> dict[str, Any]:
    p = json.loads(json.dumps(API))
    p["3"]["inputs"]["filename_prefix"] = f"nodeloom_import_{uuid.uuid4().hex[:8]}"
    return p


def test_each_shape_imports_as_a_draft_that_validates_and_publishes(make_server: Callable[..., LiveServer],
                                                                      comfy: ComfyServer) -> None:
    _srv, c = pool_server(make_server, comfy.url)
    with c:
        wait_for_pool(c)
        made = {}
        r = c.post("/api/v1/workflows/import/comfyui", json={"name": "api", "workflow": prompt()})
        assert r.status_code == 201, r.text
        made["api"] = r.json()
        r = c.post("/api/v1/workflows/import/comfyui", json={"name": "ui", "workflow": ui_workflow()})
        assert r.status_code == 201, r.text
        made["ui"] = r.json()
        png = saved_png(comfy, prompt(), ui_workflow())
        r = c.post("/api/v1/workflows/import/comfyui", data={"name": "png"},
                   files={"file": ("saved.png", png, "image/png")})
        assert r.status_code == 201, r.text
        made["png"] = r.json()
        for shape, wf in made.items():
            types = {n["type"] for n in wf["graph"]["nodes"]}
            assert {"comfyui.EmptyImage", "comfyui.ImageInvert", "comfyui.SaveImage"} <= types, shape
            assert wf["importNotes"] and all(isinstance(n, str) for n in wf["importNotes"]), shape
            assert c.post("/api/v1/workflows/validate", json={"graph": wf["graph"]}).json()["valid"] is True
            assert c.post(f"/api/v1/workflows/{wf['id']}/publish").status_code == 201, shape

        # the catalogue lists the pool's types (not its paid partner nodes) in their ComfyUI category
        catalogue = {n["type"]: n for n in c.get("/api/v1/nodes").json()["data"]}
        assert catalogue["comfyui.ImageInvert"]["available"] is True
        assert catalogue["comfyui.ImageInvert"]["category"].startswith("comfyui/")
        assert not [t for t in catalogue if t.startswith("comfyui.") and "Api" in t and t.endswith("Node")]


def test_reimport_keeps_the_workflow_and_bad_exports_are_refused(make_server: Callable[..., LiveServer],
                                                                 comfy: ComfyServer) -> None:
    _srv, c = pool_server(make_server, comfy.url)
    with c:
        wait_for_pool(c)
        first = c.post("/api/v1/workflows/import/comfyui", json={"name": "w", "workflow": prompt()}).json()
        changed = prompt()
        changed["1"]["inputs"]["width"] = 32
        r = c.put(f"/api/v1/workflows/{first['id']}/import/comfyui", json={"workflow": changed})
        assert r.status_code == 200, r.text
        again = r.json()
        assert again["id"] == first["id"] and again["importNotes"]
        widths = [n["inputs"].get("width") for n in again["graph"]["nodes"] if n["type"] == "comfyui.EmptyImage"]
        assert widths == [32]
        assert c.put("/api/v1/workflows/wf_nope/import/comfyui", json={"workflow": prompt()}).status_code == 404

        unknown = prompt()
        unknown["2"]["class_type"] = "NoSuchNode"
        r = c.post("/api/v1/workflows/import/comfyui", json={"name": "x", "workflow": unknown})
        assert r.status_code == 422 and r.json()["error"]["details"]
        ui = ui_workflow()
        ui["nodes"][1]["type"] = "NoSuchNode"
        r = c.post("/api/v1/workflows/import/comfyui", json={"name": "x", "workflow": ui})
        assert r.status_code == 422 and r.json()["error"]["code"] == "comfyui_ui_unsupported"
        assert "NoSuchNode" in r.json()["error"]["message"]
        r = c.post("/api/v1/workflows/import/comfyui", json={"name": "x", "workflow": {"hello": "world"}})
        assert r.status_code == 422
        r = c.post("/api/v1/workflows/import/comfyui", data={"name": "x"},
                   files={"file": ("x.png", b"not a png", "image/png")})
        assert r.status_code == 422


def test_a_body_that_is_not_json_is_400_like_everywhere(make_server: Callable[..., LiveServer]) -> None:
    _srv, c = pool_server(make_server, "")
    with c:
        for body in (b"not json", b"[" * 100_000 + b"]" * 100_000):
            r = c.post("/api/v1/workflows/import/comfyui", content=body,
                       headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json", r.text


def test_without_a_pool_that_ever_answered_imports_are_503(make_server: Callable[..., LiveServer]) -> None:
    for urls in ("", f"http://127.0.0.1:{free_port()}"):
        _srv, c = pool_server(make_server, urls)
        with c:
            r = c.post("/api/v1/workflows/import/comfyui", json={"name": "w", "workflow": prompt()})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "comfyui_unavailable"
