"""Writes what executions do into rows: the execution, its nodes and its numbered events.

Every function here runs inside the caller's transaction, so an event and everything it implies
(status, outputs, and — with webhooks — its outbox row) commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nodeloom.storage.models import Execution, ExecutionEvent

TERMINAL_EVENT = {"COMPLETED": "execution.completed", "FAILED": "execution.failed",
                  "CANCELLED": "execution.cancelled"}


def append_event(s: Any, ex: Execution, *, type: str, data: dict[str, Any], now: datetime) -> int:
    ex.event_seq = (ex.event_seq or 0) + 1
    s.add(ExecutionEvent(execution_id=ex.id, seq=ex.event_seq, type=type, data=data, created_at=now))
    return ex.event_seq


def record_terminal(s: Any, ex: Execution, *, status: str, outputs: dict[str, Any] | None,
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
