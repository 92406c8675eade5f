"""One execution lifecycle: every state change of an execution goes through `Lifecycle`.

An execution is admitted, queued, started, has its nodes completed and ends (COMPLETED, FAILED or
CANCELLED) — whether the runner ends it or `cancel` does. `Lifecycle` records each change (the
execution row and its numbered event, `services/recorder.py`) and tells the listeners the
composition root gave it, in their order, inside the same transaction: what the change implies
(a charge, a quota count, an outbox row) commits with it or not at all.

    limits  ─┐
    billing ─┼─▶ ExecutionListener ◀── Lifecycle ◀── ExecutionService.submit / cancel
    webhooks─┘                                   ◀── ExecutionRunner (start, node events, end)

Listeners subclass `ExecutionListener` and override what they care about; the defaults do nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, event, insert
from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.engine import events as ev
from nodeloom.engine.graph import NodeInstance
from nodeloom.services.submission import Submission
from nodeloom.storage.models import Execution, ExecutionEvent, ExecutionNode

TERMINAL_EVENT = {"COMPLETED": "execution.completed", "FAILED": "execution.failed",
                  "CANCELLED": "execution.cancelled"}


def append_event(s: Session, ex: Execution, *, type: str, data: dict[str, Any], now: datetime) -> int:
    """Number the execution's next event and record it in the session's transaction. Events are only ever
    inserted, never read back in the transaction that writes them: they are kept as plain rows and inserted in
    one statement when it commits (a batch of a fast graph carries hundreds; ORM objects cost ~10× more)."""
    ex.event_seq = (ex.event_seq or 0) + 1
    s.info.setdefault(_PENDING_EVENTS, []).append(
        {"execution_id": ex.id, "seq": ex.event_seq, "type": type, "data": data, "created_at": now})
    return ex.event_seq


_PENDING_EVENTS = "nodeloom.pending_events"
_EVENTS = cast(Table, ExecutionEvent.__table__)


def events_mark(s: Session) -> int:
    """How many events the session's transaction has recorded so far (`drop_events_since` undoes what came after:
    a savepoint that rolled back)."""
    return len(s.info.get(_PENDING_EVENTS, ()))


def drop_events_since(s: Session, mark: int) -> None:
    pending = s.info.get(_PENDING_EVENTS)
    if pending is not None:
        del pending[mark:]


@event.listens_for(Session, "before_commit")
def _insert_pending_events(s: Session) -> None:
    rows = s.info.pop(_PENDING_EVENTS, None)
    if rows:
        s.flush()  # the rows they belong to first
        s.execute(insert(_EVENTS), rows)


@event.listens_for(Session, "after_rollback")
def _drop_pending_events(s: Session) -> None:
    s.info.pop(_PENDING_EVENTS, None)


def record_terminal(s: Session, ex: Execution, *, status: str, outputs: dict[str, Any] | None,
                    error: dict[str, Any] | None, now: datetime) -> None:
    ex.status = status
    ex.completed_at = now
    ex.cancel_requested = False
    if outputs is not None:
        ex.outputs = outputs
    if status == "COMPLETED":
        ex.progress = 1.0
    ex.error = error
    data: dict[str, Any] = {"executionId": ex.id, "status": status}
    if error:
        data["error"] = error
    if outputs is not None:
        data["outputs"] = outputs
    append_event(s, ex, type=TERMINAL_EVENT[status], data=data, now=now)


class ExecutionListener:
    """What a service does when an execution changes state. Each method but `admit` runs inside the
    transaction that records the change; raising there refuses the change (the transaction rolls back)."""

    def admit(self, *, account_id: str, sub: Submission) -> None:
        """Before the submit transaction (e.g. the execution rate); raise an ApiError to refuse."""

    def on_queued(self, s: Session, *, account_id: str, sub: Submission, execution_id: str) -> None:
        """The execution and its job were inserted (e.g. the daily quota, the credit hold)."""

    def on_started(self, s: Session, ex: Execution) -> None:
        """The execution became RUNNING (its first claim)."""

    def on_node_completed(self, s: Session, ex: Execution, row: ExecutionNode, node: NodeInstance,
                          data: dict[str, Any]) -> None:
        """A node finished (its row holds its outputs; `data` is the event's: `cached`, `skipped`, `elements`)."""

    def on_terminal(self, s: Session, ex: Execution) -> None:
        """The execution ended; `ex.status` says how."""


class Lifecycle:
    """Records an execution's state changes and tells every listener, in order, in the same transaction."""

    def __init__(self, listeners: Sequence[ExecutionListener], *, clock: Clock):
        self._listeners = tuple(listeners)
        self._clock = clock

    def admit(self, *, account_id: str, sub: Submission) -> None:
        for listener in self._listeners:
            listener.admit(account_id=account_id, sub=sub)

    def queued(self, s: Session, *, account_id: str, sub: Submission, execution_id: str) -> None:
        for listener in self._listeners:
            listener.on_queued(s, account_id=account_id, sub=sub, execution_id=execution_id)

    def started(self, s: Session, ex: Execution) -> None:
        now = self._clock.now()
        ex.status = "RUNNING"
        ex.started_at = now
        append_event(s, ex, type=ev.EXECUTION_STARTED, data={"executionId": ex.id, "status": "RUNNING"}, now=now)
        for listener in self._listeners:
            listener.on_started(s, ex)

    def node_completed(self, s: Session, ex: Execution, row: ExecutionNode, node: NodeInstance,
                       data: dict[str, Any]) -> None:
        """`data` is the event's own (with `outputs`); the row already holds the node's outputs."""
        append_event(s, ex, type=ev.NODE_COMPLETED, data=data, now=self._clock.now())
        for listener in self._listeners:
            listener.on_node_completed(s, ex, row, node, data)

    def event(self, s: Session, ex: Execution, *, type: str, data: dict[str, Any]) -> None:
        """Any other non-terminal event (node started, progress, failed): recorded, nothing implied."""
        append_event(s, ex, type=type, data=data, now=self._clock.now())

    def ended(self, s: Session, ex: Execution, *, status: str, outputs: dict[str, Any] | None = None,
              error: dict[str, Any] | None = None) -> None:
        record_terminal(s, ex, status=status, outputs=outputs, error=error, now=self._clock.now())
        for listener in self._listeners:
            listener.on_terminal(s, ex)
