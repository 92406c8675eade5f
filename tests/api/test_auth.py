"""Authentication (401), scopes (403), tenancy (404) and the error envelope on every error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tests.support.server import LiveServer, publish, run_to_end, text_graph


def assert_envelope(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in r.text
    return body["error"]


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": "Bearer sk-short"},
    {"Authorization": "Bearer sk-" + "A" * 43},
    {"Authorization": "Bearer sk-has spaces in it and more"},
])
def test_401_for_missing_malformed_or_unknown_keys(server: LiveServer, headers: dict[str, str]) -> None:
    r = httpx.get(server.url + "/api/v1/workflows", headers=headers)
    assert_envelope(r, 401, "unauthorized")


def test_revoked_key_is_401(server: LiveServer) -> None:
    account_id, key = server.account()
    with server.client(key) as c:
        other = c.post("/api/v1/keys", json={"name": "tmp", "scopes": ["read"]}).json()
        assert httpx.get(server.url + "/api/v1/workflows",
                         headers={"Authorization": f"Bearer {other['key']}"}).status_code == 200
        assert c.delete(f"/api/v1/keys/{other['id']}").status_code == 204
    r = httpx.get(server.url + "/api/v1/workflows", headers={"Authorization": f"Bearer {other['key']}"})
    assert_envelope(r, 401, "unauthorized")


def test_expired_key_is_401(server: LiveServer) -> None:
    from nodeloom.storage.models import ApiKey

    account_id, key = server.account()
    with server.client(key) as c:
        soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        expired = c.post("/api/v1/keys", json={"name": "old", "scopes": ["read"], "expiresAt": soon}).json()
    with server.services.db.write() as s:  # a key cannot be created expired (422): let this one run out
        row = s.get(ApiKey, expired["id"])
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    r = httpx.get(server.url + "/api/v1/workflows", headers={"Authorization": f"Bearer {expired['key']}"})
    assert_envelope(r, 401, "unauthorized")


def test_key_is_shown_once_and_stored_hashed(server: LiveServer) -> None:
    _acct, key = server.account()
    with server.client(key) as c:
        created = c.post("/api/v1/keys", json={"name": "ci", "scopes": ["read", "execute"]})
        assert created.status_code == 201
        body = created.json()
        assert body["key"].startswith("sk-") and body["prefix"] == body["key"][:11]
        listed = c.get("/api/v1/keys").json()["data"]
        assert all("key" not in k for k in listed)
        assert body["id"] in {k["id"] for k in listed}
    import sqlite3

    db = sqlite3.connect(server.settings.data_dir / "nodeloom.db")
    stored = [row[0] for row in db.execute("select digest from api_keys")]
    assert body["key"] not in stored and all(len(d) == 64 for d in stored)
    dump = "\n".join(db.iterdump())
    assert body["key"] not in dump


@pytest.mark.parametrize(("scopes", "method", "path", "needed"), [
    (["read"], "POST", "/api/v1/workflows", "manage"),
    (["execute"], "GET", "/api/v1/workflows", "read"),
    (["read"], "GET", "/api/v1/keys", "manage"),
    (["read"], "GET", "/api/v1/account", "manage"),
    (["manage"], "GET", "/api/v1/nodes", "read"),
    (["read"], "POST", "/api/v1/uploads", "execute"),
])
def test_403_names_the_missing_scope(server: LiveServer, scopes: list[str], method: str, path: str,
                                     needed: str) -> None:
    acct, _ = server.account()
    key = server.key(acct, scopes)
    r = httpx.request(method, server.url + path, headers={"Authorization": f"Bearer {key}"}, json={})
    err = assert_envelope(r, 403, "forbidden")
    assert f"'{needed}'" in err["message"]


def test_execute_scope_and_draft_needs_manage(server: LiveServer) -> None:
    acct, admin = server.account()
    with server.client(admin) as c:
        wid = publish(c, text_graph())
    runner = server.key(acct, ["execute", "read"])
    with server.client(runner) as c:
        assert c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}}).status_code == 202
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}, "version": "draft"})
        assert_envelope(r, 403, "forbidden")
    reader = server.key(acct, ["read"])
    r = httpx.post(f"{server.url}/api/v1/workflows/{wid}/execute", json={},
                   headers={"Authorization": f"Bearer {reader}"})
    assert_envelope(r, 403, "forbidden")


def test_other_accounts_resources_are_404(server: LiveServer) -> None:
    _a, key_a = server.account(name="A")
    _b, key_b = server.account(name="B")
    with server.client(key_a) as a:
        wid = publish(a, text_graph())
        done = run_to_end(a, wid)
        eid = done["executionId"]
        upload = a.post("/api/v1/uploads", files={"file": ("x.png", _png(), "image/png")}).json()
        key_id = a.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]}).json()["id"]
    with server.client(key_b) as b:
        for method, path in [
            ("GET", f"/api/v1/workflows/{wid}"), ("PUT", f"/api/v1/workflows/{wid}"),
            ("DELETE", f"/api/v1/workflows/{wid}"), ("POST", f"/api/v1/workflows/{wid}/publish"),
            ("GET", f"/api/v1/workflows/{wid}/versions"), ("GET", f"/api/v1/workflows/{wid}/versions/1"),
            ("POST", f"/api/v1/workflows/{wid}/execute"),
            ("GET", f"/api/v1/workflows/executions/{eid}/poll"), ("GET", f"/api/v1/workflows/executions/{eid}/events"),
            ("POST", f"/api/v1/workflows/executions/{eid}/cancel"), ("DELETE", f"/api/v1/workflows/executions/{eid}"),
            ("DELETE", f"/api/v1/keys/{key_id}"),
        ]:
            r = b.request(method, path, json={"name": "x", "graph": text_graph()} if method == "PUT" else {})
            assert_envelope(r, 404, "not_found")
        listed = b.get("/api/v1/workflows/executions").json()["data"]
        assert listed == []
        # another account's fileId cannot be used as an input either
        wid_b = publish(b, {"nodes": [
            {"id": "i", "type": "input.image", "params": {"name": "image"}},
            {"id": "o", "type": "output.image", "inputs": {"image": {"from": "i", "output": "image"}},
             "params": {"name": "image"}}]})
        res = run_to_end(b, wid_b, {"image": upload["fileId"]})
        assert res["status"] == "FAILED" and "not found" in res["error"]["message"]


def test_framework_errors_use_the_envelope(server: LiveServer) -> None:
    _acct, key = server.account()
    with server.client(key) as c:
        assert_envelope(c.get("/api/v1/nope"), 404, "not_found")
        assert_envelope(c.delete("/api/v1/workflows"), 405, "method_not_allowed")
        assert_envelope(c.get("/api/v1/workflows?limit=0"), 422, "validation_error")
        r = c.post("/api/v1/workflows", content=b"{not json", headers={"Content-Type": "application/json"})
        assert_envelope(r, 400, "invalid_json")
        err = assert_envelope(c.post("/api/v1/workflows", json={"graph": {"nodes": []}}), 422, "validation_error")
        assert err["details"][0]["path"] == "name"


def test_body_over_limit_is_413(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(max_body_bytes=4096)
    _acct, key = server.account()
    with server.client(key) as c:
        r = c.post("/api/v1/workflows", json={"name": "big", "graph": {"nodes": []}, "description": "x" * 5000})
        assert_envelope(r, 413, "payload_too_large")


def test_cors_from_configuration(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(cors_origins="https://app.example.com")
    r = httpx.options(server.url + "/api/v1/workflows", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    r = httpx.options(server.url + "/api/v1/workflows", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_no_cors_by_default(server: LiveServer) -> None:
    r = httpx.get(server.url + "/healthz", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in r.headers


def test_every_response_has_a_request_id(server: LiveServer) -> None:
    assert httpx.get(server.url + "/healthz").headers["x-request-id"]
    assert httpx.get(server.url + "/api/v1/workflows").headers["x-request-id"]


def test_account_shows_webhook_secret_and_rotates(server: LiveServer) -> None:
    _acct, key = server.account(plan="starter", credits=12.5)
    with server.client(key) as c:
        a = c.get("/api/v1/account").json()
        assert a["plan"] == "starter" and a["credits"] == 12.5 and a["webhookSecret"].startswith("whsec_")
        b = c.post("/api/v1/account/webhook-secret/rotate").json()
        assert b["webhookSecret"].startswith("whsec_") and b["webhookSecret"] != a["webhookSecret"]


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buf, "PNG")
    return buf.getvalue()
