"""Helpers for the hosted model tests: graphs, executions, node memory, event streams."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from tests.providers.standins.fal import FalStandIn
from tests.providers.standins.gemini import GeminiStandIn
from tests.providers.standins.openai import OpenAIStandIn
from tests.providers.standins.replicate import ReplicateStandIn
from tests.support.server import LiveServer

from nodeloom.nodes import PACKS
from nodeloom.storage.models import ExecutionNode


def flux_graph(node_type: str = "generate.flux_2_pro", params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "a red fox"}},
        {"id": "gen", "type": node_type, "inputs": {"prompt": {"from": "prompt", "output": "text"}},
         "params": params or {}},
        {"id": "out", "type": "output.image", "inputs": {"image": {"from": "gen", "output": "image"}},
         "params": {"name": "image"}},
    ]}


def start_execution(client: httpx.Client, workflow_id: str, inputs: dict[str, Any] | None = None) -> str:
    r = client.post(f"/api/v1/workflows/{workflow_id}/execute", json={"inputs": inputs or {}})
    assert r.status_code == 202, r.text
    return str(r.json()["executionId"])


def node_memory(server: LiveServer, execution_id: str, node_id: str) -> dict[str, Any]:
    with server.services.db.read() as s:
        row = s.scalar(select(ExecutionNode).where(ExecutionNode.execution_id == execution_id,
                                                   ExecutionNode.node_id == node_id))
        return dict(row.memory or {}) if row is not None else {}


def events(client: httpx.Client, execution_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The finished execution's event stream, as (type, data) pairs."""
    body = client.get(f"/api/v1/workflows/executions/{execution_id}/events").text
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            out.append((fields["event"], json.loads(fields.get("data", "{}"))))
    return out


def wait_until(condition: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def with_packs(*names: str) -> list[str]:
    """`node_packs` for a server that needs these packs too (the local upscalers, video outputs), unless
    they are built in by now."""
    return ["tests.support.nodes", *(name for name in names if name not in PACKS)]


def standin_env(fal: FalStandIn, replicate: ReplicateStandIn, openai: OpenAIStandIn,
                gemini: GeminiStandIn) -> dict[str, str]:
    return {
        "NODELOOM_FAL_URL": fal.base_url, "FAL_KEY": fal.key,
        "NODELOOM_REPLICATE_URL": replicate.base_url, "REPLICATE_API_TOKEN": replicate.token,
        "NODELOOM_OPENAI_BASE_URL": f"{openai.base_url}/v1", "OPENAI_API_KEY": openai.key,
        "NODELOOM_GEMINI_URL": gemini.base_url, "GEMINI_API_KEY": gemini.key,
        # polling and backoff in milliseconds, so the suite never waits like production does
        "NODELOOM_PROVIDER_POLL_INTERVAL_SECONDS": "0.02", "NODELOOM_PROVIDER_POLL_MAX_INTERVAL_SECONDS": "0.05",
        "NODELOOM_PROVIDER_RETRY_BASE_SECONDS": "0.01",
    }
