"""Segments: nodes that run elsewhere, as one job (API.md "ComfyUI workflows", Segments).

A node type whose `segment` names a kind (`"comfyui"`) does not run in the worker: the nodes of that kind run in
segments, each one job on one remote server. `plan` cuts a validated graph into segments — a largest set of
connected nodes of one kind that no path leaves and re-enters — and the executor runs each segment as one unit
through the `SegmentRunner` registered for its kind (`RunOptions.segments`). Billing prices a segment as one line.

How the cut is made, per connected component C of one kind (linear in the graph per component):
- `depth(v)` = the most times a path from C to v leaves C (a link from a member of C to a non-member). Members of
  one depth that are linked to each other form a segment. A path that leaves a segment reaches a member of a
  greater depth, so it never re-enters the segment it left.
- A value of a type only that kind understands (a MODEL, a LATENT …) cannot cross between segments through the
  worker: a segment that takes one from another segment runs the producing node — and the nodes of the kind it
  depends on — itself, as `copies` (a checkpoint loader used by two segments is loaded in both).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from nodeloom.engine.context import NodeContext
from nodeloom.engine.graph import Graph
from nodeloom.engine.schema import is_foreign


@dataclass(frozen=True, slots=True)
class Segment:
    """One job: `members` (in graph order) run as one unit; `copies` are members of other segments that this one
    runs too, for values only the remote server can carry. `id` names the unit in the executor (never a node id)."""

    id: str
    kind: str
    members: tuple[str, ...]
    copies: tuple[str, ...] = ()

    @property
    def first(self) -> str:
        """The node that stands for the segment in charges and breakdowns."""
        return self.members[0]

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node the job runs: members, then copies."""
        return self.members + self.copies


class SegmentContext(NodeContext):
    """The context of a segment's run: `node_id` is its first member. The runner reports its nodes' own progress
    with `started`, `progress` and `completed`; members it did not complete are completed by the executor with the
    values the runner returned."""

    def __init__(self, *, report: Callable[[str, str, dict[str, Any], dict[str, Any] | None], None],
                 **kwargs: Any):
        super().__init__(**kwargs)
        self._report = report
        self.reported: set[str] = set()

    def started(self, node_id: str, node_type: str) -> None:
        self._report("node.started", node_id, {"nodeId": node_id, "nodeType": node_type}, None)

    def node_progress(self, node_id: str, value: float, maximum: float) -> None:
        fraction = max(0.0, min(1.0, value / maximum)) if maximum > 0 else 0.0
        self._report("node.progress", node_id, {"nodeId": node_id, "progress": fraction, "value": value,
                                                "max": maximum}, None)

    def completed(self, node_id: str, outputs: dict[str, Any], *, cached: bool = False,
                  duration_ms: float = 0.0, **extra: Any) -> None:
        """A member finished; `outputs` are the values it hands on (none for a value that stays on the server)."""
        self.reported.add(node_id)
        self._report("node.completed", node_id, {"nodeId": node_id, "cached": cached, "durationMs": duration_ms,
                                                 **extra}, outputs)


class SegmentRunner(Protocol):
    """Runs one segment as one job. `values` holds, per node of the segment (copies included), its literals and the
    values of its links from outside the segment; the answer maps each member to the outputs it hands on."""

    def __call__(self, ctx: SegmentContext, segment: Segment, graph: Graph,
                 values: Mapping[str, dict[str, Any]]) -> Awaitable[dict[str, dict[str, Any]]]: ...


def kind_of(graph: Graph, node_id: str) -> str | None:
    return graph.nodes[node_id].type.segment


def has_segments(graph: Graph) -> bool:
    return any(node.type.segment for node in graph.nodes.values())


def plan(graph: Graph) -> list[Segment]:
    """The graph's segments, ordered by their first member's place in the graph's order."""
    if not has_segments(graph):
        return []
    nodes = graph.nodes
    position = {nid: i for i, nid in enumerate(graph.order)}
    children: dict[str, list[str]] = {nid: [] for nid in graph.order}
    for nid in graph.order:
        for parent in nodes[nid].parents:
            children[parent].append(nid)

    groups: list[list[str]] = []
    for component in _components(graph, children):
        groups.extend(_cut(graph, component, children, position))
    groups.sort(key=lambda g: position[g[0]])

    owner = {nid: i for i, group in enumerate(groups) for nid in group}
    taken = set(nodes)
    segments: list[Segment] = []
    for i, group in enumerate(groups):
        copies = _copies(graph, group, owner, i)
        sid = _unit_id(group[0], taken)
        taken.add(sid)
        segments.append(Segment(id=sid, kind=str(nodes[group[0]].type.segment), members=tuple(group),
                                copies=tuple(sorted(copies, key=position.__getitem__))))
    return segments


def _components(graph: Graph, children: Mapping[str, list[str]]) -> list[set[str]]:
    """Nodes of one kind joined by links between them (iterative: no recursion on deep graphs)."""
    nodes = graph.nodes
    seen: set[str] = set()
    out: list[set[str]] = []
    for start in graph.order:
        kind = nodes[start].type.segment
        if not kind or start in seen:
            continue
        component: set[str] = set()
        stack = [start]
        seen.add(start)
        while stack:
            nid = stack.pop()
            component.add(nid)
            for other in (*nodes[nid].parents, *children[nid]):
                if other not in seen and nodes[other].type.segment == kind:
                    seen.add(other)
                    stack.append(other)
        out.append(component)
    return out


def _cut(graph: Graph, component: set[str], children: Mapping[str, list[str]],
         position: Mapping[str, int]) -> list[list[str]]:
    nodes = graph.nodes
    depth: dict[str, int] = {}
    for nid in graph.order:
        best = -1
        for parent in nodes[nid].parents:
            if parent in depth:
                best = max(best, depth[parent] + (1 if parent in component and nid not in component else 0))
        if nid in component:
            depth[nid] = max(best, 0)
        elif best >= 0:
            depth[nid] = best
    groups: list[list[str]] = []
    seen: set[str] = set()
    for start in sorted(component, key=position.__getitem__):
        if start in seen:
            continue
        level = depth[start]
        group: list[str] = []
        stack = [start]
        seen.add(start)
        while stack:
            nid = stack.pop()
            group.append(nid)
            for other in (*nodes[nid].parents, *children[nid]):
                if other in component and other not in seen and depth[other] == level:
                    seen.add(other)
                    stack.append(other)
        groups.append(sorted(group, key=position.__getitem__))
    return groups


def _copies(graph: Graph, group: list[str], owner: Mapping[str, int], index: int) -> set[str]:
    """Nodes of other segments that `group` must run itself: the sources of links of a kind-only type into it, and
    the nodes of the kind those depend on."""
    nodes = graph.nodes
    copies: set[str] = set()
    stack: list[str] = []
    for nid in group:
        for link in nodes[nid].links.values():
            source = link.source
            if owner.get(source, index) != index and is_foreign(nodes[source].output_types.get(link.output, "")):
                stack.append(source)
    while stack:
        nid = stack.pop()
        if nid in copies:
            continue
        copies.add(nid)
        for parent in nodes[nid].parents:
            if parent in owner and owner[parent] != index:
                stack.append(parent)
    return copies


def _unit_id(first: str, taken: set[str]) -> str:
    sid = f"segment:{first}"
    n = 2
    while sid in taken:
        sid = f"segment:{first}#{n}"
        n += 1
    return sid
