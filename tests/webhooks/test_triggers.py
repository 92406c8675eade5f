"""Webhook triggers: no credentials, the webhookId as the capability, optional signatures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import standardwebhooks
from tests.support.server import LiveServer, publish, text_graph, wait_status
from tests.webhooks.receiver import Receiver

from nodeloom.webhooks import generate_secret, sign_headers

FastApi = tuple[httpx.Client, LiveServer]


def webhook_id(client: httpx.Client, workflow_id: str) -> str:
    return client.get(f"/api/v1/workflows/{workflow_id}").json()["webhookId"]


def anonymous(srv: LiveServer) -> httpx.Client:
    return srv.client()


def test_trigger_runs_the_published_workflow_without_credentials(fast_api: FastApi) -> None:
    client, srv = fast_api
    wid = publish(client, text_graph())
    hook = webhook_id(client, wid)
    with anonymous(srv) as anon:
        for path in (f"/api/v1/webhooks/{hook}", f"/api/v1/workflow/{hook}/trigger"):
            r = anon.post(path, json={"prompt": "trigger"})
            assert r.status_code == 202, r.text
            body = r.json()
            assert body["status"] == "QUEUED" and body["executionId"].startswith("ex_")
            assert anon.get(f"/api/v1/workflows/executions/{body['executionId']}/poll").status_code == 401
            done = wait_status(client, body["executionId"], {"COMPLETED", "FAILED"})  # reading needs a key
            assert done["outputs"] == {"greeting": "Hello trigger!"}
            assert done["workflowId"] == wid


def test_webhook_ids_are_unguessable(fast_api: FastApi) -> None:
    client, _srv = fast_api
    ids = {webhook_id(client, publish(client, text_graph(), name=f"w{i}")) for i in range(3)}
    assert len(ids) == 3
    for hook in ids:
        token = hook.removeprefix("wh_")
        assert hook.startswith("wh_") and len(token) * 6 >= 128


def test_unknown_unpublished_and_disabled_webhooks_are_404(fast_api: FastApi) -> None:
    client, srv = fast_api
    draft = client.post("/api/v1/workflows", json={"name": "draft", "graph": text_graph()}).json()
    published = publish(client, text_graph())
    hook = webhook_id(client, published)
    with anonymous(srv) as anon:
        assert anon.post("/api/v1/webhooks/wh_unknown", json={}).status_code == 404
        assert anon.post(f"/api/v1/webhooks/{draft['webhookId']}", json={}).status_code == 404
        assert anon.post(f"/api/v1/workflow/{draft['webhookId']}/trigger", json={}).status_code == 404

        r = client.patch(f"/api/v1/workflows/{published}/webhook", json={"enabled": False})
        assert r.status_code == 200, r.text
        assert r.json()["enabled"] is False and r.json()["active"] is False
        assert client.get(f"/api/v1/workflows/{published}").json()["webhookEnabled"] is False
        r = anon.post(f"/api/v1/webhooks/{hook}", json={})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

        client.patch(f"/api/v1/workflows/{published}/webhook", json={"enabled": True})
        assert anon.post(f"/api/v1/webhooks/{hook}", json={}).status_code == 202


def test_rotating_issues_a_new_id_and_retires_the_old(fast_api: FastApi) -> None:
    client, srv = fast_api
    wid = publish(client, text_graph())
    old = webhook_id(client, wid)
    r = client.post(f"/api/v1/workflows/{wid}/webhook/rotate")
    assert r.status_code == 200, r.text
    new = r.json()["webhookId"]
    assert new != old and webhook_id(client, wid) == new
    with anonymous(srv) as anon:
        assert anon.post(f"/api/v1/webhooks/{old}", json={}).status_code == 404
        assert anon.post(f"/api/v1/webhooks/{new}", json={}).status_code == 202


def test_settings_need_manage_and_stay_in_their_account(fast_server: Any) -> None:
    srv = fast_server()
    account_id, key = srv.account()
    reader = srv.key(account_id, ["read", "execute"])
    _other, other_key = srv.account(name="Other")
    with srv.client(key) as client, srv.client(reader) as read_only, srv.client(other_key) as other:
        wid = publish(client, text_graph())
        assert read_only.patch(f"/api/v1/workflows/{wid}/webhook", json={"enabled": False}).status_code == 403
        assert read_only.post(f"/api/v1/workflows/{wid}/webhook/rotate").status_code == 403
        assert read_only.get(f"/api/v1/workflows/{wid}/webhook").status_code == 200
        assert other.patch(f"/api/v1/workflows/{wid}/webhook", json={"enabled": False}).status_code == 404
        assert other.post(f"/api/v1/workflows/{wid}/webhook/rotate").status_code == 404
        with srv.client() as anon:
            assert anon.patch(f"/api/v1/workflows/{wid}/webhook", json={"enabled": False}).status_code == 401


def test_bad_bodies(fast_api: FastApi) -> None:
    client, srv = fast_api
    hook = webhook_id(client, publish(client, text_graph()))
    with anonymous(srv) as anon:
        r = anon.post(f"/api/v1/webhooks/{hook}", content=b"{not json",
                      headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        assert anon.post(f"/api/v1/webhooks/{hook}", json=["a"]).status_code == 422
        r = anon.post(f"/api/v1/webhooks/{hook}", json={"nope": 1})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "inputs.nope"
        assert anon.post(f"/api/v1/webhooks/{hook}", content=b"").status_code == 202  # no inputs: defaults
        r = anon.post(f"/api/v1/webhooks/{hook}", content=b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"  # too deep to parse
        r = anon.post(f"/api/v1/webhooks/{hook}", content=b'{"prompt": ' + b"[" * 100 + b"]" * 100 + b"}")
        assert r.status_code == 422 and r.json()["error"]["details"][0]["path"] == "inputs.prompt"


# signed triggers -----------------------------------------------------------------------------------------

def signed(secret: str, body: bytes, *, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers from the independent implementation of the scheme."""
    ts = int(time.time()) if timestamp is None else timestamp
    wh = standardwebhooks.Webhook(secret)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "content-type": "application/json",
            "webhook-signature": wh.sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode())}


@pytest.fixture
def secured(fast_api: FastApi) -> Iterator[tuple[httpx.Client, str, str]]:
    client, srv = fast_api
    wid = publish(client, text_graph())
    secret = generate_secret()
    r = client.patch(f"/api/v1/workflows/{wid}/webhook", json={"triggerSecret": secret})
    assert r.status_code == 200, r.text
    assert r.json()["triggerSecretSet"] is True
    assert secret not in r.text and secret not in client.get(f"/api/v1/workflows/{wid}/webhook").text
    with anonymous(srv) as anon:
        yield anon, f"/api/v1/webhooks/{webhook_id(client, wid)}", secret


def test_signed_trigger_is_accepted_once(secured: tuple[httpx.Client, str, str]) -> None:
    anon, path, secret = secured
    body = json.dumps({"prompt": "signed"}).encode()
    headers = signed(secret, body, msg_id="msg_first")
    r = anon.post(path, content=body, headers=headers)
    assert r.status_code == 202, r.text

    r = anon.post(path, content=body, headers=headers)  # the same message again
    assert r.status_code == 401 and r.json()["error"]["code"] == "webhook_replayed"
    assert anon.post(path, content=body, headers=signed(secret, body, msg_id="msg_second")).status_code == 202


@pytest.mark.parametrize("case", ["unsigned", "other_secret", "tampered", "stale", "future", "garbage"])
def test_bad_signatures_are_refused(case: str, secured: tuple[httpx.Client, str, str]) -> None:
    anon, path, secret = secured
    body = json.dumps({"prompt": "x"}).encode()
    headers = {
        "unsigned": {"content-type": "application/json"},
        "other_secret": signed(generate_secret(), body, msg_id="msg_a"),
        "tampered": signed(secret, b'{"prompt": "y"}', msg_id="msg_b"),
        "stale": signed(secret, body, msg_id="msg_c", timestamp=int(time.time()) - 6 * 60),
        "future": signed(secret, body, msg_id="msg_d", timestamp=int(time.time()) + 6 * 60),
        "garbage": {**signed(secret, body, msg_id="msg_e"), "webhook-signature": "v1,bm9wZQ=="},
    }[case]
    r = anon.post(path, content=body, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_webhook_signature"


def test_a_refused_trigger_does_not_use_up_its_id(secured: tuple[httpx.Client, str, str]) -> None:
    anon, path, secret = secured
    bad = json.dumps({"unknown": 1}).encode()
    assert anon.post(path, content=bad, headers=signed(secret, bad, msg_id="msg_retry")).status_code == 422
    good = json.dumps({"prompt": "fixed"}).encode()
    assert anon.post(path, content=good, headers=signed(secret, good, msg_id="msg_retry")).status_code == 202


def test_nodeloom_signs_triggers_too(secured: tuple[httpx.Client, str, str]) -> None:
    anon, path, secret = secured
    body = b'{"prompt": "sdk"}'
    headers = sign_headers([secret], msg_id="msg_sdk", timestamp=int(time.time()), body=body)
    assert anon.post(path, content=body, headers=headers).status_code == 202


def test_trigger_secret_must_be_a_whsec_secret(fast_api: FastApi) -> None:
    client, _srv = fast_api
    wid = publish(client, text_graph())
    for bad in ("plain-text", "whsec_!!!", "whsec_c2hvcnQ="):
        r = client.patch(f"/api/v1/workflows/{wid}/webhook", json={"triggerSecret": bad})
        assert r.status_code == 422, bad
    client.patch(f"/api/v1/workflows/{wid}/webhook", json={"triggerSecret": generate_secret()})
    r = client.patch(f"/api/v1/workflows/{wid}/webhook", json={"triggerSecret": None})
    assert r.json()["triggerSecretSet"] is False


# triggered runs are executions like any other ----------------------------------------------------------

def test_the_default_callback_applies_to_triggered_runs(fast_api: FastApi, receiver: Receiver) -> None:
    client, srv = fast_api
    wid = publish(client, text_graph())
    r = client.patch(f"/api/v1/workflows/{wid}/webhook",
                     json={"callbackUrl": receiver.url, "callbackEvents": ["started", "completed"]})
    assert r.status_code == 200, r.text
    assert r.json()["callbackUrl"] == receiver.url
    with anonymous(srv) as anon:
        r = anon.post(f"/api/v1/webhooks/{webhook_id(client, wid)}", json={"prompt": "cb"})
        eid = r.json()["executionId"]
    types = [json.loads(r.body)["type"] for r in receiver.wait_for(2)]
    assert sorted(types) == ["execution.completed", "execution.started"]
    assert all(json.loads(r.body)["executionId"] == eid for r in receiver.requests)

    # an execute that names its own callback overrides the default; one that names none inherits it
    explicit = client.post(f"/api/v1/workflows/{wid}/execute",
                           json={"webhookUrl": receiver.url + "/mine", "webhookEvents": ["completed"]}).json()
    wait_status(client, explicit["executionId"], {"COMPLETED"})
    request = receiver.wait_for(3)[2]
    assert request.path == "/hook/mine"


def test_triggered_runs_are_listed_with_the_accounts_executions(fast_api: FastApi) -> None:
    client, srv = fast_api
    wid = publish(client, text_graph())
    with anonymous(srv) as anon:
        eid = anon.post(f"/api/v1/webhooks/{webhook_id(client, wid)}", json={}).json()["executionId"]
    listed = client.get("/api/v1/workflows/executions", params={"workflowId": wid}).json()["data"]
    assert [e["executionId"] for e in listed] == [eid]


def test_triggers_share_the_accounts_execution_limits(fast_server: Any) -> None:
    srv = fast_server(rate_limits_enabled=True)
    _acct, key = srv.account()
    client = srv.client(key)
    wid = publish(client, text_graph())
    hook = webhook_id(client, wid)
    for _ in range(6):
        assert client.post(f"/api/v1/workflows/{wid}/execute", json={}).status_code == 202
    with anonymous(srv) as anon:
        answers = [anon.post(f"/api/v1/webhooks/{hook}", json={}) for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 202, 429]  # 10 executions a minute in all
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "execution_rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    usage = client.get("/api/v1/usage").json()
    assert usage["executions"]["today"] == 10
    client.close()


def paid_graph() -> dict[str, Any]:
    """One hosted LLM node: it costs credits, so an empty balance refuses it before anything runs."""
    return {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "hi"}},
        {"id": "chat", "type": "llm.chat", "inputs": {"prompt": {"from": "prompt", "output": "text"}}},
        {"id": "out", "type": "output.text", "inputs": {"text": {"from": "chat", "output": "text"}},
         "params": {"name": "reply"}},
    ]}


def test_an_anonymous_trigger_refused_for_credits_learns_no_balance(fast_server: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # an operator-configured endpoint makes the hosted node available; the run never gets that far
    monkeypatch.setenv("NODELOOM_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    srv = fast_server()
    _acct, key = srv.account(credits=0)
    with srv.client(key) as client, anonymous(srv) as anon:
        wid = publish(client, paid_graph())
        owner = client.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}})
        assert owner.status_code == 402, owner.text
        assert "balance" in owner.json()["error"] and "breakdown" in owner.json()["error"]

        r = anon.post(f"/api/v1/webhooks/{webhook_id(client, wid)}", json={})
        assert r.status_code == 402, r.text
        error = r.json()["error"]
        assert error["code"] == "insufficient_credits"
        assert set(error) == {"code", "message"}
        assert not any(ch.isdigit() for ch in error["message"])  # neither the balance nor the price
        assert client.get("/api/v1/workflows/executions").json()["data"] == []


def test_a_trigger_with_an_idempotency_key_runs_once(fast_api: FastApi) -> None:
    client, srv = fast_api
    wid = publish(client, text_graph())
    path = f"/api/v1/webhooks/{webhook_id(client, wid)}"
    with anonymous(srv) as anon:
        first = anon.post(path, json={"prompt": "once"}, headers={"Idempotency-Key": "trigger-1"})
        again = anon.post(path, json={"prompt": "once"}, headers={"Idempotency-Key": "trigger-1"})
    assert first.status_code == again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content == first.content
    listed = client.get("/api/v1/workflows/executions", params={"workflowId": wid}).json()["data"]
    assert [e["executionId"] for e in listed] == [first.json()["executionId"]]


def test_seen_trigger_ids_are_forgotten_once_they_would_be_stale(secured: tuple[httpx.Client, str, str],
                                                                  fast_api: FastApi) -> None:
    from sqlalchemy import func, select

    from nodeloom.storage.models_webhooks import TriggerReceipt

    anon, path, secret = secured
    _client, srv = fast_api
    body = b"{}"
    assert anon.post(path, content=body, headers=signed(secret, body, msg_id="msg_old")).status_code == 202

    def receipts() -> int:
        with srv.services.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(TriggerReceipt)) or 0)

    srv.services.retention.sweep()
    assert receipts() == 1  # still inside the replay window
    with srv.services.db.write() as s:  # as if it had been seen eleven minutes ago
        for row in s.scalars(select(TriggerReceipt)):
            row.received_at -= 11 * 60
    srv.services.retention.sweep()
    assert receipts() == 0
