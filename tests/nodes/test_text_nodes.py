"""The text, prompt and workflow-io packs, run through the real executor."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image
from tests.nodes.helpers import run_graph, run_node

from nodeloom.engine.errors import GraphError, NodeError
from nodeloom.media.values import MediaFile


async def text_of(node_type: str, text: str, **params: Any) -> str:
    return (await run_node(node_type, {"text": text}, params))["text"]


# --- workflow inputs and outputs -----------------------------------------------------------------------


def _input_graph(node_type: str, **params: Any) -> dict[str, Any]:
    return {"nodes": [{"id": "in", "type": node_type, "params": {"name": "x", **params}},
                      {"id": "out", "type": "output.json", "inputs": {"value": {"from": "in", "output": "value"}},
                       "params": {"name": "x"}}]}


async def test_input_select_accepts_an_option_and_refuses_others() -> None:
    graph = _input_graph("input.select", options=["square", "portrait"], default="portrait")
    assert (await run_graph(graph, {"x": "square"})).outputs == {"x": "square"}
    assert (await run_graph(graph)).outputs == {"x": "portrait"}
    with pytest.raises(NodeError, match="not one of the options") as failure:
        await run_graph(graph, {"x": "landscape"})
    assert failure.value.code == "invalid_input"
    no_default = _input_graph("input.select", options=["a", "b"])
    assert (await run_graph(no_default)).outputs == {"x": "a"}


async def test_input_json_passes_any_json_value() -> None:
    graph = _input_graph("input.json", default={"k": 1})
    assert (await run_graph(graph, {"x": [1, {"a": None}]})).outputs == {"x": [1, {"a": None}]}
    assert (await run_graph(graph)).outputs == {"x": {"k": 1}}


async def test_input_list_checks_its_value() -> None:
    graph = _input_graph("input.list", maxItems=2)
    assert (await run_graph(graph, {"x": ["a", "b"]})).outputs == {"x": ["a", "b"]}
    assert (await run_graph(graph)).outputs == {"x": []}
    with pytest.raises(NodeError, match="over the limit of 2"):
        await run_graph(graph, {"x": [1, 2, 3]})
    with pytest.raises(NodeError, match="must be a JSON array"):
        await run_graph(graph, {"x": "abc"})


async def test_a_list_input_fans_out_over_a_text_node() -> None:
    graph = {"nodes": [
        {"id": "words", "type": "input.list", "params": {"name": "words"}},
        {"id": "upper", "type": "text.case", "inputs": {"text": {"from": "words", "output": "value"}},
         "params": {"mode": "upper"}},
        {"id": "out", "type": "output.json", "inputs": {"value": {"from": "upper", "output": "text"}},
         "params": {"name": "shout"}},
    ]}
    result = await run_graph(graph, {"words": ["red fox", "blue jay", "owl"]})
    assert result.nodes["upper"] == {"text": ["RED FOX", "BLUE JAY", "OWL"]}
    assert result.outputs == {"shout": ["RED FOX", "BLUE JAY", "OWL"]}


async def test_input_seed_uses_the_callers_seed_else_default_else_a_fresh_one() -> None:
    fixed = _input_graph("input.seed", default=7)
    assert (await run_graph(fixed, {"x": 123})).outputs == {"x": 123}
    assert (await run_graph(fixed)).outputs == {"x": 7}
    fresh = _input_graph("input.seed", randomize=True)
    drawn = {(await run_graph(fresh)).outputs["x"] for _ in range(4)}
    assert len(drawn) > 1 and all(0 <= s < 2**32 for s in drawn)
    assert (await run_graph(fresh, {"x": 5})).outputs == {"x": 5}
    with pytest.raises(NodeError, match="whole number"):
        await run_graph(fixed, {"x": -1})
    with pytest.raises(NodeError, match="required"):
        await run_graph(_input_graph("input.seed", required=True))


async def test_a_seed_input_drives_a_seeded_node() -> None:
    graph = {"nodes": [
        {"id": "seed", "type": "input.seed", "params": {"name": "seed"}},
        {"id": "prompt", "type": "text.wildcard", "inputs": {"text": "a {red|green|blue|pink|gold} {cat|dog|owl}",
                                                          "seed": {"from": "seed", "output": "value"}}},
    ]}
    first = (await run_graph(graph, {"seed": 42})).nodes["prompt"]["text"]
    for _ in range(3):
        assert (await run_graph(graph, {"seed": 42})).nodes["prompt"]["text"] == first
    others = {(await run_graph(graph, {"seed": s})).nodes["prompt"]["text"] for s in range(12)}
    assert len(others) > 3


@pytest.mark.parametrize(("node_type", "port"), [("output.video", "video"), ("output.audio", "audio"),
                                                 ("output.file", "file")])
async def test_media_outputs_publish_their_file(node_type: str, port: str, tmp_path: Any) -> None:
    path = tmp_path / "clip.bin"
    path.write_bytes(b"\x00\x01")
    media = MediaFile.from_path(path, "application/octet-stream")
    graph = {"nodes": [{"id": "src", "type": "test.value", "params": {"name": "src"}},
                       {"id": "out", "type": node_type, "inputs": {port: {"from": "src", "output": "value"}},
                        "params": {"name": "result"}}]}
    assert (await run_graph(graph, {"src": media})).outputs == {"result": media}


async def test_a_video_output_refuses_an_image() -> None:
    graph = {"nodes": [{"id": "img", "type": "image.solid"},
                       {"id": "out", "type": "output.video", "inputs": {"video": {"from": "img", "output": "image"}},
                        "params": {"name": "v"}}]}
    with pytest.raises(GraphError, match="type mismatch"):
        await run_graph(graph)


# --- strings -------------------------------------------------------------------------------------------


async def test_concat_joins_connected_texts_only() -> None:
    out = await run_node("text.concat", {"a": "one", "b": "", "c": "three"}, {"separator": "-"})
    assert out == {"text": "one--three"}
    assert await run_node("text.concat", {"a": "solo"}, {"separator": "-"}) == {"text": "solo"}


async def test_join_writes_numbers_and_json_as_text() -> None:
    out = await run_node("text.join", {"items": ["a", 1, 2.0, 2.5, None, "", True, {"k": [1]}]}, {"separator": "|"})
    assert out == {"text": 'a|1|2|2.5|true|{"k": [1]}'}
    kept = await run_node("text.join", {"items": ["a", "", None]}, {"separator": ",", "skipEmpty": False})
    assert kept == {"text": "a,,null"}


async def test_split_trims_drops_empties_and_limits() -> None:
    assert await run_node("text.split", {"text": " a, b,,c "}) == {"items": ["a", "b", "c"], "count": 3}
    assert (await run_node("text.split", {"text": "a,,b"}, {"skipEmpty": False}))["items"] == ["a", "", "b"]
    assert (await run_node("text.split", {"text": "x  y\tz\n"}, {"separator": ""}))["items"] == ["x", "y", "z"]
    assert (await run_node("text.split", {"text": "a,b,c,d"}, {"limit": 2}))["items"] == ["a", "b,c,d"]
    lines = await run_node("text.split", {"text": "l1\nl2\n"}, {"separator": "\n"})
    assert lines["items"] == ["l1", "l2"]


async def test_replace_is_literal_and_counts() -> None:
    out = await run_node("text.replace", {"text": "a.b axb A.B", "find": "a.b", "replace": "X"})
    assert out == {"text": "X axb A.B", "replacements": 1}
    out = await run_node("text.replace", {"text": "Cat cat CAT", "find": "cat", "replace": "dog"},
                         {"caseSensitive": False, "count": 2})
    assert out == {"text": "dog dog CAT", "replacements": 2}
    assert (await run_node("text.replace", {"text": "a\\1", "find": "a", "replace": "\\g<0>"}))["text"] == "\\g<0>\\1"


async def test_regex_extract_finds_matches_and_groups() -> None:
    text = "mail ann@example.com or bob@test.org"
    out = await run_node("text.regex_extract", {"text": text}, {"pattern": r"(\w+)@([\w.]+)"})
    assert out == {"match": "ann@example.com", "matches": ["ann@example.com", "bob@test.org"], "found": True}
    out = await run_node("text.regex_extract", {"text": text}, {"pattern": r"(\w+)@", "group": 1, "limit": 1})
    assert out["matches"] == ["ann"]
    out = await run_node("text.regex_extract", {"text": "ABC"}, {"pattern": "b", "ignoreCase": True})
    assert out["match"] == "B"
    assert await run_node("text.regex_extract", {"text": "xyz"}, {"pattern": r"\d+"}) == {
        "match": "", "matches": [], "found": False}


async def test_regex_errors_are_clear() -> None:
    with pytest.raises(NodeError, match="invalid regular expression") as bad:
        await run_node("text.regex_extract", {"text": "x"}, {"pattern": "(unclosed"})
    assert bad.value.code == "invalid_pattern"
    with pytest.raises(NodeError, match="no capture group 2"):
        await run_node("text.regex_extract", {"text": "x"}, {"pattern": "(x)", "group": 2})


async def test_catastrophic_backtracking_is_stopped() -> None:
    with pytest.raises(NodeError, match="catastrophic") as slow:
        await run_node("text.regex_replace", {"text": "a" * 40 + "!"}, {"pattern": r"(a|aa)+$", "replacement": ""})
    assert slow.value.code == "regex_timeout"


async def test_regex_replace_uses_groups_and_counts() -> None:
    out = await run_node("text.regex_replace", {"text": "ann@x bob@y"},
                         {"pattern": r"(\w+)@(\w+)", "replacement": r"\2 at \1"})
    assert out == {"text": "x at ann y at bob", "replacements": 2}
    out = await run_node("text.regex_replace", {"text": "a1 b2 c3"}, {"pattern": r"\d", "replacement": "#", "count": 2})
    assert out == {"text": "a# b# c3", "replacements": 2}
    out = await run_node("text.regex_replace", {"text": "one\ntwo"},
                         {"pattern": "^", "replacement": "> ", "multiline": True})
    assert out["text"] == "> one\n> two"


@pytest.mark.parametrize(("mode", "expected"), [
    ("upper", "HELLO WORLD, FOOBAR HTTPSERVER!"),
    ("lower", "hello world, foobar httpserver!"),
    ("title", "Hello World, Foobar Httpserver!"),
    ("sentence", "Hello world, foobar httpserver!"),
    ("swap", "HELLO wORLD, FOObAR httpsERVER!"),
    ("snake", "hello_world_foo_bar_http_server"),
    ("kebab", "hello-world-foo-bar-http-server"),
    ("camel", "helloWorldFooBarHttpServer"),
    ("pascal", "HelloWorldFooBarHttpServer"),
])
async def test_case_modes(mode: str, expected: str) -> None:
    assert await text_of("text.case", "hello World, fooBar HTTPServer!", mode=mode) == expected


async def test_sentence_case_capitalises_each_sentence() -> None:
    assert await text_of("text.case", "FIRST ONE. second? third!", mode="sentence") == "First one. Second? Third!"


async def test_trim_sides_chars_and_collapse() -> None:
    assert await text_of("text.trim", "  a  b  ") == "a  b"
    assert await text_of("text.trim", "  a  ", side="start") == "a  "
    assert await text_of("text.trim", "  a  ", side="end") == "  a"
    assert await text_of("text.trim", "--a-b--", chars="-") == "a-b"
    assert await text_of("text.trim", " a \n\t b ", collapse=True) == "a b"


async def test_truncate_at_words_with_ellipsis() -> None:
    sentence = "the quick brown fox jumps"
    out = await run_node("text.truncate", {"text": sentence}, {"length": 14})
    assert out == {"text": "the quick…", "truncated": True}
    out = await run_node("text.truncate", {"text": sentence}, {"length": 14, "words": False, "ellipsis": "..."})
    assert out == {"text": "the quick b...", "truncated": True}
    assert len(out["text"]) == 14
    assert await run_node("text.truncate", {"text": "short"}, {"length": 10}) == {"text": "short", "truncated": False}
    assert (await run_node("text.truncate", {"text": "abcdef"}, {"length": 2, "ellipsis": "..."}))["text"] == ".."


@pytest.mark.parametrize(("unit", "expected"), [("characters", 17), ("words", 4), ("lines", 2)])
async def test_length_units(unit: str, expected: int) -> None:
    assert await run_node("text.length", {"text": "one two\nthree  4 "}, {"unit": unit}) == {"length": expected}


@pytest.mark.parametrize(("mode", "search", "case_sensitive", "expected"), [
    ("contains", "Fox", True, True), ("contains", "fox", True, False), ("contains", "fox", False, True),
    ("starts-with", "the", True, True), ("starts-with", "Fox", True, False), ("ends-with", "jumps", True, True),
    ("equals", "the Fox jumps", True, True), ("equals", "THE FOX JUMPS", False, True), ("equals", "the", True, False),
])
async def test_contains_modes(mode: str, search: str, case_sensitive: bool, expected: bool) -> None:
    out = await run_node("text.contains", {"text": "the Fox jumps", "search": search},
                         {"mode": mode, "caseSensitive": case_sensitive})
    assert out == {"result": expected}


# --- JSON ----------------------------------------------------------------------------------------------


async def test_json_parse_and_its_errors() -> None:
    assert await run_node("text.json_parse", {"text": '{"a": [1, 2.5, null]}'}) == {"value": {"a": [1, 2.5, None]}}
    with pytest.raises(NodeError, match="line 2 column 5") as bad:
        await run_node("text.json_parse", {"text": '{"a":\n    }'})
    assert bad.value.code == "invalid_json"
    with pytest.raises(NodeError, match="nested too deeply"):
        await run_node("text.json_parse", {"text": "[" * 100_000})
    with pytest.raises(NodeError, match="more than 64 levels"):  # parses, but would break what comes after
        await run_node("text.json_parse", {"text": "[" * 200 + "]" * 200})


async def test_json_stringify_compact_indented_sorted() -> None:
    value = {"b": 1, "a": ["é", None]}
    assert await run_node("text.json_stringify", {"value": value}) == {"text": '{"b":1,"a":["é",null]}'}
    out = await run_node("text.json_stringify", {"value": value}, {"indent": 2, "sortKeys": True})
    assert out["text"] == '{\n  "a": [\n    "é",\n    null\n  ],\n  "b": 1\n}'
    with pytest.raises(NodeError, match="cannot be written as JSON"):
        await run_node("text.json_stringify", {"value": Image.new("RGB", (2, 2))})
    with pytest.raises(NodeError, match="cannot be written as JSON"):
        await run_node("text.json_stringify", {"value": float("nan")})


async def test_json_query_selects_with_jmespath() -> None:
    data = {"people": [{"name": "ann", "age": 31}, {"name": "bob", "age": 25}, {"name": "cy", "age": 40}]}
    out = await run_node("json.query", {"data": data}, {"expression": "people[?age > `30`].name"})
    assert out == {"result": ["ann", "cy"]}
    assert await run_node("json.query", {"data": data}, {"expression": "length(people)"}) == {"result": 3}
    assert await run_node("json.query", {"data": data}, {"expression": "missing.field"}) == {"result": None}
    with pytest.raises(NodeError, match="invalid JMESPath") as bad:
        await run_node("json.query", {"data": data}, {"expression": "people[?"})
    assert bad.value.code == "invalid_expression"
    with pytest.raises(NodeError, match="JMESPath query failed"):
        await run_node("json.query", {"data": data}, {"expression": "length(`5`)"})


async def test_a_query_result_feeds_list_and_text_nodes() -> None:
    graph = {"nodes": [
        {"id": "reply", "type": "text.json_parse", "inputs": {"text": '{"tags": ["a", "b", "c"]}'}},
        {"id": "tags", "type": "json.query", "inputs": {"data": {"from": "reply", "output": "value"}},
         "params": {"expression": "tags"}},
        {"id": "n", "type": "list.count", "inputs": {"items": {"from": "tags", "output": "result"}}},
        {"id": "joined", "type": "text.join", "inputs": {"items": {"from": "tags", "output": "result"}}},
    ]}
    result = await run_graph(graph)
    assert result.nodes["n"] == {"count": 3}
    assert result.nodes["joined"] == {"text": "a, b, c"}


# --- prompts -------------------------------------------------------------------------------------------


async def test_prompt_combine_merges_and_dedupes() -> None:
    out = await run_node("text.prompt_combine", {"a": "a red fox, forest,", "b": "Forest , 4k", "c": " ,detailed"})
    assert out == {"text": "a red fox, forest, 4k, detailed"}
    kept = await run_node("text.prompt_combine", {"a": "x, y", "b": "X"}, {"dedupe": False, "separator": " | "})
    assert kept == {"text": "x | y | X"}


async def test_wildcard_is_repeatable_for_a_seed() -> None:
    template = "a {red|green|blue|gold|pink} {cat|dog|owl} in {rain|snow|fog}"
    first = await run_node("text.wildcard", {"text": template, "seed": 7}, {"count": 5})
    again = await run_node("text.wildcard", {"text": template, "seed": 7}, {"count": 5})
    assert first == again
    assert len(first["texts"]) == 5 and first["text"] == first["texts"][0]
    assert all(t.startswith("a ") and " in " in t and "{" not in t for t in first["texts"])
    other = [(await run_node("text.wildcard", {"text": template, "seed": s}))["text"] for s in range(10)]
    assert len(set(other)) > 3


async def test_wildcard_expands_every_combination_in_order() -> None:
    out = await run_node("text.wildcard", {"text": "{a|b|c}-{x|y}"}, {"mode": "all"})
    assert out["texts"] == ["a-x", "a-y", "b-x", "b-y", "c-x", "c-y"]
    nested = await run_node("text.wildcard", {"text": "{a|b {c|d}|}!"}, {"mode": "all"})
    assert nested["texts"] == ["a!", "b c!", "b d!", "!"]
    escaped = await run_node("text.wildcard", {"text": r"\{x\} {1|2} a|b"}, {"mode": "all"})
    assert escaped["texts"] == ["{x} 1 a|b", "{x} 2 a|b"]


async def test_wildcard_limits_and_syntax_errors() -> None:
    with pytest.raises(NodeError, match="8 combinations, over the limit of 4") as big:
        await run_node("text.wildcard", {"text": "{a|b}{c|d}{e|f}"}, {"mode": "all", "limit": 4})
    assert big.value.code == "too_many_combinations"
    with pytest.raises(NodeError, match="never closed"):
        await run_node("text.wildcard", {"text": "a {b|c"})
    with pytest.raises(NodeError, match="nest deeper"):
        await run_node("text.wildcard", {"text": "{" * 40 + "}" * 40})
    huge = "{a|b}" * 200  # 2**200 combinations: refused by counting, never expanded
    with pytest.raises(NodeError, match="over the limit"):
        await run_node("text.wildcard", {"text": huge}, {"mode": "all"})


# --- numbers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "params", "expected"), [
    (3.0, {}, "3"), (2.5, {}, "2.5"), (1234567, {"thousands": True}, "1,234,567"),
    (1234.5, {"thousands": True}, "1,234.5"), (3.14159, {"decimals": 2}, "3.14"), (2, {"decimals": 3}, "2.000"),
    (-0.1, {}, "-0.1"),
])
async def test_number_to_text(value: float, params: dict[str, Any], expected: str) -> None:
    assert await run_node("text.number_to_text", {"value": value}, params) == {"text": expected}


@pytest.mark.parametrize(("text", "params", "expected"), [
    ("3.5", {}, {"value": 3.5, "valid": True}),
    (" -12 ", {}, {"value": -12, "valid": True}),
    ("1,250", {}, {"value": 1250, "valid": True}),
    ("1e3", {}, {"value": 1000.0, "valid": True}),
    ("it costs $1,299.99 today", {"extract": True}, {"value": 1299.99, "valid": True}),
    ("score: 7/10", {"extract": True}, {"value": 7, "valid": True}),
    ("n/a", {"default": 0}, {"value": 0, "valid": False}),
    ("inf", {"default": -1}, {"value": -1, "valid": False}),
])
async def test_to_number(text: str, params: dict[str, Any], expected: dict[str, Any]) -> None:
    out = await run_node("text.to_number", {"text": text}, params)
    assert out == expected and type(out["value"]) is type(expected["value"])


async def test_to_number_without_default_fails() -> None:
    with pytest.raises(NodeError, match="'twelve' is not a number"):
        await run_node("text.to_number", {"text": "twelve"})
