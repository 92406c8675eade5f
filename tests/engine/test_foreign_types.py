"""Foreign port types (ComfyUI's own kinds, `comfyui:MODEL` …) and value constraints on input ports.

A foreign type links only to exactly the same type (never to or from a native type, not even `any` or `json`),
never fans out and takes no literal; ComfyUI's wildcard `comfyui:*` takes a link of any type. An input's `choices`,
`min` and `max` refuse literals outside them at `nodes[i].inputs.<name>`. Native nodes behave as before.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from nodeloom.engine.errors import GraphError
from nodeloom.engine.graph import validate
from nodeloom.engine.node import Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import (
    FOREIGN_ANY,
    SCALAR_TYPES,
    Port,
    check_value,
    compatible,
    fans_out,
    is_foreign,
    list_of,
    valid_type,
)
from nodeloom.nodes import builtin_nodes

MODEL = "comfyui:MODEL"
LATENT = "comfyui:LATENT"


class LoadModel(Node):
    type = "fx.load_model"
    outputs = (Port("model", MODEL), Port("models", list_of(MODEL)))


class EmptyLatent(Node):
    type = "fx.empty_latent"
    outputs = (Port("latent", LATENT),)


class Sample(Node):
    type = "fx.sample"
    inputs: ClassVar[tuple[Port, ...]] = (
        Port("model", MODEL),
        Port("latent", LATENT, required=False),
        Port("sampler", "text", required=False, choices=("euler", "heun")),
        Port("steps", "integer", required=False, default=20, min=1, max=100),
        Port("cfg", "number", required=False, min=0.0, max=30.0),
    )
    outputs = (Port("latent", LATENT),)


class Preview(Node):
    type = "fx.preview"
    inputs = (Port("source", FOREIGN_ANY),)
    outputs = (Port("text", "text"),)


class Batch(Node):
    """A ComfyUI IMAGE input: a batch, or one native image as a batch of one."""

    type = "fx.batch"
    inputs = (Port("image", "list<image>", accepts_one=True),)
    outputs = (Port("image", "list<image>"),)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry([*builtin_nodes(), LoadModel, EmptyLatent, Sample, Preview, Batch])


def errors_of(graph: Any, registry: Registry) -> list[dict[str, str]]:
    with pytest.raises(GraphError) as info:
        validate(graph, registry)
    return info.value.details


def link(source: str, output: str) -> dict[str, str]:
    return {"from": source, "output": output}


# --- the types ------------------------------------------------------------------------------------------------------


def test_foreign_types_are_valid_port_types() -> None:
    assert valid_type(MODEL) and valid_type(list_of(LATENT)) and valid_type(FOREIGN_ANY)
    assert is_foreign(MODEL) and is_foreign(list_of(list_of(MODEL))) and not is_foreign("list<image>")
    for bad in ("comfyui:", "comfyui:A B", "comfyui:<x>", "other:MODEL", "MODEL"):
        assert not valid_type(bad), bad


def test_a_foreign_type_links_only_to_itself() -> None:
    assert compatible(MODEL, MODEL) and compatible(list_of(MODEL), list_of(MODEL))
    assert not compatible(MODEL, LATENT) and not compatible(LATENT, MODEL)
    for native in sorted(SCALAR_TYPES) + ["list<image>", "list<any>"]:
        assert not compatible(MODEL, native), native
        assert not compatible(native, MODEL), native
        assert not compatible(list_of(MODEL), native) and not compatible(native, list_of(MODEL)), native


def test_a_foreign_type_never_fans_out() -> None:
    assert not compatible(list_of(MODEL), MODEL)
    assert not fans_out(list_of(MODEL), MODEL)
    assert not fans_out(list_of(MODEL), "any") and not fans_out("list<text>", MODEL)


def test_the_wildcard_takes_every_type() -> None:
    for src in [MODEL, list_of(LATENT), "text", "image", "list<image>", "any", "json"]:
        assert compatible(src, FOREIGN_ANY), src
    assert not compatible(FOREIGN_ANY, "any") and not compatible(FOREIGN_ANY, MODEL)


def test_native_types_behave_as_before() -> None:
    assert compatible("integer", "number") and compatible("json", "list<text>") and compatible("text", "any")
    assert not compatible("image", "list<image>") and not fans_out("image", "list<image>")
    assert fans_out("list<image>", "image")
    assert Port("x", "image").takes("image") and not Port("x", "list<image>").takes("image")
    assert Port("x", "text").public()["constraints"] == {}


def test_a_registry_accepts_foreign_ports(registry: Registry) -> None:
    sample = registry.get("fx.sample")
    assert sample is not None
    spec = sample.spec()
    assert spec["inputs"][0]["type"] == MODEL
    assert spec["inputs"][2]["constraints"] == {"enum": ["euler", "heun"]}
    assert spec["inputs"][3]["constraints"] == {"min": 1, "max": 100}


# --- links ----------------------------------------------------------------------------------------------------------


def test_foreign_links_validate(registry: Registry) -> None:
    g = validate({"nodes": [
        {"id": "m", "type": "fx.load_model"},
        {"id": "l", "type": "fx.empty_latent"},
        {"id": "s", "type": "fx.sample", "inputs": {"model": link("m", "model"), "latent": link("l", "latent"),
                                                     "sampler": "heun", "steps": 30.0, "cfg": 7}},
        {"id": "p", "type": "fx.preview", "inputs": {"source": link("s", "latent")}},
        {"id": "o", "type": "output.text", "params": {"name": "o"}, "inputs": {"text": link("p", "text")}},
    ]}, registry)
    assert g.nodes["s"].literals == {"sampler": "heun", "steps": 30, "cfg": 7}
    assert g.nodes["s"].fanned_inputs == frozenset()
    assert g.nodes["s"].output_types == {"latent": LATENT}


def test_a_foreign_output_does_not_link_to_another_foreign_type(registry: Registry) -> None:
    d = errors_of({"nodes": [
        {"id": "l", "type": "fx.empty_latent"},
        {"id": "s", "type": "fx.sample", "inputs": {"model": link("l", "latent")}},
    ]}, registry)
    assert [x["path"] for x in d] == ["nodes[1].inputs.model"]
    assert "type mismatch" in d[0]["message"] and LATENT in d[0]["message"] and MODEL in d[0]["message"]


def test_a_foreign_output_does_not_link_to_native_any(registry: Registry) -> None:
    d = errors_of({"nodes": [
        {"id": "m", "type": "fx.load_model"},
        {"id": "o", "type": "output.json", "params": {"name": "o"}, "inputs": {"value": link("m", "model")}},
    ]}, registry)
    assert [x["path"] for x in d] == ["nodes[1].inputs.value"]


def test_a_native_output_does_not_link_to_a_foreign_input(registry: Registry) -> None:
    for source, output in [("input.text", "text"), ("input.json", "value"), ("input.list", "value")]:
        d = errors_of({"nodes": [
            {"id": "i", "type": source, "params": {"name": "i"}},
            {"id": "s", "type": "fx.sample", "inputs": {"model": link("i", output)}},
        ]}, registry)
        assert [x["path"] for x in d] == ["nodes[1].inputs.model"], source


def test_a_list_of_a_foreign_type_does_not_fan_out(registry: Registry) -> None:
    d = errors_of({"nodes": [
        {"id": "m", "type": "fx.load_model"},
        {"id": "s", "type": "fx.sample", "inputs": {"model": link("m", "models")}},
    ]}, registry)
    assert [x["path"] for x in d] == ["nodes[1].inputs.model"]


def test_a_foreign_input_takes_no_literal(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "s", "type": "fx.sample", "inputs": {"model": "sd15.safetensors"}}]}, registry)
    assert [x["path"] for x in d] == ["nodes[0].inputs.model"]
    assert "only through a link" in d[0]["message"]
    assert check_value(FOREIGN_ANY, {"any": "thing"}) == ({"any": "thing"}, None)


def test_one_native_image_enters_a_batch_input_that_accepts_one(registry: Registry) -> None:
    g = validate({"nodes": [
        {"id": "g", "type": "image.gradient"},
        {"id": "b", "type": "fx.batch", "inputs": {"image": link("g", "image")}},
        {"id": "c", "type": "fx.batch", "inputs": {"image": link("b", "image")}},
    ]}, registry)
    assert g.nodes["b"].fanned_inputs == frozenset() and g.nodes["b"].output_types == {"image": "list<image>"}
    # a native list<image> input still refuses one image
    d = errors_of({"nodes": [
        {"id": "g", "type": "image.gradient"},
        {"id": "grid", "type": "image.grid", "inputs": {"images": link("g", "image")}},
    ]}, registry)
    assert [x["path"] for x in d] == ["nodes[1].inputs.images"]


# --- constraints ----------------------------------------------------------------------------------------------------


def test_a_literal_outside_the_choices_is_refused_with_its_path(registry: Registry) -> None:
    d = errors_of({"nodes": [
        {"id": "m", "type": "fx.load_model"},
        {"id": "s", "type": "fx.sample", "inputs": {"model": link("m", "model"), "sampler": "dpmpp"}},
    ]}, registry)
    assert d == [{"path": "nodes[1].inputs.sampler", "message": "must be one of euler, heun"}]


@pytest.mark.parametrize(("name", "value", "message"), [
    ("steps", 0, "must be >= 1"),
    ("steps", 101, "must be <= 100"),
    ("steps", 2.5, "expected an integer"),
    ("cfg", -0.5, "must be >= 0"),
    ("cfg", 30.5, "must be <= 30"),
    ("sampler", 3, "expected a string"),
])
def test_a_number_outside_its_bounds_is_refused_with_its_path(registry: Registry, name: str, value: Any,
                                                              message: str) -> None:
    d = errors_of({"nodes": [
        {"id": "m", "type": "fx.load_model"},
        {"id": "s", "type": "fx.sample", "inputs": {"model": link("m", "model"), name: value}},
    ]}, registry)
    assert d == [{"path": f"nodes[1].inputs.{name}", "message": message}]


def test_links_are_not_checked_against_constraints(registry: Registry) -> None:
    validate({"nodes": [
        {"id": "m", "type": "fx.load_model"},
        {"id": "t", "type": "input.text", "params": {"name": "t", "default": "anything"}},
        {"id": "i", "type": "input.integer", "params": {"name": "i", "default": 1000}},
        {"id": "s", "type": "fx.sample", "inputs": {"model": link("m", "model"), "sampler": link("t", "text"),
                                                     "steps": link("i", "value")}},
    ]}, registry)


def test_long_and_empty_choice_lists_read_well() -> None:
    many = tuple(f"c{i}" for i in range(100))
    _, message = check_value("text", "x", enum=many)
    assert message is not None and message.startswith("must be one of c0, c1") and message.endswith("(100 choices)")
    assert "c30" not in message
    assert check_value("text", "x", enum=())[1] == "no value is allowed: there are no choices"
