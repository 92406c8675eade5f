"""UI (save) format → API format, checked against ComfyUI's own frontend.

The oracle: the `comfy` server serves its frontend (comfyui-frontend-package); in headless Chromium we load each
workflow with `app.loadGraphData(workflow)` and compare `(await app.graphToPrompt()).output` with
`nodeloom.services.comfyui.convert.ui_to_api` — the whole template corpus that ships with ComfyUI
(comfyui-workflow-templates: 172 UI-format workflows) and hand-made edge cases (PrimitiveNode, Reroute, bypassed and
muted nodes, legacy values). The pure tests at the end need no ComfyUI.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.comfyui import ComfyServer

from nodeloom.errors import ValidationFailed
from nodeloom.services.comfyui.convert import (
    MODE_BYPASS,
    MODE_NEVER,
    VIRTUAL_TYPES,
    apply_text_replacements,
    process_dynamic_prompt,
    runnable_prompt,
    ui_to_api,
)

DATA = Path(__file__).parent / "data"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IN_CI = os.environ.get("CI") == "true"

# Math.random pinned to 0 while converting: the frontend then picks the first option of a `{a|b}` dynamic prompt,
# which is what ui_to_api always does
LOAD_AND_CONVERT = """async (workflow) => {
    await window.app.loadGraphData(workflow, true, false, null,
                                   {showMissingNodesDialog: false, showMissingModelsDialog: false});
    const random = Math.random;
    Math.random = () => 0;
    try {
        return (await window.app.graphToPrompt()).output;
    } finally {
        Math.random = random;
    }
}"""


def core_object_info() -> dict[str, Any]:
    """A slice of ComfyUI 0.3.64's /object_info (the classes the pure tests use)."""
    info: dict[str, Any] = json.loads((DATA / "object_info_core.json").read_text())
    return info


# --- building UI-format workflows -----------------------------------------------------------------------------------


class UI:
    """A small builder of litegraph save files: nodes with typed input and output slots, links between them."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.links: list[list[Any]] = []

    def node(self, nid: int, type_: str, values: Any = None, *, inputs: tuple[tuple[str, str] | tuple[str, str, str],
             ...] = (), outputs: tuple[tuple[str, str], ...] = (), mode: int = 0, title: str | None = None,
             properties: dict[str, Any] | None = None) -> dict[str, Any]:
        node: dict[str, Any] = {
            "id": nid, "type": type_, "pos": [0, 0], "size": [200, 100], "flags": {}, "order": len(self.nodes),
            "mode": mode,
            "inputs": [{"name": i[0], "type": i[1], "link": None, **({"widget": {"name": i[2]}} if len(i) > 2 else {})}
                       for i in inputs],
            "outputs": [{"name": o[0], "type": o[1], "links": []} for o in outputs],
            "properties": properties if properties is not None else {},
        }
        if values is not None:
            node["widgets_values"] = values
        if title is not None:
            node["title"] = title
        self.nodes.append(node)
        return node

    def link(self, src: int, slot: int, dst: int, input_name: str) -> int:
        source = self._get(src)
        target = self._get(dst)
        link_id = len(self.links) + 1
        kind = source["outputs"][slot]["type"]
        inputs = target["inputs"]
        index = next(i for i, inp in enumerate(inputs) if inp["name"] == input_name)
        inputs[index]["link"] = link_id
        source["outputs"][slot]["links"].append(link_id)
        self.links.append([link_id, src, slot, dst, index, kind])
        return link_id

    def _get(self, nid: int) -> dict[str, Any]:
        return next(n for n in self.nodes if n["id"] == nid)

    def workflow(self) -> dict[str, Any]:
        return {"last_node_id": max((n["id"] for n in self.nodes), default=0), "last_link_id": len(self.links),
                "nodes": self.nodes, "links": self.links, "groups": [], "config": {}, "extra": {}, "version": 0.4}


CKPT = (("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE"))
KSAMPLER_IN = (("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
               ("latent_image", "LATENT"), ("seed", "INT", "seed"))


def text_to_image(ui: UI) -> None:
    """Checkpoint → two prompts → sampler → decode → save: nodes 1, 4, 5, 6, 7, 8, 9."""
    ui.node(1, "CheckpointLoaderSimple", ["model.safetensors"], outputs=CKPT)
    ui.node(4, "CLIPTextEncode", ["a fox"], inputs=(("clip", "CLIP"),), outputs=(("CONDITIONING", "CONDITIONING"),))
    ui.node(5, "CLIPTextEncode", ["blurry"], inputs=(("clip", "CLIP"),), outputs=(("CONDITIONING", "CONDITIONING"),))
    ui.node(6, "EmptyLatentImage", [512, 768, 1], outputs=(("LATENT", "LATENT"),))
    ui.node(7, "KSampler", [42, "randomize", 20, 7.5, "euler", "normal", 1.0], inputs=KSAMPLER_IN,
            outputs=(("LATENT", "LATENT"),))
    ui.node(8, "VAEDecode", inputs=(("samples", "LATENT"), ("vae", "VAE")), outputs=(("IMAGE", "IMAGE"),))
    ui.node(9, "SaveImage", ["nodeloom"], inputs=(("images", "IMAGE"),))
    ui.link(1, 1, 4, "clip")
    ui.link(1, 1, 5, "clip")
    ui.link(1, 0, 7, "model")
    ui.link(4, 0, 7, "positive")
    ui.link(5, 0, 7, "negative")
    ui.link(6, 0, 7, "latent_image")
    ui.link(7, 0, 8, "samples")
    ui.link(1, 2, 8, "vae")
    ui.link(8, 0, 9, "images")


def case_plain() -> dict[str, Any]:
    ui = UI()
    text_to_image(ui)
    return ui.workflow()


def case_frontend_only_nodes() -> dict[str, Any]:
    """Reroutes, PrimitiveNodes (text, a clamped and stepped number, a seed with its control), notes."""
    ui = UI()
    text_to_image(ui)
    ui.nodes = [n for n in ui.nodes if n["id"] != 7]
    ui.links = [lk for lk in ui.links if 7 not in (lk[1], lk[3])]
    ui.node(7, "KSampler", [42, "randomize", 20, 7.5, "euler", "normal", 1.0], inputs=KSAMPLER_IN,
            outputs=(("LATENT", "LATENT"),))
    ui.node(20, "Reroute", inputs=(("", "*"),), outputs=(("", "MODEL"),))
    ui.node(21, "Reroute", inputs=(("", "*"),), outputs=(("", "MODEL"),))
    ui.link(1, 0, 20, "")
    ui.link(20, 0, 21, "")
    ui.link(21, 0, 7, "model")
    ui.link(4, 0, 7, "positive")
    ui.link(5, 0, 7, "negative")
    ui.link(6, 0, 7, "latent_image")
    ui.link(7, 0, 8, "samples")
    # a seed from a PrimitiveNode, incremented after each queue
    ui.node(30, "PrimitiveNode", [777, "increment"], outputs=(("INT", "INT"),), title="seed")
    ui.link(30, 0, 7, "seed")
    # a text prompt from a PrimitiveNode feeding both encoders' text widgets
    ui._get(4)["inputs"].append({"name": "text", "type": "STRING", "link": None, "widget": {"name": "text"}})
    ui.node(31, "PrimitiveNode", ["a {red|blue} fox // a comment\nin /* no */ snow"], outputs=(("STRING", "STRING"),))
    ui.link(31, 0, 4, "text")
    # a width above its maximum and off its step, from a PrimitiveNode
    ui._get(6)["inputs"].append({"name": "width", "type": "INT", "link": None, "widget": {"name": "width"}})
    ui.node(32, "PrimitiveNode", [20003, "fixed"], outputs=(("INT", "INT"),))
    ui.link(32, 0, 6, "width")
    # a sampler name from a combo PrimitiveNode (value, control, filter)
    ui._get(7)["inputs"].append({"name": "sampler_name", "type": "COMBO", "link": None,
                                 "widget": {"name": "sampler_name"}})
    ui.node(33, "PrimitiveNode", ["dpmpp_2m", "fixed", ""], outputs=(("COMBO", "COMBO"),))
    ui.link(33, 0, 7, "sampler_name")
    ui.node(40, "Note", ["remember the fox"])
    ui.node(41, "MarkdownNote", ["# hello"])
    return ui.workflow()


def case_bypassed_and_muted() -> dict[str, Any]:
    """A bypassed LoRA (model and clip pass through by type), a muted node and what it fed, a bypassed node of an
    unknown type, a widget input fed by a muted PrimitiveInt."""
    ui = UI()
    text_to_image(ui)
    ui.nodes = [n for n in ui.nodes if n["id"] not in (4, 5, 7)]
    ui.links = [lk for lk in ui.links if not {4, 5, 7} & {lk[1], lk[3]}]
    ui.node(2, "LoraLoader", ["style.safetensors", 0.8, 1.0], inputs=(("model", "MODEL"), ("clip", "CLIP")),
            outputs=(("MODEL", "MODEL"), ("CLIP", "CLIP")), mode=MODE_BYPASS)
    ui.link(1, 0, 2, "model")
    ui.link(1, 1, 2, "clip")
    ui.node(4, "CLIPTextEncode", ["a fox"], inputs=(("clip", "CLIP"),), outputs=(("CONDITIONING", "CONDITIONING"),))
    ui.node(5, "CLIPTextEncode", ["blurry"], inputs=(("clip", "CLIP"),), outputs=(("CONDITIONING", "CONDITIONING"),))
    ui.link(2, 1, 4, "clip")
    ui.link(2, 1, 5, "clip")
    ui.node(7, "KSampler", [42, "fixed", 20, 7.5, "euler", "normal", 1.0], inputs=KSAMPLER_IN,
            outputs=(("LATENT", "LATENT"),))
    ui.link(2, 0, 7, "model")
    # a bypassed ControlNetApplyAdvanced: each of its two outputs passes the input of its own slot
    ui.node(3, "ControlNetApplyAdvanced", [0.5, 0, 1], inputs=(("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"), ("control_net", "CONTROL_NET"), ("image", "IMAGE"), ("vae", "VAE")),
            outputs=(("positive", "CONDITIONING"), ("negative", "CONDITIONING")), mode=MODE_BYPASS)
    ui.link(4, 0, 3, "positive")
    ui.link(5, 0, 3, "negative")
    ui.link(3, 0, 7, "positive")
    ui.link(3, 1, 7, "negative")
    ui.link(6, 0, 7, "latent_image")
    ui.link(7, 0, 8, "samples")
    # VAEDecode → an unknown bypassed node → a muted ImageInvert → PreviewImage
    ui.node(10, "SomeCustomNode", [1, 2], inputs=(("image", "IMAGE"),), outputs=(("IMAGE", "IMAGE"),), mode=MODE_BYPASS)
    ui.link(8, 0, 10, "image")
    ui.node(11, "ImageInvert", inputs=(("image", "IMAGE"),), outputs=(("IMAGE", "IMAGE"),), mode=MODE_NEVER)
    ui.link(10, 0, 11, "image")
    ui.node(12, "PreviewImage", inputs=(("images", "IMAGE"),))
    ui.link(11, 0, 12, "images")
    ui.node(13, "ImageBlur", [3, 1.5], inputs=(("image", "IMAGE"),), outputs=(("IMAGE", "IMAGE"),))
    ui.link(10, 0, 13, "image")
    ui.node(14, "PreviewImage", inputs=(("images", "IMAGE"),), title="blurred")
    ui.link(13, 0, 14, "images")
    # a widget input linked from a muted PrimitiveInt: the input disappears
    ui.node(15, "PrimitiveInt", [640, "fixed"], outputs=(("INT", "INT"),), mode=MODE_NEVER)
    ui.node(16, "EmptyImage", [256, 256, 1, 0], inputs=(("width", "INT", "width"),), outputs=(("IMAGE", "IMAGE"),))
    ui.link(15, 0, 16, "width")
    ui.node(17, "PreviewImage", inputs=(("images", "IMAGE"),))
    ui.link(16, 0, 17, "images")
    # a bypassed node with no input of the wanted type: the link is dropped
    ui.node(18, "VAEDecode", inputs=(("samples", "LATENT"), ("vae", "VAE")), outputs=(("IMAGE", "IMAGE"),),
            mode=MODE_BYPASS)
    ui.link(7, 0, 18, "samples")
    ui.node(19, "PreviewImage", inputs=(("images", "IMAGE"),))
    ui.link(18, 0, 19, "images")
    return ui.workflow()


def case_legacy_values() -> dict[str, Any]:
    """Values as older frontends saved them: a boolean seed control, too few values, a dict, a number in a
    multiline text, an empty title, text replacements in a file name prefix."""
    ui = UI()
    text_to_image(ui)
    ui._get(7)["widgets_values"] = [5, True, 30, 6, "sample_euler", "karras", 0.9]
    ui._get(6)["widgets_values"] = [640]
    ui._get(5)["widgets_values"] = {"text": "ignored"}
    ui._get(4)["title"] = ""
    ui._get(9)["widgets_values"] = ["fox_%KSampler.steps%_%Empty Latent Image.width%_%nothing.here%"]
    ui.node(50, "StringConcatenate", [12, None, "-"], outputs=(("STRING", "STRING"),), title="joined")
    ui.node(51, "PreviewAny", inputs=(("source", "*"),))
    ui.link(50, 0, 51, "source")
    return ui.workflow()


EDGE_CASES = {
    "plain": case_plain,
    "frontend_only_nodes": case_frontend_only_nodes,
    "bypassed_and_muted": case_bypassed_and_muted,
    "legacy_values": case_legacy_values,
}


# --- the frontend as oracle ---------------------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def frontend(comfy: ComfyServer) -> Iterator[Any]:
    """One Chromium page with ComfyUI's frontend loaded from the `comfy` server (`window.app` ready)."""
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(comfy.url + "/")
            page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph", timeout=120_000)
            yield page
        finally:
            browser.close()


def templates_dir(comfy: ComfyServer) -> Path:
    found = sorted(comfy.env.venv.resolve().glob("lib/python*/site-packages/comfyui_workflow_templates/templates"))
    if not found:
        _unavailable("comfyui-workflow-templates is not installed in ComfyUI's venv")
    return found[0]


def missing_types(workflow: dict[str, Any], object_info: dict[str, Any]) -> list[tuple[Any, str]]:
    """Nodes that run (neither muted nor bypassed) and whose class the server lacks."""
    return [(n["id"], n["type"]) for n in workflow["nodes"]
            if n["type"] not in VIRTUAL_TYPES and n["type"] not in object_info
            and n.get("mode", 0) not in (MODE_NEVER, MODE_BYPASS)]


def subgraph_nodes(workflow: dict[str, Any]) -> list[tuple[Any, str]]:
    ids = {s.get("id") for s in (workflow.get("definitions") or {}).get("subgraphs") or []}
    return [(n["id"], n["type"]) for n in workflow["nodes"] if n["type"] in ids]


def test_the_template_corpus_converts_as_the_frontend_does(comfy: ComfyServer, object_info: dict[str, Any],
                                                           frontend: Any) -> None:
    identical, refused, differing = [], Counter[str](), []
    files = sorted(templates_dir(comfy).glob("*.json"))
    ui_files = [(f, data) for f in files if isinstance(data := json.loads(f.read_text()), dict) and "nodes" in data]
    assert len(ui_files) >= 150, f"only {len(ui_files)} UI-format templates found"
    for path, workflow in ui_files:
        lacking, nested = missing_types(workflow, object_info), subgraph_nodes(workflow)
        try:
            ours = ui_to_api(workflow, object_info).prompt
        except ValidationFailed as exc:
            assert exc.code == "comfyui_ui_unsupported", (path.name, exc.message)
            expected = [f"node {nid} ({kind})" for nid, kind in lacking + nested]
            assert expected, f"{path.name}: refused without a reason: {exc.message}"
            assert any(e in exc.message for e in expected), (path.name, exc.message)
            assert exc.extra["details"][0]["message"] == exc.message
            refused["subgraph" if "subgraph" in exc.message else
                    f"lacks {exc.message.split('(')[1].split(')')[0]}"] += 1
            continue
        assert not lacking and not nested, f"{path.name} converted though it uses {lacking + nested}"
        theirs = frontend.evaluate(LOAD_AND_CONVERT, workflow)
        if ours == theirs:
            identical.append(path.name)
        else:
            differing.append((path.name, _first_difference(theirs, ours)))
    print(f"\nComfyUI templates (UI format): {len(ui_files)}; identical to graphToPrompt: {len(identical)}; "
          f"refused: {sum(refused.values())} {dict(refused)}; differing: {len(differing)}")
    for name, difference in differing:
        print(f"  differs: {name}: {difference}")
    assert differing == []
    assert len(identical) >= 150


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases_convert_as_the_frontend_does(case: str, object_info: dict[str, Any], frontend: Any) -> None:
    workflow = EDGE_CASES[case]()
    theirs = frontend.evaluate(LOAD_AND_CONVERT, workflow)
    ours = ui_to_api(workflow, object_info).prompt
    assert ours == theirs, _first_difference(theirs, ours)


def _first_difference(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    for nid in sorted(set(theirs) | set(ours), key=str):
        if nid not in ours:
            return f"node {nid} ({theirs[nid]['class_type']}) missing from ours"
        if nid not in theirs:
            return f"node {nid} ({ours[nid]['class_type']}) not in the frontend's"
        a, b = theirs[nid], ours[nid]
        if a == b:
            continue
        if a.get("_meta") != b.get("_meta"):
            return f"node {nid}: title {a.get('_meta')} vs ours {b.get('_meta')}"
        for name in sorted(set(a["inputs"]) | set(b["inputs"])):
            x, y = a["inputs"].get(name, "<absent>"), b["inputs"].get(name, "<absent>")
            if x != y:
                return f"node {nid} ({a['class_type']}).{name}: frontend {x!r} vs ours {y!r}"
        return f"node {nid}: {a} vs ours {b}"
    return "no difference"


# --- pure tests (no ComfyUI) ----------------------------------------------------------------------------------------


def test_widget_values_follow_input_order_with_the_seed_control() -> None:
    conversion = ui_to_api(case_plain(), core_object_info())
    sampler = conversion.prompt["7"]
    assert sampler == {"inputs": {"seed": 42, "steps": 20, "cfg": 7.5, "sampler_name": "euler",
                                  "scheduler": "normal", "denoise": 1.0, "model": ["1", 0], "positive": ["4", 0],
                                  "negative": ["5", 0], "latent_image": ["6", 0]},
                       "class_type": "KSampler", "_meta": {"title": "KSampler"}}
    assert conversion.controls["7"] == {"seed": "randomize"}
    assert conversion.prompt["9"]["_meta"] == {"title": "Save Image"}


def test_load_image_keeps_the_file_and_drops_the_upload_widget() -> None:
    ui = UI()
    ui.node(3, "LoadImage", ["example.png", "image"], outputs=(("IMAGE", "IMAGE"), ("MASK", "MASK")),
            title="Reference photo")
    ui.node(4, "PreviewImage", inputs=(("images", "IMAGE"),))
    ui.link(3, 0, 4, "images")
    conversion = ui_to_api(ui.workflow(), core_object_info())
    assert conversion.prompt == {
        "3": {"inputs": {"image": "example.png"}, "class_type": "LoadImage", "_meta": {"title": "Reference photo"}},
        "4": {"inputs": {"images": ["3", 0]}, "class_type": "PreviewImage", "_meta": {"title": "Preview Image"}},
    }
    assert conversion.titles == {"3": "Reference photo"}


def test_primitive_nodes_reroutes_and_notes_are_resolved() -> None:
    conversion = ui_to_api(case_frontend_only_nodes(), core_object_info())
    prompt = conversion.prompt
    assert set(prompt) == {"1", "4", "5", "6", "7", "8", "9"}
    assert prompt["7"]["inputs"]["model"] == ["1", 0]  # through two reroutes
    assert prompt["7"]["inputs"]["seed"] == 777
    assert prompt["4"]["inputs"]["text"] == "a red fox \nin  snow"  # comments stripped, first choice kept
    assert prompt["6"]["inputs"]["width"] == 16384  # clamped to the input's maximum
    assert prompt["7"]["inputs"]["sampler_name"] == "dpmpp_2m"
    # the PrimitiveNode's control is the one that acts after each run
    assert conversion.controls["7"] == {"seed": "increment", "sampler_name": "fixed"}


def test_bypassed_nodes_pass_through_and_muted_nodes_drop_out() -> None:
    conversion = ui_to_api(case_bypassed_and_muted(), core_object_info())
    prompt = conversion.prompt
    assert "2" not in prompt and "10" not in prompt and "11" not in prompt and "15" not in prompt
    assert prompt["7"]["inputs"]["model"] == ["1", 0]
    assert (prompt["7"]["inputs"]["positive"], prompt["7"]["inputs"]["negative"]) == (["4", 0], ["5", 0])
    assert prompt["19"]["inputs"] == {}
    assert prompt["4"]["inputs"]["clip"] == ["1", 1]
    assert prompt["13"]["inputs"]["image"] == ["8", 0]  # through the unknown bypassed node
    assert prompt["12"]["inputs"] == {}  # it was fed by a muted node
    assert "width" not in prompt["16"]["inputs"]
    assert any("node 11 (ImageInvert) is muted" in note for note in conversion.notes)
    assert any("node 2 (LoraLoader) is bypassed" in note for note in conversion.notes)


def test_what_lost_a_required_input_to_muting_is_left_out_of_the_runnable_prompt() -> None:
    """graphToPrompt keeps a node whose required input came from a muted node (ComfyUI then refuses that node and
    runs the other outputs); the prompt nodeloom imports leaves it out, and whatever required it in turn."""
    info = core_object_info()
    conversion = ui_to_api(case_bypassed_and_muted(), info)
    assert sorted(conversion.cut) == [("12", "images"), ("16", "width"), ("19", "images")]
    prompt, notes = runnable_prompt(conversion, info)
    assert set(conversion.prompt) - set(prompt) == {"12", "16", "17", "19"}
    assert notes == [
        "node 12 (PreviewImage) is left out: its input 'images' came from a muted or bypassed node that passes nothing",
        "node 16 (EmptyImage) is left out: its input 'width' came from a muted or bypassed node that passes nothing",
        "node 17 (PreviewImage) is left out: its input 'images' came from node 16, which is left out",
        "node 19 (PreviewImage) is left out: its input 'images' came from a muted or bypassed node that passes nothing",
    ]
    assert prompt["14"] == conversion.prompt["14"]  # the blurred preview does not depend on the muted node
    assert runnable_prompt(ui_to_api(case_plain(), info), info) == (ui_to_api(case_plain(), info).prompt, [])


def test_legacy_values_are_read_as_the_frontend_reads_them() -> None:
    prompt = ui_to_api(case_legacy_values(), core_object_info()).prompt
    assert prompt["7"]["inputs"]["sampler_name"] == "euler"
    assert prompt["6"]["inputs"] == {"width": 640, "height": 512, "batch_size": 1}
    assert prompt["5"]["inputs"]["text"] == ""
    assert prompt["4"]["_meta"]["title"] == "CLIP Text Encode (Prompt)"
    assert prompt["9"]["inputs"]["filename_prefix"] == "fox_30_640_%nothing.here%"
    assert prompt["50"]["inputs"]["string_a"] == "12"
    assert prompt["50"]["inputs"]["string_b"] == ""


@pytest.mark.parametrize("kind,node,message", [
    ("subgraph", {"id": 5, "type": "6b3a5d0f-0000-4000-8000-000000000001"}, "node 5 (6b3a5d0f-"),
    ("group node", {"id": 6, "type": "workflow>my group"}, "node 6 (workflow>my group)"),
    ("unknown type", {"id": 7, "type": "VHS_LoadVideo"}, "node 7 (VHS_LoadVideo)"),
])
def test_what_cannot_be_converted_is_refused_naming_the_node(kind: str, node: dict[str, Any], message: str) -> None:
    workflow = case_plain()
    workflow["nodes"].append({**node, "mode": 0, "inputs": [], "outputs": [], "properties": {}})
    workflow["definitions"] = {"subgraphs": [{"id": "6b3a5d0f-0000-4000-8000-000000000001", "nodes": []}]}
    workflow["extra"] = {"groupNodes": {"my group": {"nodes": []}}}
    with pytest.raises(ValidationFailed) as caught:
        ui_to_api(workflow, core_object_info())
    assert caught.value.code == "comfyui_ui_unsupported"
    assert caught.value.status == 422
    assert message in caught.value.message
    assert caught.value.extra["details"] == [{"path": "workflow", "message": caught.value.message}]


def test_dynamic_prompts_strip_comments_and_keep_escapes() -> None:
    assert process_dynamic_prompt("a {b|c} d") == "a b d"
    assert process_dynamic_prompt("x // gone\ny /* gone */z") == "x \ny z"
    assert process_dynamic_prompt(r"literal \{braces\} and \| bar") == "literal {braces} and | bar"
    assert process_dynamic_prompt("{outer {inner|other}|second}") == "outer inner"
    assert process_dynamic_prompt("http://example.com") == "http:"  # as the frontend does


def test_text_replacements_read_widget_values_by_node_name() -> None:
    workflow = case_plain()
    from nodeloom.services.comfyui.convert import _build_graph

    graph = _build_graph(workflow, core_object_info())
    assert apply_text_replacements(graph, "%KSampler.seed%/%CheckpointLoaderSimple.ckpt_name%") == \
        "42/model.safetensors"
    assert apply_text_replacements(graph, "%date:yyyy-MM-dd%") == "%year%-%month%-%day%"
