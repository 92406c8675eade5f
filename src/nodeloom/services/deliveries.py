"""Webhook callbacks: the outbox, the delivery log, and the sender every worker runs.

An execution with a `webhookUrl` gets a `WebhookDelivery` row for each subscribed event, written by
`DeliveryService.on_event`/`on_terminal` inside the transaction that records the event — so a
crash between "execution completed" and "callback sent" loses nothing. The row holds the poll body
as it was at the event; media URLs are signed when it is sent, so a late retry still carries
working links.

`DeliverySender` claims due rows in a transaction only one worker can win (`BEGIN IMMEDIATE` on
SQLite, `FOR UPDATE SKIP LOCKED` on PostgreSQL), leases them, POSTs them through the address guard
(which re-checks the URL, against DNS rebinding, and connects to the address it checked), and
schedules the next attempt from the outcome: 2xx delivered, 410 stops, otherwise the retry schedule
with jitter (429/502/504 wait for `Retry-After` when the receiver names one). Every attempt is a row.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import email.utils
import json
import logging
import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from nodeloom.clock import Clock, iso
from nodeloom.engine.graph import NodeInstance
from nodeloom.errors import Conflict, NotFound, ValidationFailed
from nodeloom.media.urlguard import AddressGuard, FetchError, FetchTimeoutError, GuardedClient, UnsafeURLError
from nodeloom.services.files import FileService
from nodeloom.services.ids import new_id
from nodeloom.services.lifecycle import ExecutionListener
from nodeloom.services.pagination import newest_first, page
from nodeloom.storage.db import Database
from nodeloom.storage.models import Account, Execution, ExecutionNode
from nodeloom.storage.models_webhooks import WebhookAttempt, WebhookDelivery
from nodeloom.webhooks import sign_headers

log = logging.getLogger("nodeloom.webhooks")

#: what `webhookEvents` may name, and the full event name each stands for
EVENT_NAMES = {"started": "execution.started", "node.completed": "node.completed",
               "completed": "execution.completed", "failed": "execution.failed",
               "cancelled": "execution.cancelled"}
DEFAULT_EVENTS = ("completed", "failed", "cancelled")
TERMINAL_EVENT = {"COMPLETED": "execution.completed", "FAILED": "execution.failed",
                  "CANCELLED": "execution.cancelled"}
#: answers whose Retry-After header sets the next delay
RETRY_AFTER_STATUSES = frozenset({429, 502, 504})
MAX_RETRY_AFTER_S = 24 * 3600.0
RESPONSE_EXCERPT = 1024


def subscribed(events: Sequence[str] | None, event_type: str) -> bool:
    names = DEFAULT_EVENTS if events is None else events
    return any(EVENT_NAMES.get(name) == event_type for name in names)


def run_blocking(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to the end from synchronous code (a threadpool thread, the CLI, a test)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # called on a loop's own thread
        return pool.submit(asyncio.run, coro).result()


#: the poll body of an execution as stored, read in the caller's session (services/executions.py: snapshot)
Snapshot = Callable[[Session, Execution], dict[str, Any]]


class DeliveryService(ExecutionListener):
    """The outbox (written by the lifecycle inside the event's transaction), the delivery log and redelivery."""

    def __init__(self, db: Database, *, snapshot: Snapshot, guard: AddressGuard, clock: Clock):
        self.db = db
        self.snapshot = snapshot  # the payload
        self.guard = guard
        self.clock = clock

    # callback URLs ------------------------------------------------------------------------------
    def check_callback_url(self, url: str, *, path: str = "webhookUrl") -> None:
        """422 when the guard refuses the URL now (plain http, private, loopback, metadata…)."""
        try:
            run_blocking(self.guard.check_url(url, require_https=True))
        except UnsafeURLError as exc:
            raise ValidationFailed(f"the callback URL is not allowed: {exc.reason}",
                                   [{"path": path, "message": exc.reason}],
                                   code="invalid_webhook_url") from None

    # the outbox ---------------------------------------------------------------------------------
    def on_started(self, s: Session, ex: Execution) -> None:
        self.record(s, ex, event_type="execution.started", node_id=None)

    def on_node_completed(self, s: Session, ex: Execution, row: ExecutionNode, node: NodeInstance,
                          data: dict[str, Any]) -> None:
        self.record(s, ex, event_type="node.completed", node_id=row.node_id)

    def on_terminal(self, s: Session, ex: Execution) -> None:
        if ex.status in TERMINAL_EVENT:
            self.record(s, ex, event_type=TERMINAL_EVENT[ex.status], node_id=None)

    def record(self, s: Any, ex: Execution, *, event_type: str,
               node_id: str | None) -> WebhookDelivery | None:
        if not ex.webhook_url or not subscribed(ex.webhook_events, event_type):
            return None
        now = self.clock.now()
        payload: dict[str, Any] = {"type": event_type, "timestamp": iso(now)}
        if node_id is not None:
            payload["nodeId"] = node_id
        payload.update(self.snapshot(s, ex))
        row = WebhookDelivery(id=new_id("dlv"), account_id=ex.account_id, execution_id=ex.id,
                              event_type=event_type, url=ex.webhook_url, payload=payload, status="pending",
                              attempts=0, round_attempts=0, next_attempt_at=self.clock.time(), created_at=now)
        s.add(row)
        return row

    # the log ------------------------------------------------------------------------------------
    def list(self, *, account_id: str, execution_id: str | None, limit: int,
             cursor: str | None) -> dict[str, Any]:
        stmt = select(WebhookDelivery).where(WebhookDelivery.account_id == account_id)
        if execution_id:
            stmt = stmt.where(WebhookDelivery.execution_id == execution_id)
        stmt = newest_first(stmt, WebhookDelivery, limit=limit, cursor=cursor)
        with self.db.read() as s:
            if execution_id:
                ex = s.get(Execution, execution_id)
                if ex is None or ex.account_id != account_id:
                    raise NotFound("execution not found")
            rows = list(s.scalars(stmt).all())
            attempts = self._attempts(s, [r.id for r in rows[:limit]])
        return page(rows, limit=limit, public=lambda r: public(r, attempts.get(r.id, [])))

    def get(self, *, account_id: str, delivery_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            row = self._get(s, account_id, delivery_id)
            return public(row, self._attempts(s, [row.id]).get(row.id, []))

    def redeliver(self, *, account_id: str, delivery_id: str) -> dict[str, Any]:
        """Send again now, with the same `webhook-id`, and a fresh retry schedule."""
        with self.db.write() as s:
            row = self._get(s, account_id, delivery_id)
            if row.status == "sending":
                raise Conflict("this delivery is being sent right now; try again when it ends",
                               code="delivery_in_progress")
            row.status = "pending"
            row.round_attempts = 0
            row.next_attempt_at = self.clock.time()
        return self.get(account_id=account_id, delivery_id=delivery_id)

    # retention ----------------------------------------------------------------------------------
    @staticmethod
    def purge(s: Any, cutoff: datetime) -> int:
        """The retention sweeper's hook: forget finished deliveries (and their attempts) older than cutoff.
        Deleting an execution takes its deliveries with it (the foreign keys cascade)."""
        ids = list(s.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.created_at < cutoff, WebhookDelivery.status.in_(("delivered", "failed")))
            .limit(1000)))
        if ids:
            s.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
            s.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        return len(ids)

    @staticmethod
    def _get(s: Any, account_id: str, delivery_id: str) -> WebhookDelivery:
        row = s.get(WebhookDelivery, delivery_id)
        if row is None or row.account_id != account_id:
            raise NotFound("webhook delivery not found")
        return row

    @staticmethod
    def _attempts(s: Any, ids: builtins.list[str]) -> dict[str, builtins.list[WebhookAttempt]]:
        out: dict[str, list[WebhookAttempt]] = {}
        if ids:
            for a in s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids))
                               .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)):
                out.setdefault(a.delivery_id, []).append(a)
        return out


def public(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {
        "id": row.id, "webhookId": row.id, "executionId": row.execution_id, "type": row.event_type,
        "url": row.url, "status": row.status, "attemptCount": row.attempts,
        "nextAttemptAt": _iso_ts(row.next_attempt_at) if row.status == "pending" else None,
        "lastStatusCode": row.last_status_code, "lastError": row.last_error,
        "createdAt": iso(row.created_at), "lastAttemptAt": iso(row.last_attempt_at),
        "deliveredAt": iso(row.delivered_at),
        "attempts": [{"attempt": a.attempt, "startedAt": iso(a.started_at), "finishedAt": iso(a.finished_at),
                      "statusCode": a.status_code, "error": a.error, "responseBody": a.response_body,
                      "nextAttemptAt": _iso_ts(a.next_attempt_at)} for a in attempts],
    }


def _iso_ts(ts: float | None) -> str | None:
    return iso(datetime.fromtimestamp(ts, UTC)) if ts is not None else None


# --- sending ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClaimedDelivery:
    delivery_id: str
    attempt: int
    url: str
    payload: dict[str, Any]
    secrets: tuple[str, ...]
    origin: str = ""  # base of the payload's signed links: where the execution was requested


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    retry_after: float | None = None
    error: str | None = None
    body: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class RetryPolicy:
    """Each delay counts from the previous attempt; after the last one the delivery has failed."""

    schedule: tuple[float, ...]
    jitter: float = 0.1

    def delay(self, attempts_done: int, outcome: Outcome, rng: random.Random) -> float | None:
        """Seconds until the next attempt after `attempts_done` attempts, or None to give up."""
        if outcome.status_code == 410 or attempts_done > len(self.schedule):
            return None
        if outcome.status_code in RETRY_AFTER_STATUSES and outcome.retry_after is not None:
            return min(max(outcome.retry_after, 0.0), MAX_RETRY_AFTER_S)  # the receiver said when
        base = self.schedule[attempts_done - 1]
        return max(0.0, base * (1 + rng.uniform(-self.jitter, self.jitter)))


class DeliverySender:
    """Claims due deliveries and sends them; `tick` is one of the worker's periodic tasks."""

    def __init__(self, db: Database, *, http: GuardedClient, files: FileService, clock: Clock, worker_id: str,
                 policy: RetryPolicy, timeout_s: float, concurrency: int, base_url: str = "",
                 rng: random.Random | None = None, lease_margin_s: float = 30.0):
        self.db = db
        self.http = http
        self.files = files
        self.clock = clock
        self.worker_id = worker_id
        self.policy = policy
        self.timeout_s = timeout_s
        #: how long a claimed attempt is ours: its timeout plus a margin (an attempt cut by a crash is retried after it)
        self.lease_s = timeout_s + max(lease_margin_s, timeout_s)
        self.concurrency = concurrency
        self.base_url = base_url.rstrip("/")
        self.rng = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()

    async def tick(self) -> None:
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return
        for claimed in await asyncio.to_thread(self.claim, limit=free):
            task = asyncio.create_task(self._deliver(claimed), name=f"webhook:{claimed.delivery_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the sends in flight (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop sending; an interrupted attempt is retried by whoever claims it once its lease ends."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # claiming -----------------------------------------------------------------------------------
    def claim(self, *, limit: int) -> list[ClaimedDelivery]:
        now = self.clock.time()
        now_dt = self.clock.now()
        with self.db.write() as s:
            due = and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            abandoned = and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_expires_at < now)
            q = (select(WebhookDelivery).where(or_(due, abandoned))
                 .order_by(WebhookDelivery.next_attempt_at).limit(limit))
            if not self.db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            rows = list(s.scalars(q).all())
            # where each execution was requested: the base of its payload's signed links (one query for the batch)
            origins: dict[str, str | None] = dict(s.execute(
                select(Execution.id, Execution.origin).where(Execution.id.in_({r.execution_id for r in rows})))
                .tuples().all()) if rows else {}
            claimed = []
            for row in rows:
                if row.status == "sending":  # its sender died mid-attempt: that attempt counts, unanswered
                    self._close_attempt(s, row.id, row.attempts, now_dt,
                                        Outcome(error="the sender stopped before the attempt ended"))
                    if row.round_attempts > len(self.policy.schedule):
                        row.status, row.next_attempt_at, row.lease_owner = "failed", None, None
                        continue
                row.status = "sending"
                row.attempts += 1
                row.round_attempts += 1
                row.lease_owner = self.worker_id
                row.lease_expires_at = now + self.lease_s
                row.last_attempt_at = now_dt
                s.add(WebhookAttempt(delivery_id=row.id, attempt=row.attempts, worker_id=self.worker_id,
                                     started_at=now_dt))
                claimed.append(ClaimedDelivery(delivery_id=row.id, attempt=row.attempts, url=row.url,
                                               payload=row.payload, secrets=self._secrets(s, row.account_id),
                                               origin=origins.get(row.execution_id) or ""))
            return claimed

    def _secrets(self, s: Any, account_id: str) -> tuple[str, ...]:
        """The account's signing secret, and the previous one while a rotation's overlap lasts."""
        account = s.get(Account, account_id)
        if account is None:
            return ()
        secrets = [account.webhook_secret]
        expires = account.previous_secret_expires_at
        if account.previous_webhook_secret and expires is not None:
            expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
            if expires > self.clock.now():
                secrets.append(account.previous_webhook_secret)
        return tuple(secrets)

    # sending ------------------------------------------------------------------------------------
    async def _deliver(self, claimed: ClaimedDelivery) -> None:
        try:
            outcome = await self.send(claimed)
        except asyncio.CancelledError:  # shutting down: hand the row back at once, not when the lease ends
            await asyncio.shield(asyncio.to_thread(self.release, claimed))
            raise
        except Exception as exc:  # a bug, not the receiver: recorded, and retried like a failure
            log.exception("sending webhook delivery %s failed", claimed.delivery_id)
            outcome = Outcome(error=f"internal error while sending ({type(exc).__name__})")
        await asyncio.to_thread(self.finish, claimed, outcome)

    async def send(self, claimed: ClaimedDelivery) -> Outcome:
        if not claimed.secrets:
            return Outcome(error="the account no longer exists")
        # the operator's public URL, else the address the execution was requested at: receivers get absolute links
        base = self.base_url or claimed.origin.rstrip("/")
        body = json.dumps(self.files.render(claimed.payload, base), separators=(",", ":")).encode()
        headers = sign_headers(list(claimed.secrets), msg_id=claimed.delivery_id,
                               timestamp=int(self.clock.time()), body=body)
        headers.update({"content-type": "application/json", "user-agent": "nodeloom-webhooks/1"})
        try:
            res = await self.http.fetch(claimed.url, method="POST", content=body, headers=headers,
                                        max_bytes=1024 * 1024, timeout=self.timeout_s, follow_redirects=False,
                                        require_https=True)
        except UnsafeURLError as exc:  # checked again at send time: the name may resolve elsewhere now
            return Outcome(error=f"refused by the address guard: {exc.reason}")
        except FetchTimeoutError:
            return Outcome(error=f"no answer within {self.timeout_s:g} s")
        except FetchError as exc:
            return Outcome(error=exc.reason)
        return Outcome(status_code=res.status_code,
                       retry_after=parse_retry_after(res.headers.get("retry-after"), now=self.clock.time()),
                       body=res.content[:RESPONSE_EXCERPT].decode("utf-8", "replace") or None)

    def finish(self, claimed: ClaimedDelivery, outcome: Outcome) -> None:
        now = self.clock.time()
        now_dt = self.clock.now()
        with self.db.write() as s:
            attempt = self._close_attempt(s, claimed.delivery_id, claimed.attempt, now_dt, outcome)
            row = s.get(WebhookDelivery, claimed.delivery_id)
            if row is None or row.attempts != claimed.attempt or row.lease_owner != self.worker_id:
                return  # our lease ran out and someone else owns the row now; the attempt is still logged
            row.lease_owner = None
            row.lease_expires_at = None
            row.last_status_code = outcome.status_code
            row.last_error = outcome.error
            if outcome.ok:
                row.status, row.delivered_at, row.next_attempt_at = "delivered", now_dt, None
                return
            delay = self.policy.delay(row.round_attempts, outcome, self.rng)
            if delay is None:
                row.status, row.next_attempt_at = "failed", None
                if outcome.status_code == 410:
                    row.last_error = "the receiver answered 410 Gone: no more attempts"
                return
            row.status, row.next_attempt_at = "pending", now + delay
            if attempt is not None:
                attempt.next_attempt_at = row.next_attempt_at

    def release(self, claimed: ClaimedDelivery) -> None:
        """An attempt interrupted on our side (shutdown): logged, and the row is due again now
        without using up a step of its retry schedule."""
        with self.db.write() as s:
            self._close_attempt(s, claimed.delivery_id, claimed.attempt, self.clock.now(),
                                Outcome(error="interrupted: the sender shut down"))
            row = s.get(WebhookDelivery, claimed.delivery_id)
            if row is None or row.attempts != claimed.attempt or row.lease_owner != self.worker_id:
                return
            row.status, row.next_attempt_at = "pending", self.clock.time()
            row.lease_owner = row.lease_expires_at = None
            row.round_attempts = max(0, row.round_attempts - 1)

    @staticmethod
    def _close_attempt(s: Any, delivery_id: str, number: int, now: datetime,
                       outcome: Outcome) -> WebhookAttempt | None:
        attempt = s.scalar(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id,
                                                        WebhookAttempt.attempt == number))
        if attempt is not None and attempt.finished_at is None:
            attempt.finished_at = now
            attempt.status_code = outcome.status_code
            attempt.error = outcome.error
            attempt.response_body = outcome.body
        return attempt


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
