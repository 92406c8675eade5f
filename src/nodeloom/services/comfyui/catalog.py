"""`comfyui.*` node types for the registry, learnt from the pool's `/object_info` (engine/registry.py: NodeSource).

The types are rebuilt when the pool's `/object_info` changes and are otherwise kept for `ttl_s` seconds, so
validating a graph does not read the pool's state for every node. The allow-list (default: every class that
is not a paid partner `api_node`) decides which classes exist at all; a type that no healthy server offers
now is listed but unavailable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from nodeloom.clock import Clock
from nodeloom.engine.node import Node
from nodeloom.services.comfyui.nodes import comfy_node_types, default_allowed
from nodeloom.services.comfyui.pool import ComfyPool, merge_object_info

PREFIX = "comfyui."


class ComfyNodeSource:
    def __init__(self, pool: ComfyPool, *, clock: Clock, ttl_s: float = 5.0,
                 allowed: Callable[[str, dict[str, Any]], bool] = default_allowed):
        self.pool = pool
        self.clock = clock
        self.ttl_s = ttl_s
        self.allowed = allowed
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._stamp: tuple[int, str | None] | None = None
        self._types: dict[str, type[Node]] = {}
        self._classes: dict[str, set[str]] = {}  # server → the classes of its last /object_info
        self._healthy: set[str] = set()

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
                healthy = self.pool.healthy_urls()
                stamp = self.pool.object_info_stamp()
                if stamp != self._stamp:  # a server's /object_info changed (new node pack, new model files)
                    infos = self.pool.object_infos()
                    info = merge_object_info(infos, healthy=healthy)
                    self._types = {t.type: t for t in comfy_node_types(info, allowed=self.allowed)}
                    self._classes = {url: set(server_info) for url, server_info in infos.items()}
                    self._stamp = stamp
                # which types a healthy server offers now: from the class names kept above, no JSON read again
                self._healthy = {name for url in healthy for name in self._classes.get(url, ())}
                self._read_at = now
            return self._types

    def get(self, name: str) -> type[Node] | None:
        return self._current().get(name)

    def all(self) -> Iterable[type[Node]]:
        return list(self._current().values())

    def unavailable_reason(self, name: str) -> str | None:
        node_type = self._current().get(name)
        if node_type is None:
            return "unknown ComfyUI node type"
        if name.removeprefix(PREFIX) not in self._healthy:
            return "no healthy ComfyUI server of the pool offers this node type now"
        return None
