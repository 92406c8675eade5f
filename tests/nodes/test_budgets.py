"""Budgets for work a user programs: templates, regular expressions and JSON queries run in the sandbox's child
processes, under a CPU-time and memory budget, off the event loop; exceeding a budget fails the node with a
clear code, never the process. Nothing here measures a duration: the probes count that the loop turned."""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import Iterator
from typing import Any

import pytest
import regex
from tests.nodes.helpers import registry

from nodeloom.engine import events as ev
from nodeloom.engine.context import LocalEnvironment
from nodeloom.engine.errors import GraphError, NodeError
from nodeloom.engine.executor import run
from nodeloom.engine.graph import validate
from nodeloom.media.sandbox import Budget, Sandbox
from nodeloom.nodes import text as text_pack
from nodeloom.nodes.core import render_template

NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
MB = 1024 * 1024


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(Budget(cpu_seconds=1, wall_seconds=20, memory_bytes=128 * MB), warm=1, max_children=2)
    yield box
    box.close()


async def run_one(box: Sandbox, node_type: str, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """One node in a graph of its own, with `box` as the environment's sandbox; NodeError on failure."""
    plan = validate({"nodes": [{"id": "node", "type": node_type, "inputs": inputs, "params": params}]}, registry())
    outputs: dict[str, Any] = {}
    async for event in run(plan, execution_id="ex_budget", account_id="acc_budget", inputs={},
                           env=LocalEnvironment({"sandbox": box})):
        if event.type == ev.NODE_COMPLETED:
            outputs = dict(event.outputs or {})
        elif event.type == ev.EXECUTION_FAILED:
            error = event.data.get("error") or {}
            raise NodeError(str(error.get("message")), code=str(error.get("code")))
    return outputs


async def while_ticking(work: Any) -> tuple[Any, int]:
    """Run `work` while a probe counts the event loop's turns; (work's result or exception, turns)."""
    turns = 0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal turns
        while not done.is_set():
            await asyncio.sleep(0.01)
            turns += 1

    ticker = asyncio.create_task(probe())
    try:
        result: Any = await work
    except NodeError as exc:
        result = exc
    finally:
        done.set()
        await ticker
    return result, turns


async def test_a_template_past_its_cpu_budget_fails_with_node_timeout_while_the_loop_turns(sandbox: Sandbox) -> None:
    outcome, turns = await while_ticking(run_one(sandbox, "text.template", {}, {"template": NESTED_LOOPS}))
    assert isinstance(outcome, NodeError) and outcome.code == "node_timeout", outcome
    assert turns > 3  # the loop kept turning while the template spent its budget elsewhere


async def test_a_template_past_its_memory_budget_fails_with_node_memory_without_growing_the_server(
        sandbox: Sandbox) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with pytest.raises(NodeError) as failed:
        await run_one(sandbox, "text.template", {}, {"template": '{{ "a" * 300000000 }}'})
    assert failed.value.code == "node_memory"
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak_after - peak_before < 100 * MB  # the 300 MB string was never built in this process


async def test_templates_still_render_and_report_their_own_errors(sandbox: Sandbox) -> None:
    out = await run_one(sandbox, "text.template", {"text": "world", "values": {"n": 2}},
                        {"template": "{{ text }} x{{ n * 3 }}"})
    assert out == {"text": "world x6"}
    with pytest.raises(NodeError) as failed:
        await run_one(sandbox, "text.template", {}, {"template": "{{ missing.attr }}"})
    assert failed.value.code == "template_error"


def test_a_counted_repetition_past_the_bound_is_refused_at_validation_without_compiling(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_a: Any, **_kw: Any) -> Any:
        raise AssertionError("the server process compiled a user's pattern")

    monkeypatch.setattr(regex, "compile", never)
    for pattern in ("x{1000000000}", "(?:a{200}){200}", "b{5,20000}"):
        for node_type in ("text.regex_extract", "text.regex_replace"):
            graph = {"nodes": [{"id": "r", "type": node_type, "inputs": {"text": "x"}, "params": {"pattern": pattern}}]}
            with pytest.raises(GraphError) as refused:
                validate(graph, registry())
            assert refused.value.details[0]["path"] == "nodes[0].params.pattern"
            assert "repetition" in refused.value.details[0]["message"]
    # ordinary counted repetitions, and braces that are not quantifiers, pass
    for pattern in (r"\d{3}-\d{4}", "[{]{2}", r"\{1000000\}", "a{,5}", "x{2}{3}"):
        validate({"nodes": [{"id": "r", "type": "text.regex_extract", "inputs": {"text": "x"},
                             "params": {"pattern": pattern}}]}, registry())


async def test_a_pattern_is_compiled_and_matched_in_the_sandbox_only(sandbox: Sandbox,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = await run_one(sandbox, "text.regex_extract", {"text": "ann@x bob@y"}, {"pattern": r"(\w+)@", "group": 1})
    assert out["matches"] == ["ann", "bob"]

    def never(*_a: Any, **_kw: Any) -> Any:
        raise AssertionError("the server process compiled a user's pattern")

    monkeypatch.setattr(text_pack.regex, "compile", never)  # the sandbox's children are other processes
    out = await run_one(sandbox, "text.regex_replace", {"text": "a1 b2"}, {"pattern": r"\d", "replacement": "#"})
    assert out == {"text": "a# b#", "replacements": 2}
    with pytest.raises(NodeError) as failed:
        await run_one(sandbox, "text.regex_extract", {"text": "x"}, {"pattern": "(x)", "group": 2})
    assert failed.value.code == "invalid_pattern"
    # a pattern that escaped validation (stored before the bound existed) still spends only the child's memory
    with pytest.raises(NodeError) as failed:
        await sandbox.run(text_pack.regex_find_all, "x{1000000000}", 0, "x", 0, 10)
    assert failed.value.code in ("node_memory", "invalid_pattern")


async def test_a_json_query_runs_in_the_sandbox(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_a: Any, **_kw: Any) -> Any:
        raise AssertionError("the server process evaluated a user's query")

    monkeypatch.setattr(text_pack.jmespath, "compile", never)
    data = {"people": [{"name": "a", "age": 40}, {"name": "b", "age": 20}]}
    out = await run_one(sandbox, "json.query", {"data": data}, {"expression": "people[?age > `30`].name"})
    assert out == {"result": ["a"]}
    with pytest.raises(NodeError) as failed:
        await run_one(sandbox, "json.query", {"data": data}, {"expression": "people[?"})
    assert failed.value.code == "invalid_expression"


async def test_a_child_that_dies_fails_the_call_clearly_and_the_next_call_gets_a_fresh_one(sandbox: Sandbox) -> None:
    with pytest.raises(NodeError) as failed:
        await sandbox.run(os.abort)
    assert failed.value.code == "node_memory"
    assert await sandbox.run(render_template, "{{ 6 * 7 }}", {}) == "42"


async def test_a_cancelled_call_kills_its_child(sandbox: Sandbox) -> None:
    task = asyncio.create_task(sandbox.run(render_template, NESTED_LOOPS, {}))
    while not sandbox._busy:  # started: a child holds the call
        await asyncio.sleep(0.01)
    [child] = list(sandbox._busy)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert child.proc.poll() is not None  # killed, not left spinning
    assert await sandbox.run(render_template, "ok", {}) == "ok"
