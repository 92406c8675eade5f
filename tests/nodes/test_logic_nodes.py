"""The logic and list packs (math.*, logic.*, list.*), run through the real executor."""

from __future__ import annotations

from typing import Any

import pytest
from tests.nodes.helpers import run_graph, run_node

from nodeloom.engine.errors import GraphError, NodeError

# --- math ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "a", "b", "expected"), [
    ("add", 2, 3, 5), ("add", 0.1, 0.2, 0.1 + 0.2), ("subtract", 2, 3.5, -1.5), ("multiply", -4, 2.5, -10.0),
    ("divide", 7, 2, 3.5), ("power", 2, 10, 1024), ("power", 9, 0.5, 3.0), ("power", 2, -1, 0.5),
    ("modulo", 7, 3, 1), ("modulo", -7, 3, 2), ("min", 4, -1, -1), ("max", 4, -1, 4),
])
async def test_arithmetic(op: str, a: float, b: float, expected: float) -> None:
    out = await run_node("math.arithmetic", {"a": a, "b": b}, {"op": op})
    assert out == {"result": expected} and type(out["result"]) is type(expected)


@pytest.mark.parametrize(("node_type", "expected"), [
    ("math.add", 14), ("math.subtract", 6), ("math.multiply", 40), ("math.divide", 2.5), ("math.power", 10_000),
    ("math.modulo", 2),
])
async def test_arithmetic_shortcuts(node_type: str, expected: float) -> None:
    assert await run_node(node_type, {"a": 10, "b": 4}) == {"result": expected}


@pytest.mark.parametrize(("op", "a", "b", "message"), [
    ("divide", 1, 0, "cannot divide by zero"), ("modulo", 1, 0, "cannot modulo by zero"),
    ("power", 10.0, 400, "too large"), ("power", -8, 0.5, "not a finite number"),
    ("multiply", 1e308, 10, "not a finite number"), ("power", 0, -1, "by zero"),
])
async def test_arithmetic_errors(op: str, a: float, b: float, message: str) -> None:
    with pytest.raises(NodeError, match=message) as failure:
        await run_node("math.arithmetic", {"a": a, "b": b}, {"op": op})
    assert failure.value.code == "math_error"


async def test_arithmetic_fans_out_over_a_list_and_pairs_lists() -> None:
    graph = {"nodes": [
        {"id": "xs", "type": "input.list", "params": {"name": "xs"}},
        {"id": "ys", "type": "input.list", "params": {"name": "ys"}},
        {"id": "plus10", "type": "math.add", "inputs": {"a": {"from": "xs", "output": "value"}, "b": 10}},
        {"id": "pairs", "type": "math.multiply", "inputs": {"a": {"from": "xs", "output": "value"},
                                                           "b": {"from": "ys", "output": "value"}}},
    ]}
    result = await run_graph(graph, {"xs": [1, 2, 3], "ys": [10, 20, 30]})
    assert result.nodes["plus10"] == {"result": [11, 12, 13]}
    assert result.nodes["pairs"] == {"result": [10, 40, 90]}
    with pytest.raises(NodeError, match="different lengths") as mismatch:
        await run_graph(graph, {"xs": [1, 2, 3], "ys": [1, 2]})
    assert mismatch.value.code == "list_length_mismatch"


@pytest.mark.parametrize(("op", "a", "b", "expected"), [
    ("==", 2, 2.0, True), ("!=", 2, 3, True), ("<", 1, 2, True), ("<=", 2, 2, True), (">", 1, 2, False),
    (">=", 3, 2, True), ("==", 0.1 + 0.2, 0.3, False),
])
async def test_compare(op: str, a: float, b: float, expected: bool) -> None:
    assert await run_node("math.compare", {"a": a, "b": b}, {"op": op}) == {"result": expected}


async def test_compare_with_tolerance() -> None:
    assert await run_node("math.compare", {"a": 0.1 + 0.2, "b": 0.3}, {"tolerance": 1e-9}) == {"result": True}
    assert await run_node("math.compare", {"a": 1.0, "b": 1.2}, {"op": "!=", "tolerance": 0.1}) == {"result": True}


@pytest.mark.parametrize(("value", "expected"), [(-3, -1), (0.5, 0.5), (7, 2)])
async def test_clamp(value: float, expected: float) -> None:
    assert await run_node("math.clamp", {"value": value}, {"min": -1, "max": 2}) == {"value": expected}


async def test_clamp_refuses_an_empty_range() -> None:
    with pytest.raises(NodeError, match="greater than max"):
        await run_node("math.clamp", {"value": 1}, {"min": 3, "max": 2})


@pytest.mark.parametrize(("value", "decimals", "mode", "expected", "integer"), [
    (2.5, 0, "nearest", 3, 3), (-2.5, 0, "nearest", -3, -3), (2.5, 0, "half-even", 2, 2),
    (2.675, 2, "nearest", 2.68, 3), (-2.1, 0, "floor", -3, -3), (2.1, 0, "ceil", 3, 3),
    (-2.9, 0, "truncate", -2, -2), (3.14159, 3, "floor", 3.141, 3),
])
async def test_round(value: float, decimals: int, mode: str, expected: float, integer: int) -> None:
    out = await run_node("math.round", {"value": value}, {"decimals": decimals, "mode": mode})
    assert out == {"value": expected, "integer": integer}
    assert type(out["integer"]) is int


async def test_round_integer_output_feeds_an_integer_port() -> None:
    graph = {"nodes": [
        {"id": "half", "type": "math.divide", "inputs": {"a": 600, "b": 7}},
        {"id": "r", "type": "math.round", "inputs": {"value": {"from": "half", "output": "result"}}},
        {"id": "nums", "type": "list.range", "params": {"start": 0, "stop": 3}},
        {"id": "pick", "type": "list.index", "inputs": {"items": {"from": "nums", "output": "values"},
                                                       "index": {"from": "r", "output": "integer"}},
         "params": {}},
    ]}
    with pytest.raises(NodeError, match="index 86 is out of range"):
        await run_graph(graph)
    bad = {"nodes": [graph["nodes"][0], {**graph["nodes"][3], "inputs": {
        "items": [1], "index": {"from": "half", "output": "result"}}}]}
    with pytest.raises(GraphError, match="type mismatch"):
        await run_graph(bad)


async def test_random_is_repeatable_per_seed_and_in_range() -> None:
    draws = [(await run_node("math.random", {"seed": s}, {"min": 5, "max": 6}))["value"] for s in range(20)]
    assert all(5 <= d <= 6 for d in draws) and len(set(draws)) == 20
    assert (await run_node("math.random", {"seed": 3}, {"min": 5, "max": 6}))["value"] == draws[3]
    ints = {(await run_node("math.random", {"seed": s}, {"min": 1, "max": 3, "kind": "integer"}))["value"]
            for s in range(40)}
    assert ints == {1, 2, 3}
    with pytest.raises(NodeError, match="no whole number"):
        await run_node("math.random", {}, {"min": 1.2, "max": 1.8, "kind": "integer"})


async def test_remap() -> None:
    assert await run_node("math.remap", {"value": 0.25}) == {"value": 25.0}
    assert await run_node("math.remap", {"value": 5}, {"inMin": 0, "inMax": 10, "outMin": 1, "outMax": 0}) == {
        "value": 0.5}
    assert await run_node("math.remap", {"value": 2}) == {"value": 100.0}
    assert await run_node("math.remap", {"value": 2}, {"clamp": False}) == {"value": 200.0}
    with pytest.raises(NodeError, match="must differ"):
        await run_node("math.remap", {"value": 1}, {"inMin": 1, "inMax": 1})


# --- logic ---------------------------------------------------------------------------------------------


async def test_if_chooses_a_branch() -> None:
    assert await run_node("logic.if", {"condition": True, "then": "yes", "else": "no"}) == {"value": "yes"}
    assert await run_node("logic.if", {"condition": False, "then": "yes", "else": [1, 2]}) == {"value": [1, 2]}
    assert await run_node("logic.if", {"condition": False, "then": "yes"}) == {"value": None}


async def test_if_driven_by_a_comparison() -> None:
    graph = {"nodes": [
        {"id": "big", "type": "math.compare", "inputs": {"a": 12, "b": 10}, "params": {"op": ">"}},
        {"id": "pick", "type": "logic.if", "inputs": {"condition": {"from": "big", "output": "result"},
                                                     "then": "large", "else": "small"}},
    ]}
    assert (await run_graph(graph)).nodes["pick"] == {"value": "large"}


async def test_switch_picks_a_case_or_the_default() -> None:
    cases = {"case0": "zero", "case1": "one", "case3": "three", "default": "other"}
    assert await run_node("logic.switch", {"index": 1, **cases}) == {"value": "one"}
    assert await run_node("logic.switch", {"index": 2, **cases}) == {"value": "other"}
    assert await run_node("logic.switch", {"index": 9, **cases}) == {"value": "other"}
    with pytest.raises(NodeError, match="case 2 has no value") as failure:
        await run_node("logic.switch", {"index": 2, "case0": "zero"})
    assert failure.value.code == "no_value"


async def test_router_sends_the_value_to_one_output() -> None:
    out = await run_node("logic.router", {"value": {"k": 1}, "route": 2})
    assert out == {"out0": None, "out1": None, "out2": {"k": 1}, "out3": None}
    assert (await run_node("logic.router", {"value": "v"}))["out0"] == "v"
    with pytest.raises(NodeError, match="route must be 0 to 3"):
        await run_node("logic.router", {"value": "v", "route": 4})


async def test_coalesce_takes_the_first_present_value() -> None:
    assert await run_node("logic.coalesce", {"b": "", "c": "c"}) == {"value": ""}
    assert await run_node("logic.coalesce", {"b": "", "c": "c"}, {"skipEmpty": True}) == {"value": "c"}
    assert await run_node("logic.coalesce", {"a": 0, "b": 1}) == {"value": 0}
    with pytest.raises(NodeError, match="none of the inputs"):
        await run_node("logic.coalesce", {"a": [], "b": ""}, {"skipEmpty": True})


async def test_coalesce_after_a_router_picks_the_routed_value() -> None:
    graph = {"nodes": [
        {"id": "route", "type": "logic.router", "inputs": {"value": "payload", "route": 1}},
        {"id": "first", "type": "logic.coalesce", "inputs": {"a": {"from": "route", "output": "out0"},
                                                            "b": {"from": "route", "output": "out1"}}},
    ]}
    assert (await run_graph(graph)).nodes["first"] == {"value": "payload"}


@pytest.mark.parametrize(("node_type", "inputs", "expected"), [
    ("logic.and", {"a": True, "b": True}, True), ("logic.and", {"a": True, "b": False}, False),
    ("logic.and", {"a": True, "b": True, "c": True, "d": False}, False),
    ("logic.or", {"a": False, "b": False}, False), ("logic.or", {"a": False, "b": False, "d": True}, True),
    ("logic.not", {"value": True}, False), ("logic.not", {"value": False}, True),
])
async def test_boolean_gates(node_type: str, inputs: dict[str, Any], expected: bool) -> None:
    assert await run_node(node_type, inputs) == {"result": expected}


@pytest.mark.parametrize(("a", "b", "expected"), [
    ({"x": [1, 2]}, {"x": [1, 2]}, True), ({"x": [1, 2]}, {"x": [2, 1]}, False), (1, 1.0, True), ("1", 1, False),
    (None, None, True),
])
async def test_equals_compares_in_depth(a: Any, b: Any, expected: bool) -> None:
    assert await run_node("logic.equals", {"a": a, "b": b}) == {"result": expected}


# --- lists ---------------------------------------------------------------------------------------------


async def test_build_collects_connected_items_in_order() -> None:
    graph = {"nodes": [
        {"id": "route", "type": "logic.router", "inputs": {"value": "x", "route": 0}},
        {"id": "l", "type": "list.build", "inputs": {"item3": "c", "item1": "a",
                                                     "item2": {"from": "route", "output": "out1"}}},
        {"id": "all", "type": "list.build", "inputs": {"item1": "a", "item2": {"from": "route", "output": "out1"}},
         "params": {"skipNull": False}},
    ]}
    result = await run_graph(graph)
    assert result.nodes["l"] == {"items": ["a", "c"]}
    assert result.nodes["all"] == {"items": ["a", None]}


async def test_build_receives_a_list_whole() -> None:
    graph = {"nodes": [
        {"id": "nums", "type": "list.range", "params": {"stop": 3}},
        {"id": "l", "type": "list.build", "inputs": {"item1": {"from": "nums", "output": "values"}, "item2": 9}},
    ]}
    assert (await run_graph(graph)).nodes["l"] == {"items": [[0, 1, 2], 9]}


@pytest.mark.parametrize(("index", "expected"), [(0, "a"), (2, "c"), (-1, "c"), (-3, "a")])
async def test_index(index: int, expected: str) -> None:
    assert await run_node("list.index", {"items": ["a", "b", "c"], "index": index}) == {"item": expected}


async def test_index_out_of_range() -> None:
    assert await run_node("list.index", {"items": ["a"], "index": 5, "default": "z"}) == {"item": "z"}
    with pytest.raises(NodeError, match="index -2 is out of range for a list of 1") as failure:
        await run_node("list.index", {"items": ["a"], "index": -2})
    assert failure.value.code == "index_out_of_range"


async def test_zip() -> None:
    assert await run_node("list.zip", {"a": [1, 2], "b": ["x", "y"]}) == {"items": [[1, "x"], [2, "y"]]}
    assert await run_node("list.zip", {"a": [1, 2], "b": ["x", "y"], "c": [True, False]}) == {
        "items": [[1, "x", True], [2, "y", False]]}
    assert await run_node("list.zip", {"a": [1, 2, 3], "b": ["x"]}, {"strict": False}) == {"items": [[1, "x"]]}
    with pytest.raises(NodeError, match="different lengths: 3, 1"):
        await run_node("list.zip", {"a": [1, 2, 3], "b": ["x"]})


async def test_flatten_by_depth() -> None:
    nested = [1, [2, [3, [4]]], [], "ab"]
    assert await run_node("list.flatten", {"items": nested}) == {"items": [1, 2, [3, [4]], "ab"]}
    assert await run_node("list.flatten", {"items": nested}, {"depth": 3}) == {"items": [1, 2, 3, 4, "ab"]}


async def test_flatten_survives_deep_nesting() -> None:
    deep: list[Any] = [0]
    for i in range(1, 60):
        deep = [i, deep]
    out = await run_node("list.flatten", {"items": deep}, {"depth": 64})
    assert sorted(out["items"]) == list(range(60))


async def test_count_slice_reverse() -> None:
    items = list("abcdef")
    assert await run_node("list.count", {"items": items}) == {"count": 6}
    assert await run_node("list.slice", {"items": items}, {"start": 1, "end": 4}) == {"items": ["b", "c", "d"]}
    assert await run_node("list.slice", {"items": items}, {"start": -2}) == {"items": ["e", "f"]}
    assert await run_node("list.slice", {"items": items}, {"step": -2}) == {"items": ["f", "d", "b"]}
    assert await run_node("list.reverse", {"items": [1, [2], 3]}) == {"items": [3, [2], 1]}
    with pytest.raises(NodeError, match="step cannot be 0"):
        await run_node("list.slice", {"items": items}, {"step": 0})


async def test_range() -> None:
    assert await run_node("list.range", {}, {"start": 2, "stop": 11, "step": 3}) == {"values": [2, 5, 8]}
    assert await run_node("list.range", {}, {"start": 3, "stop": 0, "step": -1}) == {"values": [3, 2, 1]}
    assert await run_node("list.range", {}, {"start": 3, "stop": 0}) == {"values": []}
    with pytest.raises(NodeError, match="over the limit"):
        await run_node("list.range", {}, {"stop": 10**9})


async def test_range_fans_out_into_a_number_node() -> None:
    graph = {"nodes": [
        {"id": "nums", "type": "list.range", "params": {"start": 1, "stop": 4}},
        {"id": "sq", "type": "math.power", "inputs": {"a": {"from": "nums", "output": "values"}, "b": 2}},
        {"id": "n", "type": "list.count", "inputs": {"items": {"from": "sq", "output": "result"}}},
    ]}
    result = await run_graph(graph)
    assert result.nodes["sq"] == {"result": [1, 4, 9]}
    assert result.nodes["n"] == {"count": 3}


async def test_sort() -> None:
    assert await run_node("list.sort", {"items": [3, 1.5, 2]}) == {"items": [1.5, 2, 3]}
    assert await run_node("list.sort", {"items": ["b", "a", "c"]}, {"descending": True}) == {"items": ["c", "b", "a"]}
    people = [{"n": "b", "age": 3}, {"n": "a", "age": 1}]
    assert await run_node("list.sort", {"items": people}, {"key": "age"}) == {"items": people[::-1]}
    with pytest.raises(NodeError, match="mix of numbers and texts"):
        await run_node("list.sort", {"items": [1, "a"]})
    with pytest.raises(NodeError, match="only numbers and texts sort"):
        await run_node("list.sort", {"items": [[1], [2]]})


async def test_unique_and_concat() -> None:
    items = [1, "1", {"a": 1}, 1, {"a": 1}, [2], [2]]
    assert await run_node("list.unique", {"items": items}) == {"items": [1, "1", {"a": 1}, [2]]}
    assert await run_node("list.concat", {"a": [1], "b": [], "d": [2, 3]}) == {"items": [1, 2, 3]}
