"""Platform fixtures: servers with rate limits enforced and the priced test nodes, and their graphs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.support.server import LiveServer

PACKS = ["tests.support.nodes", "tests.platform.nodes"]


@pytest.fixture
def platform(make_server: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """make_server with the limits enforced (the shared test default only counts) and priced nodes."""

    def factory(**overrides: Any) -> LiveServer:
        overrides.setdefault("node_packs", PACKS)
        overrides.setdefault("rate_limits_enabled", True)
        return make_server(**overrides)

    return factory


def make_account(server: LiveServer, *, plan: str = "pro", credits: float = 1000, scopes: list[str] | None = None,
                 **limits: int | None) -> tuple[str, str]:
    """make_account() with per-account limit overrides (requests_per_minute=…, concurrency=…)."""
    account_id, key = server.account(plan=plan, credits=credits, scopes=scopes)
    if limits:
        server.services.limiter.set_limits(account_id, **limits)
    return account_id, key


def chain(*steps: dict[str, Any], output: str = "json") -> dict[str, Any]:
    """input.text `prompt` → each step in turn (linked through `value`/`text`) → an output node."""
    nodes: list[dict[str, Any]] = [{"id": "prompt", "type": "input.text", "params": {"name": "prompt",
                                                                                       "default": "x"}}]
    previous, port = "prompt", "text"
    for i, step in enumerate(steps):
        nid = step.get("id", f"n{i}")
        in_port = step.get("in", "value")
        nodes.append({"id": nid, "type": step["type"], "params": step.get("params", {}),
                      "inputs": {in_port: {"from": previous, "output": port}}})
        previous, port = nid, step.get("out", "value")
    if output == "json":
        nodes.append({"id": "out", "type": "output.json", "inputs": {"value": {"from": previous, "output": port}},
                      "params": {"name": "result"}})
    return {"nodes": nodes}


def priced_graph(seconds: float = 0.0) -> dict[str, Any]:
    """One 5-credit node."""
    return chain({"id": "paid", "type": "platform.priced", "params": {"seconds": seconds}})


def fan_out_graph() -> dict[str, Any]:
    """`count` (an input) → split into a list → a 3-credit node run once per element."""
    return {"nodes": [
        {"id": "count", "type": "input.integer", "params": {"name": "count", "default": 3}},
        {"id": "split", "type": "platform.split", "inputs": {"count": {"from": "count", "output": "value"}}},
        {"id": "each", "type": "platform.each", "inputs": {"text": {"from": "split", "output": "items"}}},
        {"id": "out", "type": "output.json", "inputs": {"value": {"from": "each", "output": "text"}},
         "params": {"name": "items"}},
    ]}


def balance(server: LiveServer, account_id: str) -> float:
    return float(server.services.billing.balance(account_id))


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])
