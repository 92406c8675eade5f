"""The local node packs as a catalogue: they register beside core, and every declaration is complete."""

from __future__ import annotations

import json

import pytest
from tests.nodes.helpers import pack_nodes

from nodeloom.engine.registry import Registry
from nodeloom.nodes import core


def test_packs_register_beside_core_without_clashes() -> None:
    registry = Registry([*pack_nodes(), *core.nodes()])
    assert len(pack_nodes()) >= 95
    assert len(registry) == len(pack_nodes()) + len(core.nodes())


@pytest.mark.parametrize("node_type", pack_nodes(), ids=lambda t: t.type)
def test_every_node_declares_itself_fully(node_type: type) -> None:
    spec = node_type.spec()
    category, _, name = spec["type"].partition(".")
    assert category and name and name == name.lower()
    assert spec["description"].endswith(".") and spec["description"][0].isupper()
    assert spec["displayName"] != spec["type"]
    assert spec["resources"] == "cpu"
    assert spec["credits"] in (0, 0.1)
    if node_type.role != "output":
        assert spec["outputs"], "a node without outputs does nothing another node can use"
    json.dumps(spec)  # the catalogue must serialise as-is
    names = [p["name"] for p in spec["inputs"]] + [p["name"] for p in spec["params"]]
    assert len(names) == len(set(names)), "a param and an input with one name would collide in run()"


def test_seeded_random_nodes_are_deterministic_and_seed_input_is_not() -> None:
    by_type = {t.type: t for t in pack_nodes()}
    assert by_type["math.random"].deterministic and by_type["text.wildcard"].deterministic
    assert not by_type["input.seed"].deterministic


def test_numeric_params_carry_their_constraints() -> None:
    by_type = {t.type: t.spec() for t in pack_nodes()}
    radius = next(p for p in by_type["image.blur"]["params"] if p["name"] == "radius")
    assert radius["constraints"] == {"min": 0, "max": 250}
    mode = next(p for p in by_type["text.case"]["params"] if p["name"] == "mode")
    assert "snake" in mode["constraints"]["enum"]
    color = next(p for p in by_type["image.solid"]["params"] if p["name"] == "color")
    assert color["constraints"]["format"] == "color"
