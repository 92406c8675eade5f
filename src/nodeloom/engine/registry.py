"""A registry *instance* of node types. Packs return lists of classes; nothing registers on import."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from nodeloom.engine.node import Node
from nodeloom.engine.schema import Param, Port, valid_type

AvailabilityHook = Callable[[type[Node]], str | None]


class NodeSource(Protocol):
    """Node types learnt at run time under one prefix (ComfyUI's `comfyui.*`, from its servers' `/object_info`):
    they may change while the process runs, so the registry asks the source each time instead of keeping them."""

    @property
    def prefix(self) -> str: ...

    def get(self, name: str) -> type[Node] | None: ...

    def all(self) -> Iterable[type[Node]]: ...

    def unavailable_reason(self, name: str) -> str | None: ...

    def pinned(self, raw: Any) -> Iterable[type[Node]]:
        """Types a graph carries pinned (a published workflow's snapshot of its ComfyUI types): they take the place
        of the live ones when that graph is checked."""
        ...


class Registry:
    """Node types by name. `availability_hook` adds run-time reasons (e.g. a vendor key not configured);
    `sources` add node types learnt at run time (their names start with the source's prefix)."""

    def __init__(self, node_types: Iterable[type[Node]] = (), *, availability_hook: AvailabilityHook | None = None,
                 sources: Sequence[NodeSource] = ()):
        self._types: dict[str, type[Node]] = {}
        self._hook = availability_hook
        self._available: dict[str, str | None] = {}
        self._sources = tuple(sources)
        self._pinned: dict[str, type[Node]] = {}
        for t in node_types:
            self.add(t)

    def for_graph(self, raw: Any) -> Registry:
        """The registry to check `raw` with: itself, or a view where the types the graph pins replace the live ones
        of the same names (`NodeSource.pinned`)."""
        pinned = {t.type: t for source in self._sources for t in source.pinned(raw)}
        if not pinned:
            return self
        view = copy.copy(self)
        view._pinned = pinned
        return view

    def _source(self, name: str) -> NodeSource | None:
        return next((src for src in self._sources if name.startswith(src.prefix)), None)

    def add(self, node_type: type[Node]) -> None:
        if not node_type.type or "." not in node_type.type:
            raise ValueError(f"node type name must be 'category.name': {node_type.type!r}")
        if node_type.type in self._types:
            raise ValueError(f"duplicate node type {node_type.type}")
        names = [p.name for p in node_type.inputs] + [p.name for p in node_type.params]
        if len(names) != len(set(names)):
            raise ValueError(f"{node_type.type}: an input and a param share a name ({sorted(names)})")
        declared: list[Port | Param] = [*node_type.inputs, *node_type.outputs, *node_type.params]
        for port in declared:
            if not valid_type(port.type):
                raise ValueError(f"{node_type.type}.{port.name}: unknown port type {port.type}")
        # `secrets = ("KEY")` is a string, not a tuple: it would declare the names K, E and Y
        if not isinstance(node_type.secrets, tuple) or not all(isinstance(n, str) and n for n in node_type.secrets):
            raise ValueError(f"{node_type.type}: secrets must be a tuple of names, e.g. (\"MY_API_KEY\",)")
        self._types[node_type.type] = node_type

    def get(self, name: str) -> type[Node] | None:
        if self._pinned and name in self._pinned:
            return self._pinned[name]
        found = self._types.get(name)
        if found is None and (source := self._source(name)) is not None:
            return source.get(name)
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[type[Node]]:
        learnt = [t for source in self._sources for t in source.all()]
        return iter(sorted([*self._types.values(), *learnt], key=lambda t: t.type))

    def __len__(self) -> int:
        return len(self._types) + sum(1 for source in self._sources for _ in source.all())

    def unavailable_reason(self, name: str) -> str | None:
        """None when the node type can run here, else why not (computed once per registry for its own types;
        asked of the source each time for types learnt at run time)."""
        if name not in self._types and (source := self._source(name)) is not None:
            return source.unavailable_reason(name)
        if name not in self._available:
            node_type = self._types[name]
            reason = node_type.availability()
            if reason is None and self._hook is not None:
                reason = self._hook(node_type)
            self._available[name] = reason
        return self._available[name]

    def catalogue(self) -> list[dict[str, Any]]:
        return [t.spec(unavailable_reason=self.unavailable_reason(t.type)) for t in self]
