"""The request boundary, hardened (issue #15): strict JSON types, every allowed method in a 405's `Allow`,
chunked bodies over the limit, keys created expired, `http://` inputs, callback events as a set, anonymous
triggers on their own budget, user URLs refused even on a trusted vendor host, and messages without
object reprs."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from tests.support.server import LiveServer, publish, run_to_end, text_graph

from nodeloom.storage.models import Execution

MEDIA_GRAPH = {"nodes": [
    {"id": "img", "type": "input.image", "params": {"name": "image", "required": True}},
    {"id": "out", "type": "output.image", "inputs": {"image": {"from": "img", "output": "image"}},
     "params": {"name": "same"}},
]}


def error_of(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    return body["error"]


# strict types ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"version": True},
    {"version": 1.0},
    {"version": "1"},
    {"inputs": {}, "webhookUrl": 5},
    {"inputs": {}, "webhookEvents": "completed"},
])
def test_execute_refuses_wrong_json_types(api: tuple[httpx.Client, str], body: dict[str, Any]) -> None:
    c, _ = api
    wid = publish(c, text_graph())
    error_of(c.post(f"/api/v1/workflows/{wid}/execute", json=body), 422)
    assert c.get("/api/v1/workflows/executions", params={"workflowId": wid}).json()["data"] == []  # nothing ran


@pytest.mark.parametrize(("path", "method", "body"), [
    ("webhook", "PATCH", {"enabled": 0.0}),
    ("webhook", "PATCH", {"enabled": 0}),
    ("webhook", "PATCH", {"enabled": "false"}),
    ("", "PUT", {"name": 5}),
    ("estimate", "POST", {"version": True}),
])
def test_settings_and_edits_refuse_wrong_json_types(api: tuple[httpx.Client, str], path: str, method: str,
                                                    body: dict[str, Any]) -> None:
    c, _ = api
    wid = publish(c, text_graph())
    error_of(c.request(method, f"/api/v1/workflows/{wid}/{path}".rstrip("/"), json=body), 422)
    assert c.get(f"/api/v1/workflows/{wid}/webhook").json()["enabled"] is True  # not coerced to false


def test_right_types_still_pass(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, text_graph())
    assert c.post(f"/api/v1/workflows/{wid}/execute", json={"version": 1}).status_code == 202
    assert c.patch(f"/api/v1/workflows/{wid}/webhook", json={"enabled": False}).json()["enabled"] is False
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert c.post("/api/v1/keys", json={"name": "k", "scopes": ["read"], "expiresAt": soon}).status_code == 201


# 405 Allow -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PATCH", "/api/v1/workflows/wf_x", {"GET", "PUT", "DELETE"}),
    ("PUT", "/api/v1/workflows", {"GET", "POST"}),
    ("GET", "/api/v1/keys/key_x", {"DELETE"}),
    ("DELETE", "/api/v1/workflows/wf_x/webhook", {"GET", "PATCH"}),
])
def test_405_lists_every_allowed_method(api: tuple[httpx.Client, str], method: str, path: str,
                                        allowed: set[str]) -> None:
    c, _ = api
    r = c.request(method, path)
    error_of(r, 405)
    listed = {m.strip() for m in r.headers["allow"].split(",")}
    assert allowed <= listed and method not in listed


# callback events are a set --------------------------------------------------------------------------------
def test_callback_events_drop_duplicates(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(allow_private_urls=True)
    _acct, key = srv.account()
    with srv.client(key) as c:
        wid = publish(c, text_graph())
        r = c.patch(f"/api/v1/workflows/{wid}/webhook",
                    json={"callbackEvents": ["completed", "failed", "completed", "failed", "started"]})
        assert r.status_code == 200, r.text
        assert r.json()["callbackEvents"] == ["completed", "failed", "started"]
        assert c.get(f"/api/v1/workflows/{wid}/webhook").json()["callbackEvents"] == ["completed", "failed", "started"]
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={
            "webhookUrl": "http://127.0.0.1:9/hook", "webhookEvents": ["completed", "completed", "failed"]})
        assert r.status_code == 202, r.text
    with srv.services.db.read() as s:
        row = s.get(Execution, r.json()["executionId"])
        assert row is not None and row.webhook_events == ["completed", "failed"]


# API keys ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expires", [timedelta(minutes=-1), timedelta(days=-400), timedelta(0)])
def test_a_key_cannot_be_created_already_expired(api: tuple[httpx.Client, str], expires: timedelta) -> None:
    c, _ = api
    before = len(c.get("/api/v1/keys").json()["data"])
    at = (datetime.now(UTC) + expires).isoformat()
    error = error_of(c.post("/api/v1/keys", json={"name": "old", "scopes": ["read"], "expiresAt": at}), 422)
    assert error["details"][0]["path"] == "expiresAt"
    assert len(c.get("/api/v1/keys").json()["data"]) == before


# chunked bodies over the limit ----------------------------------------------------------------------------
def test_a_chunked_body_over_the_limit_is_413(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(max_body_bytes=2048)
    _acct, key = srv.account()

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "big", "graph": {"nodes": []}, "description": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    with srv.client(key) as c:
        for path in ("/api/v1/workflows", "/api/v1/workflows/validate"):
            r = c.post(path, content=chunks(), headers={"Content-Type": "application/json"})
            assert "content-length" not in r.request.headers  # sent chunked: the size is not declared
            assert error_of(r, 413)["code"] == "payload_too_large"
        small = c.post("/api/v1/workflows", content=iter([b'{"name": "ok", "graph": {"nodes": []}}']),
                       headers={"Content-Type": "application/json"})
        assert small.status_code == 201, small.text


# https inputs ---------------------------------------------------------------------------------------------
def test_http_inputs_are_refused_at_validation(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, MEDIA_GRAPH)
    for ref in ("http://example.com/a.png", {"url": "http://example.com/a.png"}):
        error = error_of(c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"image": ref}}), 422)
        assert error["details"] == [{"path": "inputs.image", "message": "a URL input must use https"}]
    assert c.get("/api/v1/workflows/executions", params={"workflowId": wid}).json()["data"] == []


def test_http_inputs_pass_validation_when_private_urls_are_allowed(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(allow_private_urls=True)
    _acct, key = srv.account()
    with srv.client(key) as c:
        wid = publish(c, MEDIA_GRAPH)
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"image": "http://127.0.0.1:9/a.png"}})
        assert r.status_code == 202, r.text


# messages without object reprs ---------------------------------------------------------------------------
def test_an_undecodable_image_fails_without_object_reprs(api: tuple[httpx.Client, str]) -> None:
    c, _ = api
    wid = publish(c, MEDIA_GRAPH)
    garbage = "data:image/png;base64," + base64.b64encode(b"this is not an image" * 10).decode()
    done = run_to_end(c, wid, {"image": garbage})
    assert done["status"] == "FAILED", done
    message = done["error"]["message"]
    assert done["error"]["code"] == "invalid_image"
    assert " at 0x" not in message and "<_io" not in message and "object" not in message


# anonymous triggers spend their webhook's own budget ------------------------------------------------------
def test_anonymous_triggers_never_spend_the_owners_budget(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(rate_limits_enabled=True)
    _acct, key = srv.account(plan="free")  # 10 requests a minute
    with srv.client(key) as owner:
        wid = publish(owner, text_graph())
        hook = owner.get(f"/api/v1/workflows/{wid}").json()["webhookId"]
        # disabled: each trigger is a 404, so no execution limit is reached before the request budget
        assert owner.patch(f"/api/v1/workflows/{wid}/webhook", json={"enabled": False}).status_code == 200
        spent = 4
        with srv.client() as stranger:
            answers = [stranger.post(f"/api/v1/webhooks/{hook}", json={}) for _ in range(12)]
            assert [a.status_code for a in answers] == [404] * 10 + [429] * 2  # the webhook's own 10 a minute
            assert answers[0].headers["x-ratelimit-limit"] == "10"
            assert error_of(answers[-1], 429)["code"] == "rate_limited"
            # the stranger's address budget is untouched by triggers
            anon = stranger.get("/api/v1/workflows")
            assert anon.status_code == 401 and int(anon.headers["x-ratelimit-remaining"]) >= 58
        mine = owner.get("/api/v1/workflows")
        assert mine.status_code == 200, mine.text  # the owner's own calls still pass
        assert mine.headers["x-ratelimit-remaining"] == str(10 - spent - 1)


def test_unknown_webhook_triggers_spend_the_address_budget(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(rate_limits_enabled=True, anonymous_requests_per_minute=3)
    with srv.client() as stranger:
        answers = [stranger.post("/api/v1/webhooks/wh_unknown", json={}).status_code for _ in range(4)]
    assert answers == [404, 404, 404, 429]


# the trusted-host case, end to end --------------------------------------------------------------------
@pytest.fixture
def local_llm() -> Iterator[str]:
    """A plain HTTP server on loopback standing for an operator's local LLM server."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b'{"secret": "internal"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def test_a_configured_vendor_host_does_not_open_user_urls(make_server: Callable[..., LiveServer],
                                                          local_llm: str) -> None:
    srv = make_server(openai_base_url=f"{local_llm}/v1")  # the documented local-LLM setting
    _acct, key = srv.account()
    with srv.client(key) as c:
        http_node = publish(c, {"nodes": [
            {"id": "h", "type": "util.http_request", "inputs": {"url": f"{local_llm}/v1/models"}},
            {"id": "o", "type": "output.json", "params": {"name": "body"},
             "inputs": {"value": {"from": "h", "output": "body"}}},
        ]})
        done = run_to_end(c, http_node)
        assert done["status"] == "FAILED", done
        assert done["error"]["code"] == "fetch_failed" and "loopback" in done["error"]["message"]

        media = publish(c, MEDIA_GRAPH)
        https_local = local_llm.replace("http://", "https://") + "/v1/a.png"
        done = run_to_end(c, media, {"image": https_local})
        assert done["status"] == "FAILED" and "loopback" in done["error"]["message"], done

        r = c.post(f"/api/v1/workflows/{media}/execute",
                   json={"inputs": {"image": "data:image/png;base64,AA=="}, "webhookUrl": https_local})
        assert error_of(r, 422)
        r = c.patch(f"/api/v1/workflows/{media}/webhook", json={"callbackUrl": https_local})
        assert error_of(r, 422)


def test_an_execution_over_its_memory_budget_fails_node_memory(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(execution_memory_mb=16)
    _account, key = srv.account()
    graph = {"nodes": [
        {"id": "a", "type": "image.gradient", "params": {"width": 2048, "height": 2048}},  # 12 MiB decoded
        {"id": "b", "type": "image.invert", "inputs": {"image": {"from": "a", "output": "image"}}},  # 24 MiB held
        {"id": "out", "type": "output.image", "inputs": {"image": {"from": "b", "output": "image"}},
         "params": {"name": "image"}},
    ]}
    with srv.client(key) as c:
        body = run_to_end(c, publish(c, graph))
    assert body["status"] == "FAILED", body
    assert body["error"]["code"] == "node_memory" and body["error"]["nodeId"] == "b"
