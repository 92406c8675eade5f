"""A submission: everything execute needs once the request passed validation (shared by the lifecycle's
listeners, which decide whether it may be queued, and the execution service, which queues it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nodeloom.engine.graph import Graph


@dataclass
class Submission:
    """Everything execute needs once the request passed validation."""

    workflow_id: str
    version: int | None
    graph_json: dict[str, Any]
    graph: Graph
    inputs: dict[str, Any]
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    origin: str | None = None  # the base URL it was requested at (links in its callbacks)
