"""The graph model (API.md "Graph format") and its validation into an executable Plan.

Validation reports every problem with a precise path (`nodes[2].inputs.width`) and never recurses,
so adversarial graphs (10,000 nodes, deep chains, cycles) are refused quickly.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nodeloom.engine.errors import GraphError
from nodeloom.engine.node import Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import MAX_JSON_DEPTH, fans_out, list_of, too_deep

MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Limits:
    max_nodes: int = 1000  # Settings.max_nodes (NODELOOM_MAX_NODES) is what a server uses
    max_params_bytes: int = 64 * 1024
    max_links_per_node: int = 64


@dataclass(frozen=True)
class Link:
    source: str
    output: str


@dataclass
class NodeInstance:
    """One validated node of a plan: its type, coerced params and resolved inputs."""

    id: str
    index: int
    type: type[Node]
    params: dict[str, Any]
    links: dict[str, Link] = field(default_factory=dict)
    literals: dict[str, Any] = field(default_factory=dict)
    fanned_inputs: frozenset[str] = frozenset()
    output_types: dict[str, str] = field(default_factory=dict)

    @property
    def parents(self) -> set[str]:
        return {link.source for link in self.links.values()}


@dataclass
class Graph:
    """A validated, topologically ordered graph, ready for the executor."""

    nodes: dict[str, NodeInstance]
    order: list[str]

    def inputs_schema(self) -> list[dict[str, Any]]:
        """The workflow's parameter schema, derived from its input nodes."""
        schema = []
        for nid in self.order:
            node = self.nodes[nid]
            if node.type.role != "input":
                continue
            value_port = node.type.outputs[0] if node.type.outputs else None
            declared = node.type.param("default")
            constraints = declared.constraints() if declared else {}
            if "options" in node.params:
                constraints = {**constraints, "enum": node.params["options"]}
            for key in ("min", "max"):
                if node.params.get(key) is not None:
                    constraints[key] = node.params[key]
            schema.append({
                "name": input_name(node),
                "type": value_port.type if value_port else "any",
                "required": bool(node.params.get("required", False)),
                "default": node.params.get("default"),
                "constraints": constraints,
                "nodeId": nid,
            })
        return schema

    def outputs_schema(self) -> list[dict[str, Any]]:
        out = []
        for nid in self.order:
            node = self.nodes[nid]
            if node.type.role == "output":
                port = node.type.inputs[0] if node.type.inputs else None
                source_type = port.type if port else "any"
                link = node.links.get(port.name) if port else None
                if link is not None:
                    source_type = self.nodes[link.source].output_types.get(link.output, source_type)
                out.append({"name": output_name(node), "type": source_type, "nodeId": nid})
        return out


def input_name(node: NodeInstance) -> str:
    return str(node.params.get("name") or node.id)


def output_name(node: NodeInstance) -> str:
    return str(node.params.get("name") or node.id)


def is_link(value: Any) -> bool:
    return isinstance(value, dict) and "from" in value and set(value) <= {"from", "output"}


def validate(raw: Any, registry: Registry, *, limits: Limits = Limits(), check_availability: bool = True) -> Graph:
    """Turn a raw JSON graph into a Graph or raise GraphError with every problem found."""
    errors: list[dict[str, str]] = []

    def err(path: str, message: str) -> None:
        errors.append({"path": path, "message": message})

    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list):
        raise GraphError([{"path": "graph.nodes", "message": "a graph is an object with a 'nodes' array"}])
    raw_nodes: list[Any] = raw["nodes"]
    if len(raw_nodes) > limits.max_nodes:
        raise GraphError([{"path": "graph.nodes",
                           "message": f"too many nodes: {len(raw_nodes)} > limit {limits.max_nodes}"}])

    for key, value in raw.items():  # what the canvas or a client keeps beside the nodes is stored too
        if key != "nodes" and too_deep(value):
            err(f"graph.{key}", f"nested more than {MAX_JSON_DEPTH} levels deep")

    index_of: dict[str, int] = {}
    for i, rn in enumerate(raw_nodes):
        if not isinstance(rn, dict):
            err(f"nodes[{i}]", "a node is an object with id and type")
            continue
        nid = rn.get("id")
        if not isinstance(nid, str) or not nid or len(nid) > MAX_ID_LENGTH:
            err(f"nodes[{i}].id", f"id must be a non-empty string of at most {MAX_ID_LENGTH} characters")
        elif nid in index_of:
            err(f"nodes[{i}].id", f"duplicate node id '{nid}' (also nodes[{index_of[nid]}])")
        else:
            index_of[nid] = i

    instances: dict[str, NodeInstance] = {}
    for nid, i in index_of.items():
        rn = raw_nodes[i]
        type_name = rn.get("type")
        node_type = registry.get(type_name) if isinstance(type_name, str) else None
        if node_type is None:
            err(f"nodes[{i}].type", f"unknown node type '{type_name}'")
            continue
        if check_availability:
            reason = registry.unavailable_reason(node_type.type)
            if reason:
                err(f"nodes[{i}].type", f"node type '{type_name}' is unavailable on this server: {reason}")
        if too_deep(rn, MAX_JSON_DEPTH + 2):  # the node object and its params/inputs are two levels
            err(f"nodes[{i}]", f"nested more than {MAX_JSON_DEPTH} levels deep")
            continue
        params = rn.get("params", {}) or {}
        if not isinstance(params, dict):
            err(f"nodes[{i}].params", "params must be an object")
            continue
        try:
            size = len(json.dumps(params))
        except (TypeError, ValueError):
            size = limits.max_params_bytes + 1
        if size > limits.max_params_bytes:
            err(f"nodes[{i}].params", f"params too large: {size} bytes > limit {limits.max_params_bytes}")
            continue
        coerced: dict[str, Any] = {}
        for key, value in params.items():
            p = node_type.param(key)
            if p is None:
                err(f"nodes[{i}].params.{key}", f"unknown param '{key}' for {node_type.type}")
                continue
            value, problem = p.check(value) if value is not None or p.required else (value, None)
            if problem:
                err(f"nodes[{i}].params.{key}", problem)
            coerced[key] = value
        for p in node_type.params:
            if p.name not in coerced or coerced[p.name] is None:
                if p.required and p.default is None:
                    err(f"nodes[{i}].params.{p.name}", f"missing required param '{p.name}'")
                coerced[p.name] = p.default
        raw_inputs = rn.get("inputs", {}) or {}
        if not isinstance(raw_inputs, dict):
            err(f"nodes[{i}].inputs", "inputs must be an object")
            continue
        if len(raw_inputs) > limits.max_links_per_node:
            err(f"nodes[{i}].inputs", f"too many inputs: limit {limits.max_links_per_node}")
            continue
        inst = NodeInstance(id=nid, index=i, type=node_type, params=coerced)
        for key, value in raw_inputs.items():
            port = node_type.input_port(key)
            path = f"nodes[{i}].inputs.{key}"
            if port is None:
                err(path, f"unknown input '{key}' for {node_type.type}")
                continue
            if is_link(value):
                src, out = value.get("from"), value.get("output")
                if not isinstance(src, str) or src not in index_of:
                    err(path, f"link from unknown node '{src}'")
                    continue
                if src == nid:
                    err(path, "a node cannot link to itself (cycle)")
                    continue
                if out is None:
                    src_type = registry.get(raw_nodes[index_of[src]].get("type"))
                    if src_type is not None and len(src_type.outputs) == 1:
                        out = src_type.outputs[0].name
                if not isinstance(out, str):
                    err(f"{path}.output", "a link needs the name of the source node's output")
                    continue
                inst.links[key] = Link(src, out)
            else:
                coerced_value, problem = port.check(value)  # its type, and its choices and bounds if it has any
                if problem:
                    err(path, problem)
                inst.literals[key] = coerced_value
        instances[nid] = inst

    if errors:
        raise GraphError(errors)

    order = _toposort(instances, err)
    if errors:
        raise GraphError(errors)

    for nid in order:
        inst = instances[nid]
        i = inst.index
        fanned: set[str] = set()
        for key, link in inst.links.items():
            src = instances[link.source]
            out_port = src.type.output_port(link.output)
            path = f"nodes[{i}].inputs.{key}"
            if out_port is None:
                err(f"{path}.output", f"node '{link.source}' ({src.type.type}) has no output '{link.output}'")
                continue
            dst_port = inst.type.input_port(key)
            if dst_port is None:  # cannot happen: a link is kept above only for an input port the type has
                continue
            src_t, dst_t = src.output_types[link.output], dst_port.type
            if dst_port.takes(src_t):
                continue
            if fans_out(src_t, dst_t):
                fanned.add(key)
                continue
            err(path, f"type mismatch: '{link.source}.{link.output}' is {src_t}, input '{key}' expects {dst_t}")
        for port in inst.type.inputs:
            if port.required and port.name not in inst.links and port.name not in inst.literals \
                    and port.default is None:
                err(f"nodes[{i}].inputs.{port.name}", f"missing required input '{port.name}'")
        inst.fanned_inputs = frozenset(fanned)
        inst.output_types = {p.name: (list_of(p.type) if fanned else p.type) for p in inst.type.outputs}

    names: dict[tuple[str, str], int] = {}
    for nid in order:
        inst = instances[nid]
        if inst.type.role in ("input", "output"):
            key = (inst.type.role, input_name(inst))
            if key in names:
                err(f"nodes[{inst.index}].params.name",
                    f"duplicate {inst.type.role} name '{key[1]}' (also nodes[{names[key]}])")
            names[key] = inst.index
    if errors:
        raise GraphError(errors)
    return Graph(nodes=instances, order=order)


def _toposort(instances: dict[str, NodeInstance], err: Any) -> list[str]:
    """Kahn's algorithm (iterative, linear). Nodes left over sit on a cycle."""
    indegree = {nid: 0 for nid in instances}
    children: dict[str, list[str]] = {nid: [] for nid in instances}
    for nid, inst in instances.items():
        for parent in inst.parents:
            indegree[nid] += 1
            children[parent].append(nid)
    ready = deque(sorted((nid for nid, d in indegree.items() if d == 0), key=lambda n: instances[n].index))
    order: list[str] = []
    while ready:
        nid = ready.popleft()
        order.append(nid)
        for child in children[nid]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) < len(instances):
        stuck = sorted((n for n, d in indegree.items() if d > 0), key=lambda n: instances[n].index)
        for nid in stuck[:20]:
            inst = instances[nid]
            key = next(k for k, link in inst.links.items() if indegree.get(link.source, 0) > 0) \
                if any(indegree.get(link.source, 0) > 0 for link in inst.links.values()) else None
            path = f"nodes[{inst.index}]" + (f".inputs.{key}" if key else "")
            err(path, f"cycle: node '{nid}' depends on itself through its inputs")
    return order
