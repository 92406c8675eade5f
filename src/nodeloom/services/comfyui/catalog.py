"""`comfyui.*` node types for the registry, learnt from the pool's `/object_info` (engine/registry.py: NodeSource).

The types are rebuilt when the pool's `/object_info` changes and are otherwise kept for `ttl_s` seconds, so
validating a graph does not read the pool's state for every node. The allow-list (default: every class that
is not a paid partner `api_node`) decides which classes exist at all; a type that no healthy server offers
now is listed but unavailable.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nodeloom.clock import Clock
from nodeloom.engine.node import Node
from nodeloom.services.comfyui.nodes import ComfyPolicy, comfy_node_types
from nodeloom.services.comfyui.pool import ComfyPool, PoolUnavailable, merge_object_info

PREFIX = "comfyui."
#: where a published version keeps the `/object_info` entries of the ComfyUI classes it uses
PIN_KEY = "comfyui"


class ComfyNodeSource:
    def __init__(self, pool: ComfyPool, *, clock: Clock, ttl_s: float = 5.0, policy: ComfyPolicy | None = None,
                 allowed: Callable[[str, dict[str, Any]], bool] | None = None):
        self.pool = pool
        self.clock = clock
        self.ttl_s = ttl_s
        self.policy = policy or ComfyPolicy()
        self.allowed = allowed or self.policy.allowed
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._stamp: tuple[int, str | None] | None = None
        self._types: dict[str, type[Node]] = {}
        self._classes: dict[str, set[str]] = {}  # server → the classes of its last /object_info
        self._healthy: set[str] = set()
        self._pins: OrderedDict[str, list[type[Node]]] = OrderedDict()  # snapshot digest → its types (LRU)

    @property
    def prefix(self) -> str:
        return PREFIX

    def _current(self) -> dict[str, type[Node]]:
        """The types as of the pool's last `/object_info` (no pool configured: none). A pool that never answered
        raises PoolUnavailable (503 `comfyui_unavailable`) for whoever needs a `comfyui.*` type."""
        if not self.pool.configured:
            return {}
        with self._lock:
            now = self.clock.time()
            if now - self._read_at >= self.ttl_s:
                # the stamp before the health: a check recorded in between then shows as old types with new health,
                # never as new types with old health (a type listed unavailable until the next read)
                stamp = self.pool.object_info_stamp()
                healthy = self.pool.healthy_urls()
                if stamp != self._stamp:  # a server's /object_info changed (new node pack, new model files)
                    infos = self.pool.object_infos()
                    info = merge_object_info(infos, healthy=healthy)
                    self._types = {t.type: t for t in comfy_node_types(info, allowed=self.allowed, policy=self.policy)}
                    self._classes = {url: set(server_info) for url, server_info in infos.items()}
                    self._stamp = stamp
                # which types a healthy server offers now: from the class names kept above, no JSON read again
                self._healthy = {name for url in healthy for name in self._classes.get(url, ())}
                self._read_at = now
            return self._types

    def get(self, name: str) -> type[Node] | None:
        return self._current().get(name)

    def all(self) -> Iterable[type[Node]]:
        """Every type (none while no server of the pool ever answered: listing the catalogue is not an error)."""
        try:
            return list(self._current().values())
        except PoolUnavailable:
            return []

    def unavailable_reason(self, name: str) -> str | None:
        node_type = self._current().get(name)
        if node_type is None:
            return "unknown ComfyUI node type"
        if name.removeprefix(PREFIX) not in self._healthy:
            return "no healthy ComfyUI server of the pool offers this node type now"
        return None

    # publishing: the snapshot ------------------------------------------------------------------------------------
    def pin(self, raw: Any) -> Any:
        """`raw` with the `/object_info` entries of the ComfyUI classes it uses (WorkflowService.publish): its runs are
        checked against them, not against whatever the pool serves later."""
        classes = _classes(raw)
        if not classes or not self.pool.configured:
            return raw
        info = self.pool.object_info()
        entries = {c: info[c] for c in sorted(classes) if c in info}
        return {**raw, PIN_KEY: {"objectInfo": entries}}

    @staticmethod
    def unpin(raw: Any) -> Any:
        """A draft never carries a snapshot: one sent by a client is dropped (it could declare any inputs)."""
        if isinstance(raw, dict) and PIN_KEY in raw:
            return {k: v for k, v in raw.items() if k != PIN_KEY}
        return raw

    def pinned(self, raw: Any) -> Iterable[type[Node]]:
        """The types a published graph pinned, built with today's policy (its allow-list and caps still apply)."""
        pin = raw.get(PIN_KEY) if isinstance(raw, dict) else None
        entries = pin.get("objectInfo") if isinstance(pin, dict) else None
        if not isinstance(entries, dict) or not entries:
            return ()
        digest = hashlib.sha256(json.dumps(entries, sort_keys=True, default=str).encode()).hexdigest()
        with self._lock:
            found = self._pins.get(digest)
            if found is not None:
                self._pins.move_to_end(digest)
                return found
        types = comfy_node_types(entries, allowed=self.allowed, policy=self.policy)
        with self._lock:
            self._pins[digest] = types
            while len(self._pins) > 256:
                self._pins.popitem(last=False)
        return types


def _classes(raw: Any) -> set[str]:
    nodes = raw.get("nodes") if isinstance(raw, Mapping) else None
    if not isinstance(nodes, list):
        return set()
    return {n["type"][len(PREFIX):] for n in nodes
            if isinstance(n, Mapping) and isinstance(n.get("type"), str) and n["type"].startswith(PREFIX)}
