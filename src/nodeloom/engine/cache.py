"""Merkle cache keys: a node's key hashes its type, version, params, literal inputs and its parents' keys.

Computing every key is linear in the graph size (each node hashes only its direct parents' keys).
Nodes that are not deterministic get a key salted with the execution id, so neither they nor anything
downstream of them is ever served from the cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from nodeloom.engine.graph import Graph, input_name


class Cache(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, outputs: dict[str, Any]) -> None: ...


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def merkle_keys(graph: Graph, *, inputs: Mapping[str, Any], salt: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for nid in graph.order:
        node = graph.nodes[nid]
        h = hashlib.sha256()
        h.update(f"{node.type.type}@{node.type.version}\0".encode())
        h.update(_canonical(node.params).encode())
        for name in sorted(node.literals):
            h.update(f"\0lit:{name}=".encode() + _canonical(node.literals[name]).encode())
        for name in sorted(node.links):
            link = node.links[name]
            h.update(f"\0link:{name}={keys[link.source]}.{link.output}".encode())
        if node.type.role == "input":
            h.update(b"\0input=" + _canonical(inputs.get(input_name(node))).encode())
        if not node.type.is_deterministic(node.params):
            h.update(f"\0salt={salt}:{nid}".encode())
        keys[nid] = h.hexdigest()
    return keys
