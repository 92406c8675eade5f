"""The three shapes a ComfyUI workflow is imported in: API format, UI (save) format, and a PNG that ComfyUI saved.

The PNG case runs a real ComfyUI `SaveImage` (the `comfy` fixture) and imports the file it wrote; the rest is pure.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin
from tests.support.comfyui import ComfyServer

from nodeloom.errors import ValidationFailed
from nodeloom.services.comfyui import (
    detect_shape,
    import_workflow,
    parse_png,
    parse_upload,
    parse_workflow,
)

DATA = Path(__file__).parent / "data"

API = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 16711680},
          "_meta": {"title": "EmptyImage"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "Invert Image"}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "nodeloom_formats"},
          "_meta": {"title": "Save Image"}},
}


def ui_workflow() -> dict[str, Any]:
    """The same graph in the UI (save) format."""
    return {
        "last_node_id": 3, "last_link_id": 2, "version": 0.4, "groups": [], "config": {}, "extra": {},
        "nodes": [
            {"id": 1, "type": "EmptyImage", "mode": 0, "inputs": [],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}], "properties": {},
             "widgets_values": [64, 48, 1, 16711680]},
            {"id": 2, "type": "ImageInvert", "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}], "properties": {}},
            {"id": 3, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 2}],
             "outputs": [], "properties": {}, "widgets_values": ["nodeloom_formats"], "title": "Result"},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    }


def png(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def core_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads((DATA / "object_info_core.json").read_text())
    return info


def refused(call: Any, *args: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 422
    details: list[dict[str, str]] = caught.value.extra["details"]
    assert details and details[0]["message"]
    return details[0]


# --- telling the shapes apart -----------------------------------------------------------------------------------------


def test_the_api_format_is_told_by_its_nodes() -> None:
    parsed = parse_workflow(API)
    assert (parsed.shape, parsed.source, parsed.api, parsed.ui) == ("api", "json", API, None)
    assert detect_shape(API) == "api"
    assert parse_workflow(json.dumps(API)).api == API  # a JSON string is decoded first


def test_the_ui_format_is_told_by_nodes_and_links() -> None:
    workflow = ui_workflow()
    parsed = parse_workflow(workflow)
    assert (parsed.shape, parsed.api, parsed.ui) == ("ui", None, workflow)
    assert detect_shape({"nodes": [], "links": []}) == "ui"
    # links as objects (the schema's version 1) are accepted too
    assert parse_workflow({"nodes": [], "links": [{"id": 1, "origin_id": 1, "origin_slot": 0, "target_id": 2,
                                                   "target_slot": 0, "type": "IMAGE"}]}).shape == "ui"


def test_an_uploaded_file_is_a_png_or_json_in_either_shape() -> None:
    assert parse_upload(data=json.dumps(API).encode()).shape == "api"
    assert parse_upload(data=b"\xef\xbb\xbf" + json.dumps(ui_workflow()).encode()).shape == "ui"
    assert parse_upload(data=png(prompt=json.dumps(API))).source == "png"
    assert parse_upload(API).shape == "api"


@pytest.mark.parametrize("value,path,message", [
    ([1, 2], "workflow", "a ComfyUI workflow is a JSON object"),
    ({}, "workflow", "the workflow is empty"),
    ({"name": "x"}, "workflow", "entry 'name' is not a ComfyUI node"),
    ({"3": {"inputs": {}}}, "workflow", "entry '3' is not a ComfyUI node"),
    ({"3": {"class_type": "KSampler", "inputs": []}}, "workflow", "inputs must be an object"),
    ({"nodes": {}, "links": []}, "workflow", "'nodes' must be an array"),
    ("{not json", "workflow", "not JSON"),
    ({"3": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0]}}}, "workflow.3.inputs.samples",
     "links to node '9', which is not in the workflow"),
    ({"3": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0]}}}, "workflow.3.inputs.samples",
     "cannot link to itself"),
    ({"3": {"class_type": "X", "inputs": {"list": [1, 2, 3]}}}, "workflow.3.inputs.list", "__value__"),
    ({"nodes": [{"id": 1}], "links": []}, "workflow.nodes[0]", "an id and a type"),
    ({"nodes": [], "links": [[1, 2]]}, "workflow.links[0]", "a link is"),
])
def test_anything_else_is_refused_with_a_path(value: Any, path: str, message: str) -> None:
    detail = refused(parse_workflow, value)
    assert detail["path"] == path
    assert message in detail["message"]


def test_uploads_that_are_not_a_comfyui_png_are_refused() -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    assert "not a PNG image or a JSON workflow" in refused(parse_upload, data=jpeg.getvalue())["message"]
    assert "not a PNG image" in refused(parse_png, jpeg.getvalue())["message"]
    detail = refused(parse_png, png())
    assert detail == {"path": "file", "message": detail["message"]}
    assert "carries no ComfyUI workflow" in detail["message"]
    assert "not a readable PNG" in refused(parse_png, png(prompt=json.dumps(API))[:60])["message"]
    assert refused(parse_png, png(prompt="{oops"))["path"] == "file.prompt"
    assert refused(parse_png, png(prompt=json.dumps({"nodes": []})))["path"] == "file.prompt"
    assert refused(parse_png, png(workflow=json.dumps(API)))["path"] == "file.workflow"
    assert refused(parse_upload)["path"] == "workflow"


def test_a_png_prefers_the_prompt_and_keeps_the_editor_graph() -> None:
    both = parse_png(png(prompt=json.dumps(API), workflow=json.dumps(ui_workflow())))
    assert (both.shape, both.source, both.api, both.ui) == ("api", "png", API, ui_workflow())
    only_ui = parse_png(png(workflow=json.dumps(ui_workflow())))
    assert (only_ui.shape, only_ui.api, only_ui.ui) == ("ui", None, ui_workflow())
    damaged_ui = parse_png(png(prompt=json.dumps(API), workflow=json.dumps({"x": 1})))
    assert (damaged_ui.shape, damaged_ui.ui) == ("api", None)


def test_each_shape_imports_to_the_same_graph() -> None:
    info = core_info()
    from_api = import_workflow(parse_workflow(API), info)
    from_ui = import_workflow(parse_workflow(ui_workflow()), info)
    titled = {**API, "3": {**API["3"], "_meta": {"title": "Result"}}}
    from_png = import_workflow(parse_png(png(prompt=json.dumps(titled), workflow=json.dumps(ui_workflow()))), info)
    assert from_ui.prompt == titled
    assert [n["type"] for n in from_api.graph["nodes"]] == ["comfyui.EmptyImage", "comfyui.ImageInvert",
                                                             "comfyui.SaveImage", "output.image"]
    assert from_png.graph == from_ui.graph
    assert from_png.prompt == from_ui.prompt
    # the editor graph names the output after the title the author gave the save node
    assert [(o.name, o.type) for o in from_ui.outputs] == [("result", "list<image>")]
    assert [(o.name, o.type) for o in from_api.outputs] == [("image", "list<image>")]


# --- a PNG that a real ComfyUI saved ----------------------------------------------------------------------------------


def saved_png(comfy: ComfyServer, prompt: dict[str, Any], workflow: dict[str, Any]) -> bytes:
    prompt_id = str(uuid.uuid4())
    with comfy.client(timeout=60) as c:
        r = c.post("/prompt", json={"prompt": prompt, "prompt_id": prompt_id, "client_id": "nodeloom-formats",
                                    "extra_data": {"extra_pnginfo": {"workflow": workflow}}})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 120
        while True:
            history = c.get(f"/history/{prompt_id}").json()
            entry = history.get(prompt_id)
            if entry and entry.get("status", {}).get("completed"):
                break
            assert not (entry and entry.get("status", {}).get("status_str") == "error"), entry
            assert time.monotonic() < deadline, "ComfyUI did not finish the prompt"
            time.sleep(0.2)
        images = entry["outputs"]["3"]["images"]
        assert len(images) == 1
        r = c.get("/view", params={"filename": images[0]["filename"], "subfolder": images[0]["subfolder"],
                                   "type": images[0]["type"]})
        assert r.status_code == 200
        return r.content


def test_a_png_saved_by_comfyui_imports_with_its_prompt(comfy: ComfyServer, object_info: dict[str, Any]) -> None:
    prompt = json.loads(json.dumps(API))
    prompt["3"]["inputs"]["filename_prefix"] = f"nodeloom_formats_{uuid.uuid4().hex[:8]}"
    data = saved_png(comfy, prompt, ui_workflow())
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (64, 48)
        assert {"prompt", "workflow"} <= set(image.info)

    parsed = parse_upload(data=data)
    assert (parsed.shape, parsed.source) == ("api", "png")
    assert parsed.api == prompt  # ComfyUI embeds the prompt it ran, as it was posted
    assert parsed.ui == ui_workflow()

    result = import_workflow(parsed, object_info)
    assert [n["id"] for n in result.graph["nodes"]] == ["1", "2", "3", "output_result"]
    assert result.graph["nodes"][0] == {"id": "1", "type": "comfyui.EmptyImage", "label": "EmptyImage",
                                        "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 16711680}}
    assert [(o.name, o.node, o.type) for o in result.outputs] == [("result", "3", "list<image>")]

    # without its editor graph the same PNG still imports, from its prompt alone
    with Image.open(io.BytesIO(data)) as image:
        bare = png(prompt=image.info["prompt"])
    assert import_workflow(parse_upload(data=bare), object_info).prompt == prompt
