"""`nodeloom.client`, the server package's name for the SDK (re-exported from nodeloom-client), against a real
server: the names it had before the split keep working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.support.server import delay_graph, text_graph

import nodeloom_client
from nodeloom.client import AsyncClient, Client, NodeloomAPIError, ValidationFailed


def test_sync_client_end_to_end(server: Any, tmp_path: Path) -> None:
    _a, key = server.account()
    with Client(base_url=server.url, api_key=key) as nl:
        wf = nl.create_workflow("sdk", text_graph())
        nl.publish(wf["id"])
        done = nl.run(wf["id"], {"prompt": "sdk"})
        assert done.status == "COMPLETED" and done.outputs == {"greeting": "Hello sdk!"}
        submitted = nl.execute(wf["id"], {"prompt": "again"})
        events = list(nl.events(submitted.execution_id))
        assert events[-1].event == "execution.completed"
        path = tmp_path / "a.png"
        Image.new("RGB", (4, 4)).save(path)
        assert nl.upload(str(path)).file_id.startswith("file_")
        with pytest.raises(NodeloomAPIError) as err:
            nl.execute(wf["id"], {"nope": 1})
        assert err.value.status == 422 and err.value.code == "invalid_inputs"
        assert isinstance(err.value, ValidationFailed)
        assert nl.workflows("sdk")[0]["id"] == wf["id"]


async def test_async_client_cancel_and_idempotency(server: Any) -> None:
    _a, key = server.account()
    async with AsyncClient(base_url=server.url, api_key=key) as nl:
        wf = await nl.create_workflow("slow", delay_graph(20))
        await nl.publish(wf["id"])
        first = await nl.execute(wf["id"], idempotency_key="same-key")
        second = await nl.execute(wf["id"], idempotency_key="same-key")
        assert first.execution_id == second.execution_id
        await nl.cancel(first.execution_id)
        assert (await nl.wait(first.execution_id, timeout=20)).status == "CANCELLED"


async def test_retries_after_429_with_retry_after() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] < 3:
            return httpx.Response(429, headers={"Retry-After": "0"},
                                  json={"error": {"code": "rate_limited", "message": "slow down", "retryAfter": 0}})
        assert request.headers["Idempotency-Key"]
        return httpx.Response(202, json={"executionId": "ex_1", "status": "QUEUED"})

    async with AsyncClient(base_url="http://x", api_key="sk-test", transport=httpx.MockTransport(handler)) as nl:
        assert (await nl.execute("wf_1")).execution_id == "ex_1"
    assert calls["n"] == 3


def test_nodeloom_client_is_the_same_code() -> None:
    assert Client is nodeloom_client.Nodeloom and AsyncClient is nodeloom_client.AsyncNodeloom
    assert NodeloomAPIError is nodeloom_client.APIError
