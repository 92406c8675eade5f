"""Node types learnt at run time (engine/registry.py: NodeSource): the registry asks its source on every lookup,
so types that appear or disappear while the process runs (a ComfyUI server gains a node pack) are seen at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from nodeloom.engine.errors import GraphError
from nodeloom.engine.graph import validate
from nodeloom.engine.node import Context, Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Port
from nodeloom.nodes import builtin_nodes


def learnt(name: str) -> type[Node]:
    class Learnt(Node):
        type = name
        display_name = name
        inputs = (Port("text", "text"),)
        outputs = (Port("text", "text"),)

        async def run(self, ctx: Context, /, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return {"text": kwargs["text"]}

    return Learnt


class Source:
    prefix = "ext."

    def __init__(self) -> None:
        self.types: dict[str, type[Node]] = {}
        self.down: set[str] = set()

    def get(self, name: str) -> type[Node] | None:
        return self.types.get(name)

    def all(self) -> Iterable[type[Node]]:
        return list(self.types.values())

    def unavailable_reason(self, name: str) -> str | None:
        return "its server is down" if name in self.down else None

    def pinned(self, raw: Any) -> Iterable[type[Node]]:
        return ()


GRAPH = {"nodes": [
    {"id": "p", "type": "input.text", "params": {"name": "p"}},
    {"id": "x", "type": "ext.upper", "inputs": {"text": {"from": "p", "output": "text"}}},
    {"id": "o", "type": "output.text", "inputs": {"text": {"from": "x", "output": "text"}}, "params": {"name": "o"}},
]}


def test_types_learnt_while_running_are_seen_at_once() -> None:
    source = Source()
    registry = Registry(builtin_nodes(), sources=[source])
    static = len(registry)
    assert registry.get("ext.upper") is None and "ext.upper" not in registry
    with pytest.raises(GraphError) as refused:
        validate(GRAPH, registry)
    assert refused.value.details[0]["path"] == "nodes[1].type"

    source.types["ext.upper"] = learnt("ext.upper")
    assert registry.get("ext.upper") is source.types["ext.upper"] and "ext.upper" in registry
    assert len(registry) == static + 1 and "ext.upper" in [t.type for t in registry]
    assert [n["type"] for n in registry.catalogue() if n["type"] == "ext.upper"] == ["ext.upper"]
    assert validate(GRAPH, registry).order == ["p", "x", "o"]

    # availability is the source's, asked each time (not remembered like a built-in type's)
    source.down.add("ext.upper")
    assert registry.unavailable_reason("ext.upper") == "its server is down"
    with pytest.raises(GraphError):
        validate(GRAPH, registry)
    source.down.clear()
    assert registry.unavailable_reason("ext.upper") is None


def test_a_source_only_answers_for_its_prefix() -> None:
    source = Source()
    source.types["text.template"] = learnt("text.template")  # not under its prefix: never asked for it
    registry = Registry(builtin_nodes(), sources=[source])
    assert registry.get("text.template") is not source.types["text.template"]
