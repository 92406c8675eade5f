"""The retention sweeper: removes executions, events and files older than the operator keeps them.

Other services register what they keep (idempotency rows, delivery logs) with `add`, each a function
that deletes its own expired rows inside the sweeper's transaction and returns how many it removed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from nodeloom.clock import Clock
from nodeloom.services.files import FileService
from nodeloom.storage.db import Database
from nodeloom.storage.models import Execution, ExecutionEvent, ExecutionNode, File

Purge = Callable[[Any, datetime], int]


class RetentionSweeper:
    def __init__(self, db: Database, files: FileService, *, clock: Clock, days: float, batch: int = 200):
        self.db = db
        self.files = files
        self.clock = clock
        self.days = days
        self.batch = batch
        self._extra: list[tuple[str, Purge, float | None]] = []

    def add(self, name: str, purge: Purge, *, days: float | None = None) -> None:
        """`purge(session, cutoff)` deletes `name`'s rows older than cutoff (days: its own retention)."""
        self._extra.append((name, purge, days))

    def sweep(self) -> dict[str, int]:
        if self.days <= 0:
            return {}
        now = self.clock.now()
        cutoff = now - timedelta(days=self.days)
        removed = {"executions": 0, "files": 0}
        with self.db.write() as s:
            old = s.scalars(select(Execution).where(Execution.completed_at.is_not(None), Execution.completed_at < cutoff)
                            .limit(self.batch)).all()
            for ex in old:
                self.files.delete_for_execution(s, ex.id)
                s.execute(delete(ExecutionEvent).where(ExecutionEvent.execution_id == ex.id))
                s.execute(delete(ExecutionNode).where(ExecutionNode.execution_id == ex.id))
                s.delete(ex)
            removed["executions"] = len(old)
            uploads = s.scalars(select(File).where(File.execution_id.is_(None), File.created_at < cutoff)
                                .limit(self.batch)).all()
            for row in uploads:
                still_used = s.scalar(select(File.id).where(File.blob_key == row.blob_key, File.id != row.id).limit(1))
                if still_used is None:
                    self.files.blobs.delete(row.blob_key)
                s.delete(row)
            removed["files"] = len(uploads)
            for name, purge, days in self._extra:
                removed[name] = purge(s, now - timedelta(days=days) if days is not None else cutoff)
        return removed
