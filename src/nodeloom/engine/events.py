"""Events the executor yields. Someone else decides where they go (rows, SSE, webhooks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXECUTION_STARTED = "execution.started"
NODE_STARTED = "node.started"
NODE_PROGRESS = "node.progress"
NODE_COMPLETED = "node.completed"
NODE_FAILED = "node.failed"
EXECUTION_COMPLETED = "execution.completed"
EXECUTION_FAILED = "execution.failed"
EXECUTION_CANCELLED = "execution.cancelled"
TERMINAL_EVENTS = frozenset({EXECUTION_COMPLETED, EXECUTION_FAILED, EXECUTION_CANCELLED})


@dataclass(slots=True)
class Event:
    type: str
    node_id: str | None = None
    #: JSON-ready fields, except `outputs`, which hold the nodes' live values (media objects included)
    data: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
