"""Readiness: can this process reach what it needs (database, queue, broker, file store)?"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from nodeloom.queue.base import QueueBackend
from nodeloom.storage.blobs import BlobStore
from nodeloom.storage.db import Database


class Readiness:
    def __init__(self, *, db: Database, queue: QueueBackend, blobs: BlobStore,
                 broker: Callable[[], None] | None = None):
        self.db = db
        self.queue = queue
        self.blobs = blobs
        self.broker = broker  # the Celery broker's connection check, on the celery queue

    def check(self) -> dict[str, str]:
        """Each dependency's state: "ok" or "error: <kind>". Reports, never raises."""
        checks: dict[str, str] = {"database": _probe(self._database), "queue": _probe(self.queue.depth)}
        if self.broker is not None:
            checks["broker"] = _probe(self.broker)
        checks["storage"] = _probe(self.blobs.check)
        return checks

    def _database(self) -> None:
        with self.db.read() as s:
            s.execute(text("SELECT 1"))


def _probe(check: Callable[[], object]) -> str:
    try:
        check()
    except Exception as exc:  # readiness reports, never raises
        return f"error: {type(exc).__name__}"
    return "ok"
