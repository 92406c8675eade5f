"""Secrets are declared: a node reads only the raw secrets its type names in `Node.secrets`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nodeloom.engine import events as ev
from nodeloom.engine.context import LocalEnvironment, NodeContext
from nodeloom.engine.errors import NodeError
from nodeloom.engine.executor import run
from nodeloom.engine.graph import validate
from nodeloom.engine.node import Context, Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Param, Port


def environment() -> LocalEnvironment:
    """An environment holding more secrets than any node type declares."""
    return LocalEnvironment(secrets={"ALPHA_KEY": "alpha-value", "BETA_KEY": "beta-value", "HOME": "/root"})


class Reads(Node):
    """Reads the secret its `name` param names."""

    outputs = (Port("value", "any"),)

    async def run(self, ctx: Context, name: str) -> dict[str, Any]:
        return {"value": ctx.secret(name)}


class ReadsAlpha(Reads):
    type = "t.reads_alpha"
    secrets = ("ALPHA_KEY",)
    params = (Param("name", "text", default="ALPHA_KEY"),)


class ReadsBeta(Reads):
    type = "t.reads_beta"
    secrets = ("BETA_KEY", "GAMMA_KEY")
    params = (Param("name", "text", default="BETA_KEY"),)


class DeclaresNothing(Reads):
    type = "t.declares_nothing"
    params = (Param("name", "text", default="ALPHA_KEY"),)


def registry() -> Registry:
    return Registry([ReadsAlpha, ReadsBeta, DeclaresNothing])


async def events_of(nodes: list[dict[str, Any]]) -> list[ev.Event]:
    graph = validate({"nodes": nodes}, registry())
    return [e async for e in run(graph, execution_id="ex_s", inputs={}, env=environment())]


def outputs(events: list[ev.Event]) -> dict[str | None, Any]:
    return {e.node_id: (e.outputs or {}).get("value") for e in events if e.type == ev.NODE_COMPLETED}


async def test_a_declared_secret_is_readable() -> None:
    events = await events_of([{"id": "a", "type": "t.reads_alpha"}, {"id": "b", "type": "t.reads_beta"},
                              {"id": "g", "type": "t.reads_beta", "params": {"name": "GAMMA_KEY"}}])
    assert events[-1].type == ev.EXECUTION_COMPLETED
    # declared but not configured on this server: None, as the environment says
    assert outputs(events) == {"a": "alpha-value", "b": "beta-value", "g": None}


@pytest.mark.parametrize("name", ["HOME", "BETA_KEY", "alpha_key", ""])
async def test_an_undeclared_secret_fails_the_node(name: str) -> None:
    events = await events_of([{"id": "a", "type": "t.reads_alpha", "params": {"name": name}}])
    assert events[-1].type == ev.EXECUTION_FAILED
    error = events[-1].data["error"]
    assert error["code"] == "secret_not_declared" and error["nodeId"] == "a"
    # the message tells the pack's author what to do, and names no value
    assert f"'{name}'" in error["message"] and "t.reads_alpha" in error["message"]
    assert "secrets" in error["message"] and "declar" in error["message"]
    assert "value" not in error["message"] and "/root" not in error["message"]


async def test_another_node_types_declaration_does_not_open_a_secret() -> None:
    # t.reads_alpha runs in the same graph (and first) and declares ALPHA_KEY; t.declares_nothing may not read it
    events = await events_of([{"id": "a", "type": "t.reads_alpha"},
                              {"id": "n", "type": "t.declares_nothing", "params": {"name": "ALPHA_KEY"}}])
    assert outputs(events) == {"a": "alpha-value"}
    assert events[-1].data["error"]["code"] == "secret_not_declared"
    assert events[-1].data["error"]["nodeId"] == "n"
    # nor does one declaring other names (BETA_KEY) reach ALPHA_KEY
    events = await events_of([{"id": "a", "type": "t.reads_alpha"},
                              {"id": "b", "type": "t.reads_beta", "params": {"name": "ALPHA_KEY"}}])
    assert events[-1].data["error"]["code"] == "secret_not_declared"
    assert events[-1].data["error"]["nodeId"] == "b"


def test_a_context_built_without_declarations_reads_no_secret() -> None:
    async def emit(node_id: str, fraction: float, message: str | None) -> None: ...

    def ctx(**kw: Any) -> NodeContext:
        return NodeContext(execution_id="e", account_id="acc", node_id="n", inputs={}, env=environment(),
                           emit_progress=emit, cancel_event=asyncio.Event(), **kw)

    assert ctx(secrets=("BETA_KEY",), node_type="t.x").secret("BETA_KEY") == "beta-value"
    with pytest.raises(NodeError) as info:
        ctx().secret("BETA_KEY")
    assert info.value.code == "secret_not_declared" and info.value.node_id == "n"


def test_the_registry_refuses_a_declaration_that_is_not_a_tuple_of_names() -> None:
    class OneString(Node):
        type = "t.one_string"
        secrets = ("MY_KEY")  # the mistake under test: a string, not a tuple

    with pytest.raises(ValueError, match="tuple of names"):
        Registry([OneString])
    # a declaration is names only: no secret's value reaches the catalogue
    assert not any(value in repr(registry().catalogue()) for value in ("alpha-value", "beta-value"))
