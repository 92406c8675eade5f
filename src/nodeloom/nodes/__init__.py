"""Built-in node packs. Each module exposes `nodes() -> list[type[Node]]`; nothing registers on import."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from nodeloom.engine.node import Node

PACKS: tuple[str, ...] = (
    "nodeloom.nodes.core",
    "nodeloom.nodes.util",
    "nodeloom.nodes.workflow_io",
    "nodeloom.nodes.text",
    "nodeloom.nodes.prompt",
    "nodeloom.nodes.logic",
    "nodeloom.nodes.lists",
    "nodeloom.nodes.image",
    "nodeloom.nodes.image_adjust",
    "nodeloom.nodes.image_compose",
    "nodeloom.nodes.image_mask",
    "nodeloom.nodes.image_analyze",
    "nodeloom.nodes.video",
    "nodeloom.nodes.models",
    "nodeloom.nodes.hosted",
)


def builtin_nodes(packs: tuple[str, ...] = PACKS) -> list[type[Node]]:
    out: list[type[Node]] = []
    for name in packs:
        factory: Callable[[], list[type[Node]]] = import_module(name).nodes
        out.extend(factory())
    return out
