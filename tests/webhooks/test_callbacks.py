"""Callbacks over real HTTP to a real receiver: signatures, events, retries, the delivery log."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import standardwebhooks
from tests.support.server import LiveServer, delay_graph, publish, run_to_end, text_graph, wait_status
from tests.webhooks.conftest import deliveries, wait_delivery
from tests.webhooks.receiver import Answer, Receiver

from nodeloom import webhooks

FastApi = tuple[httpx.Client, LiveServer]


def secret_of(client: httpx.Client) -> str:
    return client.get("/api/v1/account").json()["webhookSecret"]


def fail_graph() -> dict[str, Any]:
    return {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "x"}},
        {"id": "boom", "type": "test.fail", "inputs": {"value": {"from": "prompt", "output": "text"}},
         "params": {"message": "it broke"}},
        {"id": "out", "type": "output.json", "inputs": {"value": {"from": "boom", "output": "value"}},
         "params": {"name": "value"}},
    ]}


def test_completed_callback_is_signed_per_standard_webhooks(fast_api: FastApi, receiver: Receiver) -> None:
    client, _srv = fast_api
    wid = publish(client, text_graph())
    done = run_to_end(client, wid, {"prompt": "hooks"}, webhookUrl=receiver.url)
    assert done["status"] == "COMPLETED"

    [request] = receiver.wait_for(1)
    # the independent implementation of the scheme accepts it, and so does ours
    payload = standardwebhooks.Webhook(secret_of(client)).verify(request.body, request.headers)
    webhooks.verify(secret_of(client), request.headers, request.body)
    assert request.headers["webhook-id"].startswith("dlv_")
    assert request.headers["content-type"] == "application/json"
    assert payload["type"] == "execution.completed"
    assert payload["timestamp"].endswith("Z")
    # the rest is the poll body
    for field in ("executionId", "workflowId", "version", "status", "progress", "createdAt", "startedAt",
                  "completedAt", "creditsUsed", "outputs", "nodes", "error"):
        assert field in payload, field
    assert payload["executionId"] == done["executionId"]
    assert payload["status"] == "COMPLETED"
    assert payload["outputs"] == {"greeting": "Hello hooks!"}
    assert set(payload["nodes"]) == {"prompt", "tpl", "out"}

    # by default only the terminal events are sent: this run made exactly one delivery
    [row] = deliveries(client, done["executionId"])
    assert row["type"] == "execution.completed" and row["webhookId"] == request.headers["webhook-id"]


def test_a_tampered_body_does_not_verify(fast_api: FastApi, receiver: Receiver) -> None:
    client, _srv = fast_api
    wid = publish(client, text_graph())
    run_to_end(client, wid, webhookUrl=receiver.url)
    [request] = receiver.wait_for(1)
    tampered = request.body.replace(b"COMPLETED", b"FAILED")
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret_of(client)).verify(tampered, request.headers)


def test_subscribed_events_arrive_with_their_own_snapshot(fast_api: FastApi, receiver: Receiver) -> None:
    client, _srv = fast_api
    wid = publish(client, text_graph())
    done = run_to_end(client, wid, webhookUrl=receiver.url,
                      webhookEvents=["started", "node.completed", "completed"])
    rows = deliveries(client, done["executionId"])
    types = sorted(r["type"] for r in rows)
    assert types == ["execution.completed", "execution.started"] + ["node.completed"] * 3

    received = receiver.wait_for(5)
    bodies = {json.loads(r.body)["type"] + ":" + json.loads(r.body).get("nodeId", ""): json.loads(r.body)
              for r in received}
    assert bodies["execution.started:"]["status"] == "RUNNING"  # as it was when it started, not as it is now
    assert bodies["node.completed:tpl"]["nodes"]["tpl"]["status"] == "COMPLETED"
    assert bodies["node.completed:tpl"]["nodes"]["tpl"]["outputs"] == {"text": "Hello world!"}
    assert bodies["execution.completed:"]["status"] == "COMPLETED"
    assert len({r.headers["webhook-id"] for r in received}) == 5


def test_failed_execution_sends_execution_failed(fast_api: FastApi, receiver: Receiver) -> None:
    client, _srv = fast_api
    wid = publish(client, fail_graph())
    done = run_to_end(client, wid, webhookUrl=receiver.url)
    assert done["status"] == "FAILED"
    payload = json.loads(receiver.wait_for(1)[0].body)
    assert payload["type"] == "execution.failed"
    assert payload["status"] == "FAILED"
    assert payload["error"]["code"] == "test_failure"


def test_cancelled_execution_sends_execution_cancelled(fast_api: FastApi, receiver: Receiver) -> None:
    client, _srv = fast_api
    wid = publish(client, delay_graph(30))
    r = client.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}, "webhookUrl": receiver.url,
                                                                "webhookEvents": ["cancelled"]})
    eid = r.json()["executionId"]
    wait_status(client, eid, {"RUNNING"})
    assert client.post(f"/api/v1/workflows/executions/{eid}/cancel").status_code == 202
    wait_status(client, eid, {"CANCELLED"})
    payload = json.loads(receiver.wait_for(1)[0].body)
    assert payload["type"] == "execution.cancelled"
    assert payload["executionId"] == eid


def test_a_queued_execution_cancelled_before_it_ran_still_calls_back(fast_server: Any,
                                                                    receiver: Receiver) -> None:
    srv = fast_server(embedded_workers=False, webhook_poll_interval_seconds=3600)  # nothing runs the job
    _acct, key = srv.account()
    with srv.client(key) as client:
        wid = publish(client, text_graph())
        eid = client.post(f"/api/v1/workflows/{wid}/execute",
                          json={"webhookUrl": receiver.url}).json()["executionId"]
        assert client.post(f"/api/v1/workflows/executions/{eid}/cancel").status_code == 202
        [row] = deliveries(client, eid)  # written in the cancel's own transaction
        assert (row["type"], row["status"]) == ("execution.cancelled", "pending")


def test_receiver_failing_twice_gets_the_event_on_the_third_attempt(fast_api: FastApi,
                                                                    receiver: Receiver) -> None:
    client, _srv = fast_api
    receiver.answer(500, 503)
    wid = publish(client, text_graph())
    done = run_to_end(client, wid, webhookUrl=receiver.url)

    first, second, third = receiver.wait_for(3)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
    secret = secret_of(client)
    for request in (first, second, third):
        standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    assert second.at - first.at >= 0.15 and third.at - second.at >= 0.15  # the schedule, not a hot loop

    row = wait_delivery(client, done["executionId"], lambda d: d["status"] == "delivered")
    assert row["attemptCount"] == 3
    assert [a["statusCode"] for a in row["attempts"]] == [500, 503, 200]
    assert row["deliveredAt"] is not None and row["nextAttemptAt"] is None
    time.sleep(0.5)
    assert len(receiver.requests) == 3


def test_410_gone_stops_retrying(fast_api: FastApi, receiver: Receiver) -> None:
    client, _srv = fast_api
    receiver.answer(410)
    wid = publish(client, text_graph())
    done = run_to_end(client, wid, webhookUrl=receiver.url)
    row = wait_delivery(client, done["executionId"], lambda d: d["status"] == "failed")
    assert row["attemptCount"] == 1 and row["lastStatusCode"] == 410
    assert "410" in row["lastError"]
    time.sleep(0.8)  # four retry delays would have passed
    assert len(receiver.requests) == 1


def test_retries_stop_when_the_schedule_runs_out(fast_server: Any, receiver: Receiver) -> None:
    srv = fast_server(webhook_retry_schedule=[0.1, 0.1])
    _acct, key = srv.account()
    receiver.answer(*([500] * 10))
    with srv.client(key) as client:
        done = run_to_end(client, publish(client, text_graph()), webhookUrl=receiver.url)
        row = wait_delivery(client, done["executionId"], lambda d: d["status"] == "failed")
    assert row["attemptCount"] == 3  # the first attempt and one per delay
    assert [a["statusCode"] for a in row["attempts"]] == [500, 500, 500]


@pytest.mark.parametrize("status", [429, 502, 504])
def test_retry_after_is_honoured(status: int, fast_api: FastApi, receiver: Receiver) -> None:
    client, _srv = fast_api
    receiver.answer(Answer(status=status, headers={"Retry-After": "2"}))
    wid = publish(client, text_graph())
    done = run_to_end(client, wid, webhookUrl=receiver.url)
    first, second = receiver.wait_for(2)
    assert second.at - first.at >= 1.9  # the schedule alone would have retried after 0.2 s
    row = wait_delivery(client, done["executionId"], lambda d: d["status"] == "delivered")
    assert [a["statusCode"] for a in row["attempts"]] == [status, 200]


def test_retry_after_on_other_statuses_is_ignored(fast_api: FastApi, receiver: Receiver) -> None:
    client, _srv = fast_api
    receiver.answer(Answer(status=500, headers={"Retry-After": "30"}))
    wid = publish(client, text_graph())
    run_to_end(client, wid, webhookUrl=receiver.url)
    first, second = receiver.wait_for(2, timeout=10)
    assert second.at - first.at < 5


def test_a_slow_receiver_times_out_and_is_retried(fast_server: Any, receiver: Receiver) -> None:
    srv = fast_server(webhook_timeout_seconds=0.5)
    _acct, key = srv.account()
    receiver.answer(Answer(status=200, delay_s=2.0))
    with srv.client(key) as client:
        done = run_to_end(client, publish(client, text_graph()), webhookUrl=receiver.url)
        row = wait_delivery(client, done["executionId"], lambda d: d["status"] == "delivered")
    first, _second = row["attempts"]
    assert first["statusCode"] is None and "0.5 s" in first["error"]


def test_deliveries_are_listed_and_redelivered(fast_server: Any, receiver: Receiver) -> None:
    srv = fast_server()
    account_id, key = srv.account()
    reader = srv.key(account_id, ["read"])
    _other, other_key = srv.account(name="Other")
    with srv.client(key) as client, srv.client(reader) as read_only, srv.client(other_key) as other:
        done = run_to_end(client, publish(client, text_graph()), webhookUrl=receiver.url)
        row = wait_delivery(read_only, done["executionId"], lambda d: d["status"] == "delivered")
        first = receiver.wait_for(1)[0]

        assert read_only.post(f"/api/v1/webhook-deliveries/{row['id']}/redeliver").status_code == 403
        assert other.post(f"/api/v1/webhook-deliveries/{row['id']}/redeliver").status_code == 404
        assert other.get("/api/v1/webhook-deliveries",
                         params={"executionId": done["executionId"]}).status_code == 404
        assert other.get("/api/v1/webhook-deliveries").json()["data"] == []

        r = client.post(f"/api/v1/webhook-deliveries/{row['id']}/redeliver")
        assert r.status_code == 202, r.text
        again = receiver.wait_for(2)[1]
        assert again.headers["webhook-id"] == first.headers["webhook-id"]
        assert json.loads(again.body)["executionId"] == done["executionId"]
        row = wait_delivery(client, done["executionId"],
                            lambda d: d["status"] == "delivered" and d["attemptCount"] == 2)
        assert [a["attempt"] for a in row["attempts"]] == [1, 2]

        listed = client.get("/api/v1/webhook-deliveries", params={"limit": 1}).json()
        assert [d["id"] for d in listed["data"]] == [row["id"]] and listed["nextCursor"] is None
        assert client.get(f"/api/v1/webhook-deliveries/{row['id']}").json()["id"] == row["id"]
        assert client.post("/api/v1/webhook-deliveries/dlv_nope/redeliver").status_code == 404


def test_secret_rotation_sends_both_signatures(fast_api: FastApi, receiver: Receiver) -> None:
    client, _srv = fast_api
    old = secret_of(client)
    r = client.post("/api/v1/account/webhook-secret/rotate")
    assert r.status_code == 200
    new = r.json()["webhookSecret"]
    assert new != old
    run_to_end(client, publish(client, text_graph()), webhookUrl=receiver.url)
    [request] = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split()) == 2
    standardwebhooks.Webhook(new).verify(request.body, request.headers)
    standardwebhooks.Webhook(old).verify(request.body, request.headers)  # receivers not yet updated


def test_the_old_secret_stops_signing_after_the_overlap(fast_server: Any, receiver: Receiver) -> None:
    from nodeloom.clock import FrozenClock

    clock = FrozenClock(start=time.time())
    srv = fast_server(clock=clock)
    _acct, key = srv.account()
    with srv.client(key) as client:
        client.post("/api/v1/account/webhook-secret/rotate")
        clock.advance(24 * 3600 + 1)
        run_to_end(client, publish(client, text_graph()), webhookUrl=receiver.url)
        [request] = receiver.wait_for(1)
        assert len(request.headers["webhook-signature"].split()) == 1
        webhooks.verify(secret_of(client), request.headers, request.body, now=clock.time())


#: an image in, the same image out (a media output whose callback carries a signed link)
IMAGE_GRAPH = {"nodes": [
    {"id": "img", "type": "input.image", "params": {"name": "image"}},
    {"id": "out", "type": "output.image", "inputs": {"image": {"from": "img", "output": "image"}},
     "params": {"name": "picture"}},
]}
PNG_1PX = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGA"
           "hKmMIQAAAABJRU5ErkJggg==")


def test_media_outputs_carry_signed_urls(fast_api: FastApi, receiver: Receiver) -> None:
    client, srv = fast_api
    done = run_to_end(client, publish(client, IMAGE_GRAPH), {"image": PNG_1PX}, webhookUrl=receiver.url)
    assert done["status"] == "COMPLETED", done
    payload = json.loads(receiver.wait_for(1)[0].body)
    picture = payload["outputs"]["picture"]
    assert "$file" not in picture and picture["contentType"] == "image/png"
    assert "sig=" in picture["url"]
    # absolute, at the address the execution was requested at (no NODELOOM_PUBLIC_URL here)
    assert picture["url"].startswith(srv.url + "/api/v1/files/file_")
    assert httpx.get(picture["url"]).status_code == 200


def test_callback_links_use_the_operators_public_url(fast_server: Any, receiver: Receiver) -> None:
    srv = fast_server(public_url="https://media.example.com/")
    _acct, key = srv.account()
    with srv.client(key) as client:
        run_to_end(client, publish(client, IMAGE_GRAPH), {"image": PNG_1PX}, webhookUrl=receiver.url)
    picture = json.loads(receiver.wait_for(1)[0].body)["outputs"]["picture"]
    assert picture["url"].startswith("https://media.example.com/api/v1/files/file_"), picture


def test_finished_deliveries_are_forgotten_after_the_retention_period(fast_server: Any,
                                                                      receiver: Receiver) -> None:
    from nodeloom.clock import FrozenClock

    clock = FrozenClock(start=time.time())
    srv = fast_server(clock=clock, retention_days=30)
    _acct, key = srv.account()
    with srv.client(key) as client:
        done = run_to_end(client, publish(client, text_graph()), webhookUrl=receiver.url)
        wait_delivery(client, done["executionId"], lambda d: d["status"] == "delivered")
        assert srv.services.retention.sweep()["webhook_deliveries"] == 0  # still young
        assert len(client.get("/api/v1/webhook-deliveries").json()["data"]) == 1
        clock.advance(31 * 86400)
        srv.services.retention.sweep()
        assert client.get("/api/v1/webhook-deliveries").json()["data"] == []
