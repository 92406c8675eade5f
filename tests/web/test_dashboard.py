"""The dashboard end to end, in Chromium: sign in, build a workflow on the canvas, run it, publish it,
make an API key and call the workflow with it over plain HTTP, then find the runs in the history.

Every wait is on a state the page exposes (a data-testid appearing, a data-status value), never on time.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect
from tests.support.server import LiveServer
from tests.web.helpers import Person, sign_in

pytestmark = pytest.mark.browser

RUN_MS = 90_000  # a run includes the embedded worker picking the job up and encoding a PNG


def drag_from_palette(page: Any, node_type: str, *, x: int, y: int) -> str:
    """A real drag of a palette item onto the canvas; returns the new node's id."""
    before = {n["id"] for n in page.evaluate("window.__nodeloom.getGraph().nodes")}
    page.get_by_test_id("palette-search").fill(node_type.split(".")[-1].replace("_", " "))
    item = page.get_by_test_id(f"palette-item-{node_type}")
    expect(item).to_have_attribute("data-available", "true")
    item.drag_to(page.get_by_test_id("canvas"), target_position={"x": x, "y": y})
    node = page.locator(f'[data-node-type="{node_type}"]')
    expect(node).to_have_count(1)
    added = [n["id"] for n in page.evaluate("window.__nodeloom.getGraph().nodes") if n["id"] not in before]
    assert len(added) == 1, added
    page.get_by_test_id("palette-search").fill("")
    return str(added[0])


def connect(page: Any, src: str, output: str, dst: str, input_: str) -> None:
    ok = page.evaluate("([s, o, d, i]) => window.__nodeloom.connect(s, o, d, i)", [src, output, dst, input_])
    assert ok, page.evaluate("window.__nodeloom.lastError()")


#: every node measured and inside the canvas (the view has been fitted to the graph)
ALL_NODES_IN_VIEW = """count => {
  const pane = document.querySelector('.react-flow')?.getBoundingClientRect();
  const nodes = [...document.querySelectorAll('.react-flow__node')];
  return !!pane && nodes.length === count && nodes.every(node => {
    const r = node.getBoundingClientRect();
    return r.width > 0 && r.left >= pane.left && r.right <= pane.right && r.top >= pane.top && r.bottom <= pane.bottom;
  });
}"""


def graph_after_layout(page: Any, before: dict[str, Any]) -> list[dict[str, Any]]:
    """The graph as saved before the reload, except for the positions auto-layout chose."""
    positions = {n["id"]: n.get("position") for n in page.evaluate("window.__nodeloom.getGraph()")["nodes"]}
    return [{**n, "position": positions[n["id"]]} for n in before["nodes"]]


def select_node(page: Any, node_id: str) -> None:
    page.get_by_test_id("tab-inspect").click()
    inspector = page.get_by_test_id(f"inspector-node-{node_id}")
    # a click that lands while the canvas is still fitting its view may miss the node: click again (3 tries)
    for _ in range(2):
        page.get_by_test_id(f"node-{node_id}").click()
        try:
            expect(inspector).to_be_visible(timeout=2000)
            return
        except AssertionError:
            continue
    page.get_by_test_id(f"node-{node_id}").click()
    expect(inspector).to_be_visible()


def test_build_run_publish_and_call_from_the_dashboard(dashboard: Callable[..., tuple[LiveServer, Person]],
                                                       page: Any, shoot: Callable[..., Path]) -> None:
    server, person = dashboard()

    # sign in: a signed-out visitor lands on the sign-in form
    page.goto(server.url + "/")
    expect(page.get_by_test_id("login-form")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    shoot(page, "login")
    sign_in(page, server, person)
    expect(page.get_by_test_id("account-name")).to_contain_text("Analytical Engines")
    shoot(page, "workflows-empty")

    # a new workflow opens the editor with the palette of node types
    page.get_by_role("button", name="New workflow").click()
    expect(page.get_by_test_id("editor")).to_be_visible()
    expect(page.get_by_test_id("palette-item-image.gradient")).to_be_visible()
    workflow_id = page.evaluate("window.__nodeloom.getWorkflowId()")
    assert workflow_id.startswith("wf_")
    page.get_by_test_id("editor-name").fill("Captioned gradient")

    # drag two nodes from the palette onto the canvas, add two more through the store's actions
    gradient = drag_from_palette(page, "image.gradient", x=260, y=140)
    overlay = drag_from_palette(page, "image.text_overlay", x=620, y=260)
    caption = page.evaluate("window.__nodeloom.addNode('input.text', {x: 0, y: 380})")
    out = page.evaluate("window.__nodeloom.addNode('output.image', {x: 980, y: 260})")
    expect(page.locator("[data-testid^='node-'][data-node-type]")).to_have_count(4)

    # typed handles: a text port refuses an image link; matching ports connect
    refused = page.evaluate("([s, d]) => window.__nodeloom.canConnect(s, 'text', d, 'image')", [caption, out])
    assert refused["ok"] is False
    connect(page, gradient, "image", overlay, "image")
    connect(page, caption, "text", overlay, "text")
    connect(page, overlay, "image", out, "image")
    expect(page.locator(".react-flow__edge")).to_have_count(3)

    # params through the inspector's forms (generated from the node schemas)
    select_node(page, gradient)
    page.get_by_test_id(f"param-{gradient}-width").fill("480")
    page.get_by_test_id(f"param-{gradient}-height").fill("270")
    page.get_by_test_id(f"param-{gradient}-start").fill("#1d3557")
    page.get_by_test_id(f"param-{gradient}-end").fill("#e76f51")
    page.get_by_test_id(f"param-{gradient}-direction").select_option(label="horizontal")
    select_node(page, caption)
    page.get_by_test_id(f"param-{caption}-name").fill("caption")
    page.get_by_test_id(f"param-{caption}-default").fill("hello nodeloom")
    select_node(page, out)
    page.get_by_test_id(f"param-{out}-name").fill("image")
    graph = page.evaluate("window.__nodeloom.getGraph()")
    params = {n["id"]: n.get("params", {}) for n in graph["nodes"]}
    assert params[gradient]["width"] == 480 and params[gradient]["direction"] == "horizontal"
    assert params[caption]["name"] == "caption" and params[out]["name"] == "image"

    # validate, lay the graph out and save; reopened, the saved draft fills the canvas
    page.get_by_test_id("editor-validate").click()
    expect(page.get_by_test_id("editor-validation")).to_have_attribute("data-state", "valid")
    page.get_by_test_id("editor-layout").click()
    page.get_by_test_id("editor-save").click()
    expect(page.get_by_test_id("editor-save-status")).to_have_attribute("data-dirty", "false")
    page.reload()
    expect(page.get_by_test_id("editor")).to_be_visible()
    page.wait_for_function(ALL_NODES_IN_VIEW, arg=4)
    assert page.evaluate("window.__nodeloom.getGraph()")["nodes"] == graph_after_layout(page, graph)
    shoot(page, "canvas", docs=True)

    # run the draft from the run panel: live node states, then the output image
    page.get_by_test_id("editor-run").click()
    expect(page.get_by_test_id("run-panel")).to_be_visible()
    page.get_by_test_id("run-input-caption").fill("drawn on a canvas")
    page.get_by_test_id("run-submit").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "COMPLETED", timeout=RUN_MS)
    image = page.get_by_test_id("run-output-image").locator("img")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 480", arg=image.element_handle())
    for node_id in (gradient, overlay, caption, out):
        expect(page.get_by_test_id(f"node-{node_id}")).to_have_attribute("data-run-status",
                                                                         re.compile("completed|cached"))
    draft_execution = page.get_by_test_id("run-execution-link").inner_text().strip()
    shoot(page, "run-panel", docs=True)

    # publish: the toolbar shows the live version
    page.get_by_test_id("editor-publish").click()
    expect(page.get_by_test_id("editor-published-version")).to_contain_text("v1")

    # the API page shows the snippets with the real ids
    page.get_by_test_id("editor-api").click()
    expect(page.get_by_test_id("api-page")).to_be_visible()
    expect(page.get_by_test_id("snippet-execute")).to_contain_text(workflow_id)
    shoot(page, "workflow-api")

    # an API key made in the dashboard (shown once) works with plain HTTP
    page.get_by_test_id("nav-keys").click()
    page.get_by_test_id("key-name").fill("playwright")
    for scope, wanted in (("execute", True), ("read", True), ("usage", False), ("manage", False)):
        page.get_by_test_id(f"key-scope-{scope}").set_checked(wanted)
    page.get_by_test_id("key-create").click()
    key = page.get_by_test_id("key-created-value").inner_text().strip()
    assert key.startswith("sk-")
    expect(page.get_by_test_id("key-row")).to_have_count(1)
    shoot(page, "keys")

    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
        r = api.post(f"/api/v1/workflows/{workflow_id}/execute", json={"inputs": {"caption": "called over HTTP"}},
                     headers={"Prefer": "wait=45"})
        assert r.status_code in (200, 202), r.text
        api_execution = r.json()["executionId"]
        body = r.json() if r.status_code == 200 else None
        while body is None or body["status"] not in ("COMPLETED", "FAILED", "CANCELLED"):
            body = api.get(f"/api/v1/workflows/executions/{api_execution}/poll").json()
        assert body["status"] == "COMPLETED", body
        assert body["version"] == 1
        png = httpx.get(body["outputs"]["image"]["url"], timeout=30)
        assert png.status_code == 200
        assert Image.open(io.BytesIO(png.content)).size == (480, 270)
        assert api.post("/api/v1/keys", json={"name": "x", "scopes": ["read"]}).status_code == 403  # no manage

    # the history lists both runs; the detail page shows the API one
    page.get_by_test_id("nav-executions").click()
    expect(page.locator(f'[data-testid="execution-row"][data-execution-id="{api_execution}"]')).to_be_visible()
    expect(page.locator(f'[data-testid="execution-row"][data-execution-id="{draft_execution}"]')).to_be_visible()
    shoot(page, "executions")
    page.locator(f'[data-testid="execution-row"][data-execution-id="{api_execution}"]') \
        .get_by_test_id("execution-open").click()
    expect(page.get_by_test_id("execution-detail")).to_be_visible()
    expect(page.get_by_test_id("execution-status")).to_contain_text(re.compile("complete", re.IGNORECASE))
    expect(page.get_by_test_id("execution-output-image").locator("img")).to_be_visible()
    shoot(page, "execution-detail")

    page.get_by_test_id("nav-usage").click()
    expect(page.get_by_test_id("usage-page")).to_be_visible()
    expect(page.get_by_test_id("usage-plan")).to_contain_text(re.compile("pro", re.IGNORECASE))
    shoot(page, "usage")

    page.get_by_test_id("nav-workflows").click()
    expect(page.locator(f'[data-testid="workflow-row"][data-workflow-id="{workflow_id}"]')).to_be_visible()
    shoot(page, "workflows")

    # signing out ends the session on the server too
    page.get_by_test_id("nav-signout").click()
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert page.request.get(server.url + "/api/v1/auth/me").status == 401
