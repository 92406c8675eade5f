"""nodeloom-client (clients/python) against a live server: runs with progress, a cut event stream, every typed
error from a real answer, files both ways, a capped batch and a real signed callback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from PIL import Image
from tests.client.proxy import CuttingProxy
from tests.platform.conftest import make_account, priced_graph
from tests.support.server import LiveServer, text_graph
from tests.webhooks.receiver import Receiver

from nodeloom_client import (
    AsyncNodeloom,
    Conflict,
    CreditLine,
    ExecutionFailed,
    Forbidden,
    InsufficientCredits,
    Media,
    Nodeloom,
    NotFound,
    Progress,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
    WebhookVerificationError,
    verify_webhook,
)

PLATFORM_PACKS = ["tests.support.nodes", "tests.platform.nodes"]


def chain_graph(seconds: float = 0.3) -> dict[str, Any]:
    """prompt → template → delay → output: four nodes, one of them slow enough to cut a stream in."""
    return {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "x"}},
        {"id": "tpl", "type": "text.template", "inputs": {"text": {"from": "prompt", "output": "text"}},
         "params": {"template": "Hello {{ text }}!"}},
        {"id": "wait", "type": "util.delay", "inputs": {"value": {"from": "tpl", "output": "text"}},
         "params": {"seconds": seconds}},
        {"id": "out", "type": "output.text", "inputs": {"text": {"from": "wait", "output": "value"}},
         "params": {"name": "greeting"}},
    ]}


def image_graph() -> dict[str, Any]:
    return {"nodes": [
        {"id": "img", "type": "input.image", "params": {"name": "image", "required": True}},
        {"id": "out", "type": "output.image", "inputs": {"image": {"from": "img", "output": "image"}},
         "params": {"name": "image"}},
    ]}


def published(nl: Nodeloom, graph: dict[str, Any], name: str = "wf") -> str:
    wid = str(nl.create_workflow(name, graph)["id"])
    nl.publish(wid)
    return wid


def stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _at, step in edges:
        running += step
        most = max(most, running)
    return most


class CountingTransport(httpx.AsyncBaseTransport):
    """The real transport, counting the answers by status."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.statuses: dict[int, int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# runs and progress ---------------------------------------------------------------------------------------
def test_run_calls_on_progress_for_every_node_and_returns_typed_outputs(server: LiveServer) -> None:
    _account, key = server.account()
    seen: list[Progress] = []
    with Nodeloom(key, base_url=server.url) as nl:
        wid = published(nl, chain_graph(0.2))
        result = nl.run(wid, {"prompt": "progress"}, on_progress=seen.append)
    assert result.ok and result.outputs == {"greeting": "Hello progress!"}
    assert set(result.nodes) == {"prompt", "tpl", "wait", "out"}
    assert all(state.status == "COMPLETED" for state in result.nodes.values())
    for node in result.nodes:  # every node was seen starting and then completing, in that order
        events = [p.event for p in seen if p.node_id == node and p.event != "node.progress"]
        assert events == ["node.started", "node.completed"], (node, events)
    assert seen[0].event == "execution.started" and seen[-1].event == "execution.completed"
    assert seen[-1].fraction == 1.0 and set(seen[-1].nodes) == set(result.nodes)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and 0 < fractions[len(fractions) // 2] < 1


async def test_async_run_awaits_async_callbacks_and_raises_execution_failed(server: LiveServer) -> None:
    _account, key = server.account()
    events: list[str] = []

    async def on_progress(p: Progress) -> None:
        await asyncio.sleep(0)
        events.append(f"{p.event}:{p.node_id}")

    async with AsyncNodeloom(key, base_url=server.url) as nl:
        wf = await nl.create_workflow("async", text_graph())
        await nl.publish(wf["id"])
        done = await nl.run(wf["id"], {"prompt": "aio"}, on_progress=on_progress)
        assert done.outputs == {"greeting": "Hello aio!"}
        assert "node.completed:tpl" in events and events[-1] == "execution.completed:None"
        failing = await nl.create_workflow("fails", {"nodes": [
            {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
            {"id": "boom", "type": "test.fail", "inputs": {"value": {"from": "p", "output": "text"}},
             "params": {"message": "it broke"}}]})
        await nl.publish(failing["id"])
        with pytest.raises(ExecutionFailed) as failed:
            await nl.run(failing["id"])
        assert failed.value.execution.status == "FAILED" and failed.value.execution.error is not None
        assert failed.value.execution.error.node_id == "boom"
        quiet = await nl.run(failing["id"], raise_on_failure=False)
        assert quiet.status == "FAILED" and quiet.nodes["boom"].status == "FAILED"


def test_a_cut_event_stream_resumes_after_the_last_event_it_got(server: LiveServer) -> None:
    _account, key = server.account()
    proxy = CuttingProxy(server.port)
    try:
        with Nodeloom(key, base_url=proxy.url) as nl:
            wid = published(nl, chain_graph(1.0))
            submitted = nl.execute(wid, {"prompt": "cut"})
            received = list(nl.events(submitted.execution_id))
            # the uncut stream, straight from the server, as the reference
            with Nodeloom(key, base_url=server.url) as direct:
                reference = list(direct.events(submitted.execution_id))
    finally:
        proxy.close()
    assert proxy.cut_count == 1
    first, resumed = proxy.requests[0], proxy.requests[1]
    assert first.last_event_id is None and resumed.last_event_id is not None
    before_cut = [e for e in received if e.id is not None and e.id <= int(resumed.last_event_id)]
    assert before_cut and before_cut[-1].id == int(resumed.last_event_id)  # resumed after the last one it got
    # nothing lost, nothing repeated, in order
    assert [(e.id, e.event, e.node_id) for e in received] == [(e.id, e.event, e.node_id) for e in reference]
    assert received[-1].event == "execution.completed"


def test_run_survives_a_cut_stream_and_falls_back_to_polling_when_streams_keep_dying(server: LiveServer) -> None:
    _account, key = server.account()
    once = CuttingProxy(server.port)
    # every event stream dies before its first byte reaches the client
    always = CuttingProxy(server.port, marker=b"text/event-stream", cuts=1000, forward_marked=False)
    try:
        with Nodeloom(key, base_url=once.url) as nl:
            wid = published(nl, chain_graph(1.5))
            seen: list[Progress] = []
            assert nl.run(wid, {"prompt": "once"}, on_progress=seen.append).outputs == {"greeting": "Hello once!"}
            assert once.cut_count == 1 and len(once.requests) == 2
            assert [p.event for p in seen if p.node_id == "out"] == ["node.started", "node.completed"]
        with Nodeloom(key, base_url=always.url, stream_reconnects=1) as nl:
            seen = []
            at: dict[tuple[str, str | None], float] = {}

            def record(p: Progress) -> None:
                seen.append(p)
                at.setdefault((p.event, p.node_id), time.monotonic())

            result = nl.run(wid, {"prompt": "poll"}, on_progress=record)
            assert result.outputs == {"greeting": "Hello poll!"}
            assert len(always.requests) == 2  # the first stream and the one reconnect, then polling
            for node in result.nodes:  # polling still reports every node
                assert {"node.started", "node.completed"} <= {p.event for p in seen if p.node_id == node}
            assert seen[-1].event == "execution.completed"
            # live, while polling: the template's end was reported well before the slow node's
            assert at[("node.completed", "wait")] - at[("node.completed", "tpl")] > 0.3
    finally:
        once.close()
        always.close()


# typed errors from real answers ----------------------------------------------------------------------------
def test_each_error_answer_raises_its_typed_error(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(node_packs=PLATFORM_PACKS)

    async def boom(request: Request) -> None:
        raise RuntimeError("never shown to a client")

    server.app.add_api_route("/api/v1/test/boom", boom, methods=["GET"])
    account_id, key = server.account(credits=3)
    read_only = server.key(account_id, ["read"])
    with Nodeloom(key, base_url=server.url, max_retries=0) as nl:
        priced = published(nl, priced_graph(), "priced")
        with pytest.raises(InsufficientCredits) as short:
            nl.execute(priced)
        assert (short.value.status, short.value.code) == (402, "insufficient_credits")
        assert short.value.required == 5 and short.value.balance == 3
        assert short.value.breakdown == [CreditLine(node_id="paid", node_type="platform.priced", credits=5.0)]

        greeter = published(nl, text_graph(), "greeter")
        with pytest.raises(ValidationFailed) as invalid:
            nl.execute(greeter, {"nope": 1})
        assert invalid.value.status == 422 and invalid.value.code == "invalid_inputs"
        assert [d.path for d in invalid.value.details] == ["inputs.nope"]
        with pytest.raises(ValidationFailed) as bad_graph:
            nl.create_workflow("bad", {"nodes": [{"id": "a", "type": "no.such_type"}]})
        assert bad_graph.value.details[0].path.startswith("nodes[0]")

        with pytest.raises(NotFound) as missing:
            nl.poll("ex_missing")
        assert missing.value.status == 404 and missing.value.request_id

        draft = nl.create_workflow("draft", text_graph())["id"]
        with pytest.raises(Conflict) as unpublished:
            nl.execute(draft)
        assert unpublished.value.code == "workflow_not_published"

        with pytest.raises(ServerError) as crashed:
            nl.request("GET", "/api/v1/test/boom")
        assert crashed.value.status == 500 and crashed.value.code == "internal_error"
        assert "never shown" not in str(crashed.value)

    with Nodeloom("sk-not-a-real-key", base_url=server.url) as nl, pytest.raises(Unauthorized) as unauthorized:
        nl.workflows()
    assert unauthorized.value.status == 401 and unauthorized.value.code == "unauthorized"

    with Nodeloom(read_only, base_url=server.url) as nl, pytest.raises(Forbidden) as forbidden:
        nl.execute(greeter)
    assert forbidden.value.status == 403 and "execute" in forbidden.value.message


def test_429_is_typed_and_retry_after_is_honoured_a_bounded_number_of_times(
        make_server: Callable[..., LiveServer]) -> None:
    server = make_server(node_packs=PLATFORM_PACKS, rate_limits_enabled=True, rate_limit_window_seconds=2)
    _account, key = make_account(server, requests_per_minute=3)  # three requests per two-second window
    with Nodeloom(key, base_url=server.url, max_retries=0) as strict:
        for _ in range(3):
            strict.usage()
        with pytest.raises(RateLimited) as limited:
            strict.usage()
        assert limited.value.code == "rate_limited" and limited.value.retry_after is not None
        assert 0 < limited.value.retry_after <= 2
    transport = CountingTransport()
    with Nodeloom(key, base_url=server.url, max_retries=3, transport=transport) as patient:
        for _ in range(5):  # more than the window allows: each 429 is waited out (Retry-After), none raised
            assert patient.usage()["plan"] == "pro"
    assert transport.statuses.get(429, 0) >= 1 and transport.statuses[200] == 5
    with Nodeloom(key, base_url=server.url, max_retries=2, max_retry_wait=0.01) as impatient:
        for _ in range(4):
            try:
                impatient.usage()
            except RateLimited:
                break
        else:
            pytest.fail("a Retry-After longer than max_retry_wait must raise, not wait")


# files -------------------------------------------------------------------------------------------------
def test_upload_and_download_round_trip(server: LiveServer, tmp_path: Path) -> None:
    _account, key = server.account()
    source = tmp_path / "in.png"
    pixels = Image.new("RGB", (32, 16))
    pixels.putdata([(x * 8, y * 16, (x * y) % 256) for y in range(16) for x in range(32)])
    pixels.save(source)
    with Nodeloom(key, base_url=server.url) as nl:
        uploaded = nl.upload(source)
        assert uploaded.file_id.startswith("file_") and uploaded.content_type == "image/png"
        assert uploaded.size == source.stat().st_size
        wid = published(nl, image_graph())
        result = nl.run(wid, {"image": uploaded.file_id})
        image = result.outputs["image"]
        assert isinstance(image, Media) and (image.width, image.height) == (32, 16)
        saved = nl.download(image, tmp_path / "out" / "copy.png")
        into_dir = nl.download(image, tmp_path)  # a directory: the file is named after the link
        # a Path input is uploaded by the client itself
        again = nl.run(wid, {"image": source})
        third = nl.download(again.outputs["image"].url, tmp_path / "third.png")
        with pytest.raises(Forbidden) as tampered:
            nl.download(image.url.replace("sig=", "sig=0"), tmp_path / "bad.png")
        assert tampered.value.code == "invalid_signature" and not (tmp_path / "bad.png").exists()
    for path in (saved, into_dir, third):
        with Image.open(path) as got:
            assert got.size == (32, 16) and list(got.convert("RGB").getdata()) == list(pixels.getdata())
    assert into_dir.parent == tmp_path and into_dir.suffix == ".png"


# batches -----------------------------------------------------------------------------------------------
def test_a_batch_of_20_keeps_to_a_cap_of_2_backs_off_on_429_and_finishes_them_all(
        make_server: Callable[..., LiveServer]) -> None:
    server = make_server(node_packs=PLATFORM_PACKS, rate_limits_enabled=True, rate_limit_window_seconds=2,
                         worker_concurrency=8)
    # two at once; five executions per two-second window, so twenty must be refused (429) along the way
    _account, key = make_account(server, concurrency=2, executions_per_minute=5, requests_per_minute=100_000)
    transport = CountingTransport()
    yielded: list[tuple[float, int]] = []
    with Nodeloom(key, base_url=server.url, transport=transport) as nl:
        wid = published(nl, chain_graph(0.2))
        assert nl.concurrency_cap() == 2
        results = []
        for result in nl.batch(wid, [{"prompt": f"n{i}"} for i in range(20)], concurrency=5):
            yielded.append((time.time(), result.index))
            results.append(result)
    assert len(results) == 20 and sorted(r.index for r in results) == list(range(20))
    assert all(r.ok for r in results), [r.error or r.execution for r in results if not r.ok]
    assert all(r.outputs == {"greeting": f"Hello n{r.index}!"} for r in results)
    assert transport.statuses.get(429, 0) > 0  # the execution rate pushed back, and the batch waited it out
    runs = [r.execution for r in results if r.execution is not None]
    spans = [(stamp(e.raw["createdAt"]), stamp(e.raw["completedAt"])) for e in runs]
    assert most_at_once(spans) == 2  # from submission to end: never more than the account's cap in flight
    assert yielded[0][0] < max(end for _start, end in spans)  # results came as they finished, not all at the end


# webhooks ----------------------------------------------------------------------------------------------
def test_verify_webhook_accepts_a_real_signed_callback_and_refuses_forgeries(
        make_server: Callable[..., LiveServer]) -> None:
    server = make_server(allow_private_urls=True, webhook_retry_schedule=[0.2], webhook_retry_jitter=0.0,
                         webhook_poll_interval_seconds=0.05)
    receiver = Receiver().start()
    try:
        _account, key = server.account()
        with Nodeloom(key, base_url=server.url) as nl:
            secret = nl.account()["webhookSecret"]
            wid = published(nl, text_graph())
            result = nl.run(wid, {"prompt": "hook"}, webhook_url=receiver.url)
            [delivery] = receiver.wait_for(1)
    finally:
        receiver.stop()
    payload = verify_webhook(delivery.body, delivery.headers, secret)
    assert payload["type"] == "execution.completed" and payload["executionId"] == result.execution_id
    assert payload["outputs"] == {"greeting": "Hello hook!"}
    upper = {k.upper(): v for k, v in delivery.headers.items()}
    assert verify_webhook(delivery.body.decode(), upper, secret) == payload  # str body, any header case
    forged = json.dumps({**payload, "outputs": {"greeting": "forged"}}).encode()
    other_secret = "whsec_" + "QUJD" * 8
    stale = float(delivery.headers["webhook-timestamp"]) + 3600
    for body, headers, key_, now in [(forged, delivery.headers, secret, None),
                                     (delivery.body, delivery.headers, other_secret, None),
                                     (delivery.body, delivery.headers, secret, stale),
                                     (delivery.body, {"webhook-id": delivery.headers["webhook-id"]}, secret, None)]:
        with pytest.raises(WebhookVerificationError):
            verify_webhook(body, headers, key_, now=now)
