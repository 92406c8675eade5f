"""Graph validation: every case API.md lists answers with a precise path; adversarial graphs stay fast."""

from __future__ import annotations

from typing import Any

import pytest

from nodeloom.engine.errors import GraphError
from nodeloom.engine.graph import Limits, validate
from nodeloom.engine.registry import Registry
from nodeloom.nodes import builtin_nodes


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(builtin_nodes())


def errors_of(graph: Any, registry: Registry, **kw: Any) -> list[dict[str, str]]:
    with pytest.raises(GraphError) as info:
        validate(graph, registry, **kw)
    return info.value.details


def paths(details: list[dict[str, str]]) -> list[str]:
    return [d["path"] for d in details]


def test_valid_graph_orders_nodes_topologically(registry: Registry) -> None:
    g = validate({"nodes": [
        {"id": "out", "type": "output.text", "inputs": {"text": {"from": "t", "output": "text"}}, "params": {"name": "o"}},
        {"id": "t", "type": "text.template", "inputs": {"text": {"from": "p", "output": "text"}}},
        {"id": "p", "type": "input.text", "params": {"name": "p"}},
    ]}, registry)
    assert g.order.index("p") < g.order.index("t") < g.order.index("out")
    assert g.inputs_schema()[0]["name"] == "p"
    assert g.outputs_schema() == [{"name": "o", "type": "text", "nodeId": "out"}]


def test_unknown_node_type(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "a", "type": "nope.nothing"}]}, registry)
    assert paths(d) == ["nodes[0].type"]
    assert "unknown node type" in d[0]["message"]


def test_unknown_input_and_param(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "a", "type": "image.resize", "inputs": {"picture": "x"},
                              "params": {"widht": 3}}]}, registry)
    assert set(paths(d)) == {"nodes[0].inputs.picture", "nodes[0].params.widht"}


def test_unknown_output_on_link(registry: Registry) -> None:
    d = errors_of({"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p"}},
        {"id": "t", "type": "text.template", "inputs": {"text": {"from": "p", "output": "image"}}},
    ]}, registry)
    assert paths(d) == ["nodes[1].inputs.text.output"]


def test_type_mismatch(registry: Registry) -> None:
    d = errors_of({"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p"}},
        {"id": "r", "type": "image.resize", "inputs": {"image": {"from": "p", "output": "text"}}},
    ]}, registry)
    assert paths(d) == ["nodes[1].inputs.image"]
    assert "type mismatch" in d[0]["message"]


def test_integer_feeds_number_and_any_accepts_all(registry: Registry) -> None:
    validate({"nodes": [
        {"id": "i", "type": "input.integer", "params": {"name": "i"}},
        {"id": "o", "type": "output.json", "inputs": {"value": {"from": "i", "output": "value"}}, "params": {"name": "o"}},
    ]}, registry)


def test_missing_required_input(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "r", "type": "image.resize"}]}, registry)
    assert paths(d) == ["nodes[0].inputs.image"]


def test_literal_of_wrong_type_and_out_of_range_param(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "r", "type": "image.resize", "inputs": {"image": 5},
                              "params": {"width": 0, "mode": "zoom"}}]}, registry)
    assert set(paths(d)) == {"nodes[0].inputs.image", "nodes[0].params.width", "nodes[0].params.mode"}


def test_cycle(registry: Registry) -> None:
    d = errors_of({"nodes": [
        {"id": "a", "type": "text.template", "inputs": {"text": {"from": "b", "output": "text"}}},
        {"id": "b", "type": "text.template", "inputs": {"text": {"from": "a", "output": "text"}}},
    ]}, registry)
    assert set(paths(d)) == {"nodes[0].inputs.text", "nodes[1].inputs.text"}
    assert all("cycle" in x["message"] for x in d)


def test_self_link_is_a_cycle(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "a", "type": "text.template", "inputs": {"text": {"from": "a", "output": "text"}}}]},
                  registry)
    assert paths(d) == ["nodes[0].inputs.text"]


def test_duplicate_ids(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "a", "type": "input.text", "params": {"name": "x"}},
                             {"id": "a", "type": "input.text", "params": {"name": "y"}}]}, registry)
    assert paths(d) == ["nodes[1].id"]


def test_dangling_link(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "t", "type": "text.template", "inputs": {"text": {"from": "ghost", "output": "text"}}}]},
                  registry)
    assert paths(d) == ["nodes[0].inputs.text"]
    assert "ghost" in d[0]["message"]


def test_node_count_limit(registry: Registry) -> None:
    nodes = [{"id": f"n{i}", "type": "input.text", "params": {"name": f"n{i}"}} for i in range(10_000)]
    d = errors_of({"nodes": nodes}, registry)
    assert paths(d) == ["graph.nodes"]
    assert "too many nodes" in d[0]["message"]


def test_params_size_limit(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "t", "type": "text.template", "params": {"template": "x" * 5000}}]}, registry,
                  limits=Limits(max_params_bytes=1024))
    assert paths(d) == ["nodes[0].params"]


def test_deep_chain_validates_without_recursion(registry: Registry) -> None:
    n = 3000
    nodes: list[dict[str, Any]] = [{"id": "n0", "type": "input.text", "params": {"name": "p"}}]
    nodes += [{"id": f"n{i}", "type": "text.template", "inputs": {"text": {"from": f"n{i - 1}", "output": "text"}}}
              for i in range(1, n)]
    g = validate({"nodes": nodes}, registry, limits=Limits(max_nodes=n))
    assert g.order[0] == "n0" and g.order[-1] == f"n{n - 1}"


def test_long_cycle_is_found(registry: Registry) -> None:
    n = 2000
    nodes = [{"id": f"n{i}", "type": "text.template", "inputs": {"text": {"from": f"n{(i - 1) % n}", "output": "text"}}}
             for i in range(n)]
    d = errors_of({"nodes": nodes}, registry, limits=Limits(max_nodes=n))
    assert all("cycle" in x["message"] for x in d)


@pytest.mark.parametrize("raw", [None, [], {"nodes": {}}, {"nodes": "x"}, "graph"])
def test_not_a_graph(raw: Any, registry: Registry) -> None:
    assert paths(errors_of(raw, registry)) == ["graph.nodes"]


def test_duplicate_input_names(registry: Registry) -> None:
    d = errors_of({"nodes": [{"id": "a", "type": "input.text", "params": {"name": "x"}},
                             {"id": "b", "type": "input.text", "params": {"name": "x"}}]}, registry)
    assert paths(d) == ["nodes[1].params.name"]


def test_fan_out_types_become_lists() -> None:
    from nodeloom.engine.node import Node
    from nodeloom.engine.schema import Port

    class MakeList(Node):
        type = "t.list"
        outputs = (Port("items", "list<text>"),)

    reg = Registry([*builtin_nodes(), MakeList])
    g = validate({"nodes": [
        {"id": "l", "type": "t.list"},
        {"id": "t", "type": "text.template", "inputs": {"text": {"from": "l", "output": "items"}}},
    ]}, reg)
    assert g.nodes["t"].fanned_inputs == frozenset({"text"})
    assert g.nodes["t"].output_types == {"text": "list<text>"}


def test_unavailable_node_is_refused_with_reason() -> None:
    from nodeloom.engine.node import Node

    class NeedsGpu(Node):
        type = "t.gpu"

        @classmethod
        def availability(cls) -> str | None:
            return "install torch: pip install nodeloom[local-models]"

    d = errors_of({"nodes": [{"id": "g", "type": "t.gpu"}]}, Registry([NeedsGpu]))
    assert paths(d) == ["nodes[0].type"]
    assert "pip install" in d[0]["message"]


def test_json_and_lists_connect_both_ways() -> None:
    from nodeloom.engine.schema import compatible

    assert compatible("json", "list<text>") and compatible("list<image>", "json")
    assert not compatible("text", "list<text>")


def test_fanned_list_outputs_become_lists_of_lists() -> None:
    from nodeloom.engine.node import Node
    from nodeloom.engine.schema import Port

    class Split(Node):
        type = "t.split"
        inputs = (Port("text", "text"),)
        outputs = (Port("parts", "list<text>"),)

    class Join(Node):
        type = "t.join"
        inputs = (Port("parts", "list<text>"),)
        outputs = (Port("text", "text"),)

    class Many(Node):
        type = "t.many"
        outputs = (Port("items", "list<text>"),)

    reg = Registry([Split, Join, Many])
    g = validate({"nodes": [
        {"id": "m", "type": "t.many"},
        {"id": "s", "type": "t.split", "inputs": {"text": {"from": "m", "output": "items"}}},
        {"id": "j", "type": "t.join", "inputs": {"parts": {"from": "s", "output": "parts"}}},
    ]}, reg)
    assert g.nodes["s"].output_types == {"parts": "list<list<text>>"}
    # a list of lists into a list port runs once per inner list, so the join's output is a list again
    assert g.nodes["j"].fanned_inputs == frozenset({"parts"})
    assert g.nodes["j"].output_types == {"text": "list<text>"}


def deep(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = [value]
    return value


def test_json_nesting_limit(registry: Registry) -> None:
    from nodeloom.engine.schema import MAX_JSON_DEPTH, too_deep

    assert not too_deep(deep(MAX_JSON_DEPTH)) and too_deep(deep(MAX_JSON_DEPTH + 1))
    assert not too_deep(deep(100_000), limit=10**6)  # iterative: no RecursionError at any depth
    ok = {"id": "j", "type": "input.json", "params": {"name": "n", "default": deep(MAX_JSON_DEPTH - 1)}}
    validate({"nodes": [ok]}, registry)
    d = errors_of({"nodes": [ok, {"id": "k", "type": "input.json", "params": {"name": "m", "default": deep(900)}}]},
                  registry)
    assert paths(d) == ["nodes[1]"] and "64 levels" in d[0]["message"]
    d = errors_of({"nodes": [ok], "layout": deep(900)}, registry)  # what is kept beside the nodes is checked too
    assert paths(d) == ["graph.layout"]
