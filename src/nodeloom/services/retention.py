"""The retention sweeper: removes executions, events and files older than the operator keeps them.

Other services' rows (delivery logs, trigger receipts) are swept too: the composition root hands the
sweeper one `Purge` per kind, each deleting its own expired rows inside the sweeper's transaction and
returning how many it removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from nodeloom.clock import Clock
from nodeloom.services.files import FileService
from nodeloom.storage.db import Database
from nodeloom.storage.models import Execution, ExecutionEvent, ExecutionNode, File


@dataclass(frozen=True, slots=True)
class Purge:
    """`delete(session, cutoff)` removes `name`'s rows older than cutoff; `days`: its own retention."""

    name: str
    delete: Callable[[Any, datetime], int]
    days: float | None = None


class RetentionSweeper:
    def __init__(self, db: Database, files: FileService, *, clock: Clock, days: float,
                 purges: Sequence[Purge] = (), batch: int = 200):
        self.db = db
        self.files = files
        self.clock = clock
        self.days = days
        self.batch = batch
        self._purges = tuple(purges)

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
                self.files.delete_file(s, row)
            removed["files"] = len(uploads)
            for purge in self._purges:
                days = purge.days
                removed[purge.name] = purge.delete(s, now - timedelta(days=days) if days is not None else cutoff)
        return removed
