"""The outbox survives a crash, and two senders never send the same attempt."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import standardwebhooks
from sqlalchemy import select
from tests.support.server import (
    LiveServer,
    free_port,
    publish,
    run_to_end,
    spawn_server,
    text_graph,
    wait_http,
)
from tests.webhooks.conftest import deliveries, wait_delivery
from tests.webhooks.receiver import Receiver

from nodeloom.clock import FrozenClock, SystemClock
from nodeloom.media.urlguard import AddressGuard, GuardedClient
from nodeloom.services.accounts import AccountService
from nodeloom.services.deliveries import DeliverySender, Outcome, RetryPolicy
from nodeloom.storage.db import Database
from nodeloom.types import ALL_SCOPES

SECRET_KEY = "test-secret-key-0123456789"  # what spawn_server gives the server


@pytest.mark.slow
def test_a_callback_written_before_sigkill_is_delivered_after_restart(tmp_path: Path,
                                                                      receiver: Receiver) -> None:
    import httpx

    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    allow = {"NODELOOM_ALLOW_PRIVATE_URLS": "1"}
    # the first server's sender looks once, at start-up, and then not for an hour: the callback
    # cannot go out before the kill
    first = spawn_server(data_dir, port, {**allow, "NODELOOM_WEBHOOK_POLL_INTERVAL_SECONDS": "3600"})
    try:
        wait_http(url)
        db = Database(f"sqlite:///{(data_dir / 'nodeloom.db').resolve()}")
        accounts = AccountService(db, secret_key=SECRET_KEY, clock=SystemClock())
        account = accounts.create_account(name="crash", plan="pro", credits=100)
        _row, key = accounts.create_key(account_id=account.id, name="k", scopes=list(ALL_SCOPES))
        db.dispose()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            done = run_to_end(client, publish(client, text_graph()), {"prompt": "crash"},
                              webhookUrl=receiver.url)
            assert done["status"] == "COMPLETED"
            [row] = deliveries(client, done["executionId"])
            assert (row["status"], row["attemptCount"]) == ("pending", 0)
    finally:
        first.kill()  # SIGKILL: no shutdown hooks, no flush
        first.wait(timeout=30)
    assert receiver.requests == []

    second = spawn_server(data_dir, port, allow)
    try:
        wait_http(url)
        [request] = receiver.wait_for(1, timeout=30)
        payload = standardwebhooks.Webhook(account.webhook_secret).verify(request.body, request.headers)
        assert payload["type"] == "execution.completed"
        assert payload["executionId"] == done["executionId"]
        assert payload["outputs"] == {"greeting": "Hello crash!"}
        assert request.headers["webhook-id"] == row["id"]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            delivered = wait_delivery(client, done["executionId"], lambda d: d["status"] == "delivered")
        assert delivered["attemptCount"] == 1
    finally:
        second.kill()
        second.wait(timeout=30)


def test_two_senders_never_claim_the_same_attempt(make_server: Callable[..., LiveServer],
                                                  receiver: Receiver) -> None:
    # the server's own sender is idle for the test: it looked once at start-up
    srv = make_server(allow_private_urls=True, webhook_poll_interval_seconds=3600)
    _acct, key = srv.account()
    rt = srv.services
    with srv.client(key) as client:
        wid = publish(client, text_graph())
        ids = [run_to_end(client, wid, webhookUrl=receiver.url)["executionId"] for _ in range(8)]

    senders = [DeliverySender(rt.db, http=rt.http, files=rt.files, clock=rt.clock, worker_id=f"w{i}",
                              policy=RetryPolicy((1.0,)), timeout_s=5, concurrency=4) for i in range(4)]
    claimed: dict[str, list[str]] = {s.worker_id: [] for s in senders}
    start = threading.Barrier(len(senders))

    def claim_all(sender: DeliverySender) -> None:
        start.wait()
        while batch := sender.claim(limit=2):
            claimed[sender.worker_id].extend(c.delivery_id for c in batch)

    threads = [threading.Thread(target=claim_all, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    everything = [d for batch in claimed.values() for d in batch]
    assert len(everything) == len(set(everything)) == len(ids)
    with srv.client(key) as client:
        for eid in ids:
            [row] = deliveries(client, eid)
            assert (row["status"], row["attemptCount"]) == ("sending", 1)
            assert len(row["attempts"]) == 1


def test_an_attempt_whose_sender_died_is_logged_and_retried(make_server: Callable[..., LiveServer],
                                                            receiver: Receiver) -> None:
    srv = make_server(allow_private_urls=True, webhook_poll_interval_seconds=3600)  # its own sender idles
    _acct, key = srv.account()
    rt = srv.services

    def sender(worker_id: str, at: float, http: GuardedClient | None = None) -> DeliverySender:
        return DeliverySender(rt.db, http=http, files=rt.files, clock=FrozenClock(at),  # type: ignore[arg-type]
                              worker_id=worker_id, policy=RetryPolicy((0.1,)), timeout_s=5, concurrency=1)

    with srv.client(key) as client:
        done = run_to_end(client, publish(client, text_graph()), webhookUrl=receiver.url)
        now = time.time()
        ghost = sender("ghost", now)
        [lost] = ghost.claim(limit=10)  # ...and the ghost dies before it sends anything
        assert sender("heir", now + 1).claim(limit=10) == []  # its lease still holds the row

        async def take_over() -> int:
            async with GuardedClient(AddressGuard(allow_private=True)) as http:
                heir = sender("heir", now + ghost.lease_s + 1, http)
                [claimed] = heir.claim(limit=10)
                heir.finish(claimed, await heir.send(claimed))
                return claimed.attempt

        assert asyncio.run(take_over()) == 2
        ghost.finish(lost, Outcome(status_code=500))  # a late answer from the dead changes nothing
        [row] = deliveries(client, done["executionId"])
    assert (row["status"], row["attemptCount"]) == ("delivered", 2)
    first, second = row["attempts"]
    assert first["statusCode"] is None and "stopped" in first["error"]
    assert second["statusCode"] == 200
    assert json.loads(receiver.wait_for(1)[0].body)["executionId"] == done["executionId"]


def test_a_graceful_shutdown_hands_an_attempt_in_flight_back(make_server: Callable[..., LiveServer],
                                                             receiver: Receiver) -> None:
    from tests.webhooks.receiver import Answer

    from nodeloom.storage.models_webhooks import WebhookAttempt, WebhookDelivery

    srv = make_server(allow_private_urls=True, webhook_poll_interval_seconds=0.05)
    _acct, key = srv.account()
    receiver.answer(Answer(status=200, delay_s=5))
    with srv.client(key) as client:
        done = run_to_end(client, publish(client, text_graph()), webhookUrl=receiver.url)
    receiver.wait_for(1)  # the attempt is in flight...
    started = time.time()
    srv.stop()  # ...when the server stops
    assert time.time() - started < 5  # it did not wait for the receiver

    db = Database(srv.settings.resolved_database_url)
    try:
        with db.read() as s:
            row = s.scalar(select(WebhookDelivery).where(WebhookDelivery.execution_id == done["executionId"]))
            attempt = s.scalar(select(WebhookAttempt).where(WebhookAttempt.delivery_id == row.id))
            assert (row.status, row.lease_owner, row.round_attempts) == ("pending", None, 0)
            assert row.next_attempt_at <= time.time()
            assert "shut down" in attempt.error
    finally:
        db.dispose()
