"""Importing a ComfyUI workflow from the dashboard, in Chromium, against a real ComfyUI server (the `comfy` fixture of
tests/comfyui, whose node types nodeloom reads through NODELOOM_COMFYUI_URLS): paste an API-format export, review
what it exposes, rename / drop / add inputs and outputs, open the saved workflow and find its `comfyui.*` nodes on
the canvas with their ports and widgets (combos as selects); a PNG upload goes as multipart and can be discarded;
refusals (422 `comfyui_ui_unsupported`, validation details, 503 `comfyui_unavailable`) are shown in the dialog.

Every wait is on a state the page exposes (a data-testid, an attribute), never on time.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin
from playwright.sync_api import expect
from tests.support.comfyui import ComfyServer
from tests.support.server import LiveServer
from tests.web.helpers import Person, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def export() -> dict[str, Any]:
    """EmptyImage → ImageScale (titled `input:size`, so its literals are exposed) → ImageInvert → SaveImage."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 16711680},
              "_meta": {"title": "EmptyImage"}},
        "2": {"class_type": "ImageScale",
              "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "width": 32, "height": 32,
                         "crop": "disabled"},
              "_meta": {"title": "input:size"}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}, "_meta": {"title": "Invert Image"}},
        "4": {"class_type": "SaveImage",
              "inputs": {"images": ["3", 0], "filename_prefix": f"nodeloom_web_{uuid.uuid4().hex[:8]}"},
              "_meta": {"title": "Save Image"}},
    }


def saved_png(prompt: dict[str, Any]) -> bytes:
    """A PNG carrying a `prompt` text chunk, as ComfyUI's SaveImage writes it."""
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def api_client(server: LiveServer) -> httpx.Client:
    _account, key = server.account()
    return server.client(key)


def wait_for_pool(server: LiveServer) -> None:
    """The embedded worker checks the pool when it starts: wait until its node types are in the catalogue."""
    with api_client(server) as client:
        deadline = time.monotonic() + 120
        while client.get("/api/v1/nodes/comfyui.ImageScale").status_code != 200:
            assert time.monotonic() < deadline, "the pool's node types never appeared"
            time.sleep(0.2)


def open_import(page: Any) -> None:
    page.get_by_test_id("workflow-import-comfyui").click()
    expect(page.get_by_test_id("comfy-import-dialog")).to_have_attribute("data-stage", "source")


def paste_and_import(page: Any, workflow: dict[str, Any], name: str) -> None:
    page.get_by_test_id("comfy-import-name").fill(name)
    page.get_by_test_id("comfy-import-json").fill(json.dumps(workflow))
    page.get_by_test_id("comfy-import-submit").click()


#: no two canvas nodes overlap (the imported graph, which has no positions, was laid out with measured sizes)
NO_OVERLAP = """count => {
  const boxes = [...document.querySelectorAll('.react-flow__node')].map(n => n.getBoundingClientRect());
  if (boxes.length !== count || boxes.some(b => b.width === 0)) return false;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) return false;
  }
  return true;
}"""


def test_comfyui_import_dialog_saves_a_workflow_whose_canvas_shows_comfyui_nodes(
        dashboard: Callable[..., tuple[LiveServer, Person]], comfy: ComfyServer,  # noqa: F811
        page: Any, shoot: Callable[..., Any]) -> None:
    server, person = dashboard(comfyui_urls=comfy.url)
    wait_for_pool(server)
    sign_in(page, server, person)
    open_import(page)
    workflow = export()
    page.get_by_test_id("comfy-import-json").fill(json.dumps(workflow))
    expect(page.get_by_test_id("comfy-import-detected")).to_have_attribute("data-shape", "api")
    expect(page.get_by_test_id("comfy-import-detected")).to_contain_text("4 nodes")
    page.get_by_test_id("comfy-import-name").fill("Inverted canvas")
    page.get_by_test_id("comfy-import-submit").click()

    # the review: what the server exposed, and why
    review = page.get_by_test_id("comfy-import-review")
    expect(review).to_be_visible()
    workflow_id = review.get_attribute("data-workflow-id")
    assert workflow_id and workflow_id.startswith("wf")
    notes = page.get_by_test_id("comfy-import-notes")
    expect(notes).to_contain_text("output 'image' (list<image>) ← node 4 (Save Image)")
    expect(notes).to_contain_text("the node is titled 'input:size'")
    expect(page.get_by_test_id("comfy-import-input-row")).to_have_count(4)
    expect(page.get_by_test_id("comfy-import-input-2-upscale_method")).to_have_value("sizeUpscaleMethod")
    expect(page.get_by_test_id("comfy-import-output-4")).to_have_value("image")

    # rename the output and an input, drop two inputs, expose EmptyImage's width under a name of our own
    page.get_by_test_id("comfy-import-output-4").fill("inverted")
    page.get_by_test_id("comfy-import-input-2-upscale_method").fill("method")
    page.get_by_test_id("comfy-import-input-2-crop-remove").click()
    page.get_by_test_id("comfy-import-input-2-height-remove").click()
    page.get_by_test_id("comfy-import-add-input").select_option(label="width = 64")
    expect(page.get_by_test_id("comfy-import-add-input-name")).to_have_value("width")
    page.get_by_test_id("comfy-import-add-input-name").fill("canvasWidth")
    page.get_by_test_id("comfy-import-add-input-submit").click()
    expect(page.get_by_test_id("comfy-import-pending")).to_be_visible()
    page.get_by_test_id("comfy-import-apply").click()
    expect(page.get_by_test_id("comfy-import-pending")).to_have_count(0)
    expect(notes).to_contain_text("output 'inverted' (list<image>) ← node 4 (Save Image): mapped by the request")
    expect(notes).to_contain_text("input 'canvasWidth' (integer) → node 1 (EmptyImage).width: mapped by the request")
    expect(page.get_by_test_id("comfy-import-input-row")).to_have_count(3)
    shoot(page, "comfyui-import", docs=True)

    page.get_by_test_id("comfy-import-open-workflow").click()
    expect(page.get_by_test_id("editor")).to_be_visible()
    assert page.url.endswith(f"/workflows/{workflow_id}")
    expect(page.get_by_test_id("editor-name")).to_have_value("Inverted canvas")

    # the canvas: one comfyui.* node per ComfyUI node, the exposed inputs and the output linked in
    for node_id, node_type in (("1", "comfyui.EmptyImage"), ("2", "comfyui.ImageScale"), ("3", "comfyui.ImageInvert"),
                               ("4", "comfyui.SaveImage"), ("input_canvasWidth", "input.integer"),
                               ("input_method", "input.select"), ("input_sizeWidth", "input.integer"),
                               ("output_inverted", "output.image")):
        expect(page.get_by_test_id(f"node-{node_id}")).to_have_attribute("data-node-type", node_type)
    page.wait_for_function(NO_OVERLAP, arg=8)
    expect(page.get_by_test_id("handle-2-in-image")).to_have_attribute("data-port-type", "list<image>")
    expect(page.get_by_test_id("handle-4-out-images")).to_have_attribute("data-port-type", "list<image>")
    expect(page.get_by_test_id("widget-1-width")).to_have_attribute("data-linked", "true")
    expect(page.get_by_test_id("widget-1-height")).to_have_value("48")
    expect(page.get_by_test_id("widget-2-upscale_method")).to_have_attribute("data-linked", "true")
    crop = page.get_by_test_id("widget-2-crop")  # a combo the review left as a value: a select on the node
    expect(crop.locator("option")).to_have_text(["disabled", "center"])
    expect(crop.locator("option:checked")).to_have_text("disabled")
    crop.select_option(label="center")
    page.get_by_test_id("widget-4-filename_prefix").fill("nodeloom_web_renamed")
    expect(page.get_by_test_id("editor-validation")).to_have_attribute("data-state", "valid")
    shoot(page, "comfyui-canvas", docs=True)
    page.get_by_test_id("editor-save").click()
    expect(page.get_by_test_id("editor-save-status")).to_have_attribute("data-dirty", "false")

    # what was saved is what the dialog and the canvas showed (read with the page's session: the person's account)
    saved = page.evaluate("id => fetch('/api/v1/workflows/' + id).then(r => r.json())", workflow_id)
    nodes = {n["id"]: n for n in saved["graph"]["nodes"]}
    assert nodes["2"]["inputs"]["crop"] == "center"
    assert nodes["2"]["inputs"]["upscale_method"] == {"from": "input_method", "output": "value"}
    assert nodes["1"]["inputs"]["width"] == {"from": "input_canvasWidth", "output": "value"}
    assert nodes["4"]["inputs"]["filename_prefix"] == "nodeloom_web_renamed"
    assert nodes["output_inverted"]["params"]["name"] == "inverted"
    assert sorted(i["name"] for i in saved["inputs"]) == ["canvasWidth", "method", "sizeWidth"]


def test_comfyui_import_dialog_uploads_a_png_and_shows_refusals(
        dashboard: Callable[..., tuple[LiveServer, Person]], comfy: ComfyServer,  # noqa: F811
        page: Any, shoot: Callable[..., Any]) -> None:
    server, person = dashboard(comfyui_urls=comfy.url)
    wait_for_pool(server)
    sign_in(page, server, person)

    # a PNG that ComfyUI saved goes up as multipart; its name comes from the file; Discard deletes the draft
    open_import(page)
    page.get_by_test_id("comfy-import-mode-file").click()
    page.get_by_test_id("comfy-import-file").set_input_files(
        {"name": "ComfyUI_00042_.png", "mimeType": "image/png", "buffer": saved_png(export())})
    expect(page.get_by_test_id("comfy-import-name")).to_have_value("ComfyUI_00042_")
    page.get_by_test_id("comfy-import-submit").click()
    review = page.get_by_test_id("comfy-import-review")
    expect(review).to_be_visible()
    workflow_id = review.get_attribute("data-workflow-id")
    expect(page.get_by_test_id("comfy-import-node-count")).to_have_text("4")
    page.get_by_test_id("comfy-import-discard").click()
    expect(page.get_by_test_id("comfy-import-dialog")).to_have_count(0)
    status = page.evaluate("id => fetch('/api/v1/workflows/' + id).then(r => r.status)", workflow_id)
    assert status == 404
    expect(page.get_by_test_id("workflow-empty")).to_be_visible()

    # a UI-format workflow with a node type the servers lack: 422 comfyui_ui_unsupported, naming it
    open_import(page)
    ui = {"last_node_id": 2, "last_link_id": 1, "version": 0.4, "links": [[1, 1, 0, 2, 0, "IMAGE"]],
          "nodes": [{"id": 1, "type": "EmptyImage", "mode": 0, "inputs": [],
                     "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}], "widgets_values": [64, 48, 1, 0]},
                    {"id": 2, "type": "NoSuchNode", "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
                     "outputs": []}]}
    paste_and_import(page, ui, "ui")
    error = page.get_by_test_id("comfy-import-error")
    expect(error).to_have_attribute("data-code", "comfyui_ui_unsupported")
    expect(error).to_have_attribute("data-status", "422")
    expect(error).to_contain_text("NoSuchNode")
    expect(error).to_contain_text("Export (API)")
    shoot(page, "comfyui-import-refused")

    # an API-format workflow naming an unknown class: 422 with the path of the problem
    bad = export()
    bad["3"]["class_type"] = "NoSuchInvert"
    page.get_by_test_id("comfy-import-json").fill(json.dumps(bad))
    page.get_by_test_id("comfy-import-submit").click()
    expect(error).to_have_attribute("data-code", "validation_error")
    expect(error).to_contain_text("NoSuchInvert")
    expect(error).to_contain_text("workflow.3.class_type")
    expect(page.get_by_test_id("comfy-import-dialog")).to_have_attribute("data-stage", "source")
    page.get_by_test_id("comfy-import-cancel").click()

    # a server whose ComfyUI pool never answered: 503 comfyui_unavailable, explained
    lonely, person2 = dashboard()
    sign_in(page, lonely, person2)
    open_import(page)
    paste_and_import(page, export(), "no pool")
    expect(error).to_have_attribute("data-code", "comfyui_unavailable")
    expect(error).to_have_attribute("data-status", "503")
    expect(error).to_contain_text("No ComfyUI server is available yet.")
