"""Webhook triggers: a published workflow started by an unauthenticated POST to its secret `webhookId`.

The trigger's body is the inputs object. A workflow may set a trigger secret; then the request must
carry a Standard Webhooks signature made with it, fresh (timestamp within the tolerance) and with a
`webhook-id` not seen before. The run goes through the same prepare/submit path as execute, so the
account's limits, quota and credits apply — but an anonymous caller never learns the balance.
The workflow's webhook settings also hold the default callback (URL and events) for runs that name none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.errors import ApiError, NotFound, Unauthorized, ValidationFailed
from nodeloom.services.deliveries import DEFAULT_EVENTS, EVENT_NAMES
from nodeloom.services.ids import new_webhook_id
from nodeloom.storage.db import Database
from nodeloom.storage.models import Workflow
from nodeloom.storage.models_webhooks import TriggerReceipt
from nodeloom.webhooks import DEFAULT_TOLERANCE, SECRET_PREFIX, WebhookVerificationError, sign, verify

#: the settings fields PATCH may change (absent ones stay as they are; null clears)
SETTING_FIELDS = ("enabled", "triggerSecret", "callbackUrl", "callbackEvents")


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class TriggerService:
    def __init__(self, db: Database, *, executions: Any, clock: Clock,
                 check_callback_url: Callable[..., None], tolerance_s: int = DEFAULT_TOLERANCE):
        self.db = db
        self.executions = executions  # ExecutionService
        self.clock = clock
        self.check_callback_url = check_callback_url
        self.tolerance_s = tolerance_s

    # settings (manage scope) ---------------------------------------------------------------------
    @staticmethod
    def public(wf: Workflow) -> dict[str, Any]:
        settings = wf.webhook_settings or {}
        return {"workflowId": wf.id, "webhookId": wf.webhook_id, "enabled": wf.webhook_enabled,
                "active": wf.webhook_enabled and wf.published_version is not None,
                "triggerUrl": f"/api/v1/webhooks/{wf.webhook_id}",
                "triggerSecretSet": bool(settings.get("triggerSecret")),
                "callbackUrl": settings.get("callbackUrl"),
                "callbackEvents": settings.get("callbackEvents") or list(DEFAULT_EVENTS)}

    def _owned(self, s: Any, account_id: str, workflow_id: str) -> Workflow:
        wf = s.get(Workflow, workflow_id)
        if wf is None or wf.account_id != account_id:
            raise NotFound("workflow not found")
        return wf

    def get_settings(self, *, account_id: str, workflow_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return self.public(self._owned(s, account_id, workflow_id))

    def update_settings(self, *, account_id: str, workflow_id: str,
                        changes: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(changes) - set(SETTING_FIELDS)
        if unknown:
            raise ValidationFailed("unknown webhook settings", [{"path": k, "message": "unknown field"}
                                                                 for k in sorted(unknown)])
        secret = changes.get("triggerSecret")
        if secret is not None:
            _check_secret(secret)
        url = changes.get("callbackUrl")
        if url is not None:
            self.check_callback_url(url, path="callbackUrl")
        events = changes.get("callbackEvents")
        if events is not None and any(e not in EVENT_NAMES for e in events):
            raise ValidationFailed("unknown callback events",
                                   [{"path": "callbackEvents",
                                     "message": f"each one of {list(EVENT_NAMES)}"}])
        if events is not None:  # a set of events: each once, in the order given
            changes = {**changes, "callbackEvents": list(dict.fromkeys(events))}
        with self.db.write() as s:
            wf = self._owned(s, account_id, workflow_id)
            if "enabled" in changes:
                if changes["enabled"] is None:
                    raise ValidationFailed("enabled must be true or false",
                                           [{"path": "enabled", "message": "expected a boolean"}])
                wf.webhook_enabled = bool(changes["enabled"])
            settings = dict(wf.webhook_settings or {})
            for name in ("triggerSecret", "callbackUrl", "callbackEvents"):
                if name in changes:
                    if changes[name] is None:
                        settings.pop(name, None)
                    else:
                        settings[name] = changes[name]
            wf.webhook_settings = settings  # a new dict, so the JSON column sees the change
            wf.updated_at = self.clock.now()
            return self.public(wf)

    def rotate(self, *, account_id: str, workflow_id: str) -> dict[str, Any]:
        """A new `webhookId`; the old one answers 404 from now on."""
        with self.db.write() as s:
            wf = self._owned(s, account_id, workflow_id)
            wf.webhook_id = new_webhook_id()
            wf.updated_at = self.clock.now()
            return self.public(wf)

    # triggering (no credentials) ----------------------------------------------------------------
    def trigger(self, *, webhook_id: str, headers: Mapping[str, str], body: bytes,
                answer: Callable[[Any, dict[str, Any]], None] | None = None,
                origin: str | None = None) -> dict[str, Any]:
        """Start a run; `answer` stores the response with it (an Idempotency-Key's answer)."""
        wf = self._active(webhook_id)
        message_id = self._authenticate(wf, headers, body)
        try:
            inputs = _inputs(body)
            return self._start(account_id=wf.account_id, workflow_id=wf.id, inputs=inputs, answer=answer,
                               origin=origin)
        except BaseException:
            if message_id is not None:  # only a trigger that started a run uses up its id
                self._forget(wf.id, message_id)
            raise

    def _start(self, *, account_id: str, workflow_id: str, inputs: dict[str, Any],
               answer: Callable[[Any, dict[str, Any]], None] | None, origin: str | None = None) -> dict[str, Any]:
        """The run itself: the same prepare/submit path as `POST .../execute`, so the account's
        limits, daily quota and credits apply to triggers exactly as they do to executions."""
        try:
            sub = self.executions.prepare(account_id=account_id, workflow_id=workflow_id,
                                          body={"inputs": inputs}, origin=origin)
            accepted: dict[str, Any] = self.executions.submit(account_id=account_id, sub=sub, answer=answer)
        except ApiError as exc:
            if exc.status == 402:  # the caller is anonymous: no balance, no breakdown
                raise ApiError("the workflow's account does not have enough credits to run it",
                               code=exc.code, status=402) from None
            raise
        return accepted  # {executionId, status: QUEUED, pollUrl}

    def owner(self, webhook_id: str) -> str | None:
        """The account whose workflow has this webhook id (None: no such webhook). The request-rate limiter
        charges a trigger to the webhook's own budget, sized by this account's plan — never to the account's
        API budget, which a stranger's traffic must not use up."""
        if not webhook_id or len(webhook_id) > 200:
            return None
        with self.db.read() as s:
            return s.scalar(select(Workflow.account_id).where(Workflow.webhook_id == webhook_id))

    def _active(self, webhook_id: str) -> Workflow:
        with self.db.read() as s:
            wf = s.scalar(select(Workflow).where(Workflow.webhook_id == webhook_id))
        if wf is None or not wf.webhook_enabled or wf.published_version is None:
            raise NotFound("no such webhook")
        return wf

    def _authenticate(self, wf: Workflow, headers: Mapping[str, str], body: bytes) -> str | None:
        """None when the workflow sets no trigger secret; else the message id, claimed against replay."""
        secret = (wf.webhook_settings or {}).get("triggerSecret")
        if not secret:
            return None
        try:
            verify(secret, headers, body, tolerance=self.tolerance_s, now=self.clock.time())
        except (WebhookVerificationError, ValueError) as exc:
            raise Unauthorized(f"invalid webhook signature: {exc}",
                               code="invalid_webhook_signature") from None
        message_id = next(v for k, v in headers.items() if k.lower() == "webhook-id")
        now = self.clock.time()
        try:
            with self.db.write() as s:
                # a receipt older than twice the window can never match a fresh timestamp again
                s.execute(delete(TriggerReceipt).where(TriggerReceipt.workflow_id == wf.id,
                                                       TriggerReceipt.received_at < self._forgettable(now)))
                s.add(TriggerReceipt(workflow_id=wf.id, message_id=message_id[:255], received_at=now))
        except IntegrityError:
            raise Unauthorized("this webhook-id was already used; a trigger is accepted once",
                               code="webhook_replayed") from None
        return message_id[:255]

    def _forgettable(self, now: float) -> float:
        """Receipts from before this moment can be dropped: a replay of them is stale anyway."""
        return now - 2 * self.tolerance_s

    @property
    def receipt_days(self) -> float:
        """How long a seen trigger id is worth keeping, in days (for the retention sweeper)."""
        return 2 * self.tolerance_s / 86400

    @staticmethod
    def purge(s: Session, cutoff: datetime) -> int:
        """The retention sweeper's hook (registered with `receipt_days`): forget old trigger ids."""
        res = cast(CursorResult[Any],
                   s.execute(delete(TriggerReceipt).where(TriggerReceipt.received_at < cutoff.timestamp())))
        return int(res.rowcount or 0)

    def _forget(self, workflow_id: str, message_id: str) -> None:
        with self.db.write() as s:
            s.execute(delete(TriggerReceipt).where(TriggerReceipt.workflow_id == workflow_id,
                                                   TriggerReceipt.message_id == message_id))


def _check_secret(secret: str) -> None:
    problem = None
    if not secret.startswith(SECRET_PREFIX):
        problem = f"a trigger secret starts with '{SECRET_PREFIX}' followed by base64"
    else:
        try:
            sign(secret, msg_id="check", timestamp=0, body=b"")
        except ValueError as exc:
            problem = str(exc)
    if problem is None and len(secret) < len(SECRET_PREFIX) + 24:
        problem = "a trigger secret needs at least 16 random bytes"
    if problem:
        raise ValidationFailed("invalid trigger secret", [{"path": "triggerSecret", "message": problem}])


def _inputs(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the request body is not valid JSON", code="invalid_json") from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply", code="invalid_json") from None
    if not isinstance(value, dict):
        raise ValidationFailed("the body must be a JSON object of inputs",
                               [{"path": "body", "message": "expected an object"}], code="invalid_inputs")
    return value
