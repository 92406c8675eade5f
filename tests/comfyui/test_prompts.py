"""A segment → its ComfyUI prompt (services/comfyui/prompts.py), and ComfyUI's refusals and failures mapped to our
nodes (services/comfyui/running.py). Pure: a slice of ComfyUI 0.3.64's /object_info, no server. A 400 with
`node_errors` is one of the faults a real server does not produce on demand once our own validation has passed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from nodeloom.engine.errors import NodeError
from nodeloom.engine.graph import Graph, validate
from nodeloom.engine.registry import Registry
from nodeloom.engine.segments import plan
from nodeloom.nodes import builtin_nodes
from nodeloom.providers.comfyui import HistoryEntry, InputError, PromptRejected
from nodeloom.providers.comfyui import NodeError as ComfyNodeError
from nodeloom.services.billing import BillingService
from nodeloom.services.comfyui.nodes import ComfyPolicy, comfy_node_types
from nodeloom.services.comfyui.prompts import build_job
from nodeloom.services.comfyui.running import _failure, _rejection

DATA = Path(__file__).parent / "data"
INFO: dict[str, Any] = json.loads((DATA / "object_info_core.json").read_text())
# this server has one checkpoint (the slice was read from a server without models)
INFO["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = ["m.safetensors"]
POLICY = ComfyPolicy(credits_per_second=0.5, max_seconds=30, max_image_pixels=64 * 64, max_batch=4)


def registry(policy: ComfyPolicy = POLICY) -> Registry:
    return Registry([*builtin_nodes(), *comfy_node_types(INFO, policy=policy)])


def link(src: str, out: str) -> dict[str, str]:
    return {"from": src, "output": out}


def sdxl_like() -> Graph:
    """Text in → CLIPTextEncode → KSampler → VAEDecode → native invert (a GPU host's shape, validated only)."""
    return validate({"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "prompt", "default": "a fox"}},
        {"id": "4", "type": "comfyui.CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
        {"id": "6", "type": "comfyui.CLIPTextEncode", "inputs": {"text": link("p", "text"), "clip": link("4", "clip")}},
        {"id": "7", "type": "comfyui.CLIPTextEncode", "inputs": {"text": "bad", "clip": link("4", "clip")}},
        {"id": "5", "type": "comfyui.EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        {"id": "3", "type": "comfyui.KSampler", "inputs": {
            "model": link("4", "model"), "positive": link("6", "conditioning"), "negative": link("7", "conditioning"),
            "latent_image": link("5", "latent"), "seed": 5, "steps": 2, "cfg": 7.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0}},
        {"id": "8", "type": "comfyui.VAEDecode", "inputs": {"samples": link("3", "latent"), "vae": link("4", "vae")}},
        {"id": "inv", "type": "image.invert", "inputs": {"image": link("8", "image")}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("inv", "image")}, "params": {"name": "image"}},
    ]}, registry(), check_availability=False)


def test_a_segment_becomes_one_prompt_with_our_ids_and_a_way_out_for_each_value() -> None:
    g = sdxl_like()
    (seg,) = plan(g)
    assert seg.members == ("4", "5", "6", "7", "3", "8")
    values = {"6": {"text": "a red fox"}, "7": {"text": "bad"}, "4": {"ckpt_name": "m.safetensors"},
              "5": {"width": 64, "height": 64, "batch_size": 1}, "3": {}, "8": {}}
    job = build_job(seg, g, values, execution_id="ex_1", policy=POLICY, encode=lambda im: b"png")
    prompt = job.prompt
    assert prompt["6"] == {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]},
                           "_meta": {"title": "6"}}
    assert prompt["3"]["inputs"]["model"] == ["4", 0] and prompt["3"]["inputs"]["latent_image"] == ["5", 0]
    # VAEDecode's IMAGE leaves the segment (to a native node): a PreviewImage brings it out
    (pickup,) = job.pickups
    assert (pickup.member, pickup.port, pickup.kind) == ("8", "image", "images")
    assert prompt[pickup.node] == {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    assert job.owner[pickup.node] == "8"
    # what a server needs: every class, and the files the loaders name
    assert {"CheckpointLoaderSimple", "KSampler", "PreviewImage"} <= job.need.classes
    assert ("CheckpointLoaderSimple", "ckpt_name", "m.safetensors") in job.need.files
    assert job.runs_anything


def test_native_images_go_up_under_names_unique_to_the_execution() -> None:
    g = validate({"nodes": [
        {"id": "img", "type": "input.image", "params": {"name": "photo", "required": True}},
        {"id": "load", "type": "comfyui.LoadImage", "inputs": {"image": link("img", "image")}},
        {"id": "inv", "type": "comfyui.ImageInvert", "inputs": {"image": link("load", "image")}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("inv", "image")}, "params": {"name": "o"}},
    ]}, registry(), check_availability=False)
    (seg,) = plan(g)
    image = Image.new("RGB", (8, 8))
    job = build_job(seg, g, {"load": {"image": image}, "inv": {}}, execution_id="ex_abc", policy=POLICY,
                    encode=lambda im: b"PNG")
    (upload,) = job.uploads
    assert upload.name == "nl-ex_abc-load-image.png" and upload.data == b"PNG"
    assert job.prompt["load"]["inputs"] == {"image": "nl-ex_abc-load-image.png"}


def test_a_list_of_images_into_an_image_input_is_one_batch_and_caps_apply() -> None:
    g = validate({"nodes": [
        {"id": "a", "type": "image.gradient", "params": {"width": 8, "height": 8}},
        {"id": "inv", "type": "comfyui.ImageInvert", "inputs": {"image": link("a", "image")}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("inv", "image")}, "params": {"name": "o"}},
    ]}, registry(), check_availability=False)
    (seg,) = plan(g)
    three = [Image.new("RGB", (8, 8)) for _ in range(3)]
    job = build_job(seg, g, {"inv": {"image": three}}, execution_id="e", policy=POLICY, encode=lambda im: b"x")
    assert [u.name for u in job.uploads] == ["nl-e-inv-image-0.png", "nl-e-inv-image-1.png", "nl-e-inv-image-2.png"]
    batch = job.prompt["inv"]["inputs"]["image"]
    assert job.prompt[batch[0]]["class_type"] == "ImageBatch"
    with pytest.raises(NodeError) as err:
        build_job(seg, g, {"inv": {"image": three * 2}}, execution_id="e", policy=POLICY, encode=lambda im: b"x")
    assert err.value.code == "batch_too_large"
    with pytest.raises(NodeError) as err:
        build_job(seg, g, {"inv": {"image": Image.new("RGB", (65, 64))}}, execution_id="e", policy=POLICY,
                  encode=lambda im: b"x")
    assert err.value.code == "image_too_large"


def test_caps_are_bounds_of_the_size_and_batch_inputs() -> None:
    spec = registry().get("comfyui.EmptyLatentImage")
    assert spec is not None
    ports = {p.name: p for p in spec.inputs}
    assert ports["width"].max == 64 and ports["batch_size"].max == 4
    assert spec.spec()["credits"] == {"per": "runSecond", "amount": 0.5, "maxSeconds": 30}


def test_the_estimate_holds_each_segment_as_one_line() -> None:
    # (the estimate reads no database for a graph without hosted nodes)
    billing = BillingService.__new__(BillingService)
    billing.own_keys = lambda _a: ()
    est = billing.estimate(sdxl_like(), account_id="a")
    lines = [p.public() for p in est.breakdown if p.node_type == "comfyui"]
    assert lines == [{"nodeId": "4", "nodeType": "comfyui", "credits": 15.0, "nodes": ["4", "5", "6", "7", "3", "8"]}]


def test_a_refusal_maps_comfyuis_node_errors_to_our_paths() -> None:
    g = sdxl_like()
    (seg,) = plan(g)
    job = build_job(seg, g, {"4": {"ckpt_name": "m.safetensors"}, "6": {"text": "x"}, "7": {"text": "y"},
                             "5": {"width": 64, "height": 64, "batch_size": 1}, "3": {}, "8": {}},
                    execution_id="e", policy=POLICY, encode=lambda im: b"x")
    refused = PromptRejected(
        "Prompt outputs failed validation", server="http://gpu1", error_type="prompt_outputs_failed_validation",
        details="", extra_info={}, node_errors={
            "4": ComfyNodeError(node_id="4", class_type="CheckpointLoaderSimple", errors=(InputError(
                type="value_not_in_list", message="Value not in list", details="ckpt_name: 'm.safetensors' not in []",
                input_name="ckpt_name", extra_info={}),), dependent_outputs=("9",))})
    error = _rejection(refused, job, g, seg)
    assert error.code == "comfyui_prompt_rejected" and error.node_id == "4"
    assert error.extra is not None and error.extra["details"] == [
        {"path": "nodes[1].inputs.ckpt_name", "message": "Value not in list: ckpt_name: 'm.safetensors' not in []"}]


def test_an_execution_error_on_an_added_node_names_the_member_it_serves() -> None:
    g = sdxl_like()
    (seg,) = plan(g)
    job = build_job(seg, g, {"4": {"ckpt_name": "m.safetensors"}, "6": {}, "7": {}, "5": {}, "3": {}, "8": {}},
                    execution_id="e", policy=POLICY, encode=lambda im: b"x")
    added = job.pickups[0].node
    entry = HistoryEntry(prompt_id="p", status="error", completed=False, outputs={}, messages=(
        ("execution_error", {"node_id": added, "node_type": "PreviewImage", "exception_type": "RuntimeError",
                             "exception_message": "boom", "traceback": []}),))
    outcome = entry.outcome
    assert not isinstance(outcome, type(None))
    error = _failure(outcome, job, g, seg)  # type: ignore[arg-type]
    assert error.node_id == "8" and error.code == "comfyui_execution_error"
    assert error.extra == {"comfyui": {"nodeId": added, "classType": "PreviewImage", "exceptionType": "RuntimeError",
                                       "exceptionMessage": "boom"}}
