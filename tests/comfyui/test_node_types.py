"""`comfyui.*` node types built from a real ComfyUI's `/object_info` (services/comfyui/nodes.py), and graphs that
mix them with native nodes, validated by the engine like any other (API.md "ComfyUI workflows")."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from nodeloom.engine.errors import GraphError, NodeError
from nodeloom.engine.graph import Graph, validate
from nodeloom.engine.node import Node
from nodeloom.engine.registry import Registry
from nodeloom.nodes import builtin_nodes
from nodeloom.services.comfyui.expose import expose
from nodeloom.services.comfyui.nodes import ComfyNode, comfy_node_types


@pytest.fixture(scope="module")
def types(object_info: dict[str, Any]) -> dict[str, type[Node]]:
    return {t.type: t for t in comfy_node_types(object_info)}


@pytest.fixture(scope="module")
def registry(types: dict[str, type[Node]]) -> Registry:
    return Registry([*builtin_nodes(), *types.values()])


def comfy(types: dict[str, type[Node]], name: str) -> type[ComfyNode]:
    t = types[f"comfyui.{name}"]
    assert issubclass(t, ComfyNode)
    return t


def ports(ports: tuple[Any, ...]) -> dict[str, Any]:
    return {p.name: p for p in ports}


def check(graph: dict[str, Any], registry: Registry) -> Graph:
    return validate(graph, registry)


def errors_of(graph: dict[str, Any], registry: Registry) -> list[dict[str, str]]:
    with pytest.raises(GraphError) as info:
        validate(graph, registry)
    return info.value.details


def link(source: str, output: str) -> dict[str, str]:
    return {"from": source, "output": output}


# --- the types ------------------------------------------------------------------------------------------------------


def test_every_class_but_the_api_nodes_becomes_a_node_type(object_info: dict[str, Any],
                                                           types: dict[str, type[Node]]) -> None:
    api_nodes = {name for name, entry in object_info.items() if entry.get("api_node")}
    assert api_nodes, "the server lists its paid partner nodes"
    assert {t.removeprefix("comfyui.") for t in types} == set(object_info) - api_nodes
    for name, t in types.items():
        assert t.type == name and issubclass(t, ComfyNode) and t.comfy_class == name.removeprefix("comfyui.")
        assert t.resources == "gpu" and t.deterministic is False
        assert t.category() == f"comfyui/{object_info[t.comfy_class]['category']}"
        assert t.comfy_output_node is (object_info[t.comfy_class].get("output_node") is True)
        json.dumps(t.spec())  # the catalogue entry is JSON


def test_a_registry_takes_every_type_verbatim(registry: Registry, types: dict[str, type[Node]]) -> None:
    assert "comfyui.Epsilon Scaling" in types  # ComfyUI class names may hold spaces: kept as they are
    for name in types:
        assert registry.get(name) is types[name]


def test_an_allow_list_decides_which_classes_exist(object_info: dict[str, Any]) -> None:
    only = comfy_node_types(object_info, allowed=lambda name, entry: name in {"ImageInvert", "SaveImage"})
    assert sorted(t.type for t in only) == ["comfyui.ImageInvert", "comfyui.SaveImage"]
    paid = next(name for name, entry in object_info.items() if entry.get("api_node"))
    assert [t.type for t in comfy_node_types(object_info, allowed=lambda name, entry: name == paid)] == [
        f"comfyui.{paid}"]


def test_ksampler(types: dict[str, type[Node]], object_info: dict[str, Any]) -> None:
    ks = comfy(types, "KSampler")
    assert ks.display_name == "KSampler" and ks.category() == "comfyui/sampling"
    assert [p.name for p in ks.inputs] == object_info["KSampler"]["input_order"]["required"]
    inputs = ports(ks.inputs)
    assert inputs["model"].type == "comfyui:MODEL" and inputs["model"].required
    assert inputs["positive"].type == inputs["negative"].type == "comfyui:CONDITIONING"
    assert inputs["latent_image"].type == "comfyui:LATENT"
    seed = inputs["seed"]
    assert seed.type == "integer" and seed.min == 0 and seed.max == 2**64 - 1 and seed.default == 0
    assert inputs["steps"].constraints() == {"min": 1, "max": 10000} and inputs["steps"].default == 20
    assert inputs["cfg"].type == "number" and inputs["cfg"].max == 100.0
    sampler = inputs["sampler_name"]
    assert sampler.type == "text" and sampler.choices is not None and "euler" in sampler.choices
    assert sampler.public()["constraints"]["enum"][0] == "euler"
    assert [(p.name, p.type) for p in ks.outputs] == [("latent", "comfyui:LATENT")]


def test_the_type_mapping(types: dict[str, type[Node]]) -> None:
    invert = comfy(types, "ImageInvert")
    assert [(p.name, p.type) for p in invert.inputs] == [("image", "list<image>")]
    assert [(p.name, p.type) for p in invert.outputs] == [("image", "list<image>")]
    assert ports(comfy(types, "ImageToMask").outputs)["mask"].type == "list<mask>"
    assert ports(comfy(types, "MaskToImage").inputs)["mask"].type == "list<mask>"
    assert ports(comfy(types, "CreateVideo").outputs)["video"].type == "video"
    assert ports(comfy(types, "PrimitiveString").outputs)["string"].type == "text"
    assert ports(comfy(types, "PreviewAny").inputs)["source"].type == "comfyui:*"
    assert ports(comfy(types, "RebatchImages").outputs)["image"].type == "list<list<image>>"  # output_is_list
    assert [(p.name, p.type) for p in comfy(types, "CheckpointLoaderSimple").outputs] == [
        ("model", "comfyui:MODEL"), ("clip", "comfyui:CLIP"), ("vae", "comfyui:VAE")]
    concat = ports(comfy(types, "StringConcatenate").inputs)
    assert concat["delimiter"].type == "text" and concat["delimiter"].choices is None
    blend = ports(comfy(types, "ImageBlend").inputs)["blend_mode"]  # the ["COMBO", {"options": …}] form
    assert blend.type == "text" and blend.choices is not None and "multiply" in blend.choices


def test_optional_inputs_are_not_required_and_hidden_ones_are_left_out(types: dict[str, type[Node]],
                                                                       object_info: dict[str, Any]) -> None:
    save = comfy(types, "SaveImage")
    assert [p.name for p in save.inputs] == ["images", "filename_prefix"]  # not the hidden prompt/extra_pnginfo
    assert ports(save.inputs)["filename_prefix"].default == "ComfyUI"
    with_optional = next(name for name, entry in object_info.items()
                         if not entry.get("api_node") and entry["input"].get("optional"))
    t = comfy(types, with_optional)
    order = object_info[with_optional]["input_order"]
    assert [p.name for p in t.inputs] == [*order.get("required", []), *order.get("optional", [])]
    optional = set(order["optional"])
    assert all(p.required is (p.name not in optional) for p in t.inputs)


def test_a_loader_takes_a_file_from_nodeloom_never_a_file_name(types: dict[str, type[Node]]) -> None:
    load = comfy(types, "LoadImage")
    image = ports(load.inputs)["image"]
    assert image.type == "image" and image.choices is None  # the server's files are never listed
    assert load.comfy_uploads == {"image": "image"}
    assert [(p.name, p.type) for p in load.outputs] == [("image", "list<image>"), ("mask", "list<mask>")]
    assert ports(comfy(types, "LoadVideo").inputs)["file"].type == "video"


def test_an_output_node_gives_its_results_by_the_exposed_port(types: dict[str, type[Node]]) -> None:
    assert [(p.name, p.type) for p in comfy(types, "SaveImage").outputs] == [("images", "list<image>")]
    assert [(p.name, p.type) for p in comfy(types, "PreviewAny").outputs] == [("text", "text")]
    assert comfy(types, "SaveImage").comfy_output_node and not comfy(types, "ImageInvert").comfy_output_node


def test_a_comfyui_node_does_not_run_in_process(types: dict[str, type[Node]]) -> None:
    node = comfy(types, "ImageInvert")()
    with pytest.raises(NodeError) as info:
        asyncio.run(node.run(None, image=[]))  # type: ignore[arg-type]
    assert info.value.code == "comfyui_not_runnable_here" and "ImageInvert" in info.value.message


# --- graphs ---------------------------------------------------------------------------------------------------------


def image_graph() -> dict[str, Any]:
    return {"nodes": [
        {"id": "empty", "type": "comfyui.EmptyImage",
         "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0}},
        {"id": "invert", "type": "comfyui.ImageInvert", "inputs": {"image": link("empty", "image")}},
        {"id": "save", "type": "comfyui.SaveImage",
         "inputs": {"images": link("invert", "image"), "filename_prefix": "nodeloom"}},
        {"id": "out", "type": "output.image", "params": {"name": "image"}, "inputs": {"image": link("save", "images")}},
    ]}


def test_a_comfyui_graph_validates(registry: Registry) -> None:
    g = check(image_graph(), registry)
    assert g.order == ["empty", "invert", "save", "out"]
    assert g.nodes["empty"].literals == {"width": 64, "height": 48, "batch_size": 1, "color": 0}
    assert g.nodes["save"].output_types == {"images": "list<image>"}
    assert g.outputs_schema() == [{"name": "image", "type": "list<image>", "nodeId": "out"}]


def test_inputs_with_defaults_may_be_left_out(registry: Registry) -> None:
    graph = image_graph()
    graph["nodes"][0]["inputs"] = {}
    graph["nodes"][2]["inputs"].pop("filename_prefix")
    check(graph, registry)


def test_a_missing_required_input_is_refused(registry: Registry) -> None:
    graph = image_graph()
    graph["nodes"][1]["inputs"] = {}
    assert [d["path"] for d in errors_of(graph, registry)] == ["nodes[1].inputs.image"]


def test_a_literal_outside_a_combo_or_its_bounds_is_refused_with_its_path(registry: Registry) -> None:
    graph = image_graph()
    graph["nodes"][0]["inputs"]["width"] = 0
    graph["nodes"].append({"id": "blend", "type": "comfyui.ImageBlend",
                           "inputs": {"image1": link("empty", "image"), "image2": link("invert", "image"),
                                      "blend_factor": 0.5, "blend_mode": "dodge"}})
    details = {d["path"]: d["message"] for d in errors_of(graph, registry)}
    assert details == {"nodes[0].inputs.width": "must be >= 1",
                       "nodes[4].inputs.blend_mode": "must be one of normal, multiply, screen, overlay, soft_light, "
                                                     "difference"}


def test_a_sampler_literal_outside_the_choices_is_refused(registry: Registry) -> None:
    graph = {"nodes": [
        {"id": "ckpt", "type": "comfyui.CheckpointLoaderSimple", "inputs": {"ckpt_name": "nope.safetensors"}},
        {"id": "latent", "type": "comfyui.EmptyLatentImage", "inputs": {}},
        {"id": "pos", "type": "comfyui.CLIPTextEncode", "inputs": {"text": "a fox", "clip": link("ckpt", "clip")}},
        {"id": "ks", "type": "comfyui.KSampler",
         "inputs": {"model": link("ckpt", "model"), "positive": link("pos", "conditioning"),
                    "negative": link("pos", "conditioning"), "latent_image": link("latent", "latent"),
                    "sampler_name": "euler_fast", "scheduler": "normal", "seed": -1}},
    ]}
    details = {d["path"]: d["message"] for d in errors_of(graph, registry)}
    assert details["nodes[3].inputs.sampler_name"].startswith("must be one of euler, ")
    assert details["nodes[3].inputs.seed"] == "must be >= 0"
    assert "nodes[0].inputs.ckpt_name" in details  # no model file on the test server: no name is allowed
    assert set(details) == {"nodes[0].inputs.ckpt_name", "nodes[3].inputs.sampler_name", "nodes[3].inputs.seed"}


def test_a_model_does_not_link_into_an_image(registry: Registry) -> None:
    graph = {"nodes": [
        {"id": "ckpt", "type": "comfyui.CheckpointLoaderSimple", "inputs": {}},
        {"id": "invert", "type": "comfyui.ImageInvert", "inputs": {"image": link("ckpt", "model")}},
        {"id": "preview", "type": "comfyui.PreviewAny", "inputs": {"source": link("ckpt", "model")}},
        {"id": "out", "type": "output.json", "params": {"name": "o"}, "inputs": {"value": link("ckpt", "vae")}},
    ]}
    details = errors_of(graph, registry)
    assert [d["path"] for d in details] == ["nodes[0].inputs.ckpt_name", "nodes[1].inputs.image",
                                            "nodes[3].inputs.value"]
    assert "comfyui:MODEL" in details[1]["message"] and "list<image>" in details[1]["message"]


def test_native_and_comfyui_nodes_mix(registry: Registry) -> None:
    """A single native image enters an IMAGE input as a batch of one; a ComfyUI batch fans out into a native image
    input; a ComfyUI STRING is text."""
    g = check({"nodes": [
        {"id": "grad", "type": "image.gradient", "params": {"width": 32, "height": 32}},
        {"id": "invert", "type": "comfyui.ImageInvert", "inputs": {"image": link("grad", "image")}},
        {"id": "resize", "type": "image.resize", "inputs": {"image": link("invert", "image")},
         "params": {"width": 16, "height": 16}},
        {"id": "grid", "type": "image.grid", "inputs": {"images": link("invert", "image")}},
        {"id": "s", "type": "comfyui.PrimitiveString", "inputs": {"value": "hello"}},
        {"id": "t", "type": "output.text", "params": {"name": "t"}, "inputs": {"text": link("s", "string")}},
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
        {"id": "cat", "type": "comfyui.StringConcatenate",
         "inputs": {"string_a": link("p", "text"), "string_b": link("s", "string"), "delimiter": " "}},
    ]}, registry)
    assert g.nodes["invert"].fanned_inputs == frozenset()
    assert g.nodes["invert"].output_types == {"image": "list<image>"}
    assert g.nodes["resize"].fanned_inputs == frozenset({"image"})
    assert g.nodes["grid"].fanned_inputs == frozenset()


def test_an_imported_workflow_validates_against_the_built_types(registry: Registry,
                                                                object_info: dict[str, Any]) -> None:
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}, "_meta": {"title": "Load Image"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "Invert Image"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ComfyUI"},
              "_meta": {"title": "Save Image"}},
    }
    result = expose(prompt, object_info)
    g = check(result.graph, registry)
    assert [s["name"] for s in g.inputs_schema()] == ["image"]
    assert [(s["name"], s["type"]) for s in g.outputs_schema()] == [("image", "list<image>")]
