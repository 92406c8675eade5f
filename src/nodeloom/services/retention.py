"""The retention sweeper: removes executions, events and files older than the operator keeps them.

Other services' rows (delivery logs, trigger receipts) are swept too: the composition root hands the
sweeper one `Purge` per kind, each deleting its own expired rows inside the sweeper's transaction and
returning how many it removed. Files that another program writes under our data dir (the output and temp
folders of a ComfyUI that `serve/worker --comfyui` runs) are swept by age: the sweeper's `folders`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
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


def purge_old_files(folders: Iterable[Path], cutoff: datetime) -> int:
    """Remove the files under `folders` last modified before `cutoff`, and their subfolders that are empty and
    untouched since cutoff (a folder of `folders` itself stays); how many files it removed. Symbolic links are
    removed, never followed; a folder that does not exist is skipped."""
    limit = cutoff.timestamp()
    removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    if os.lstat(path).st_mtime < limit:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    pass
            for name in dirnames:
                path = os.path.join(dirpath, name)
                try:
                    if os.path.islink(path):
                        if os.lstat(path).st_mtime < limit:
                            os.unlink(path)
                            removed += 1
                    elif os.stat(path).st_mtime < limit and not os.listdir(path):
                        os.rmdir(path)
                except OSError:
                    pass  # gone, or written to meanwhile
    return removed


class RetentionSweeper:
    def __init__(self, db: Database, files: FileService, *, clock: Clock, days: float,
                 purges: Sequence[Purge] = (), batch: int = 200,
                 folders: Callable[[], Iterable[Path]] | None = None):
        self.db = db
        self.files = files
        self.clock = clock
        self.days = days
        self.batch = batch
        self._purges = tuple(purges)
        #: the folders of files other programs write (a local ComfyUI's output and temp), listed at each sweep
        #: (they come and go with the processes that run those programs): swept by file age
        self.folders = folders

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
        if self.folders is not None:  # outside the transaction: files, not rows
            removed["folder_files"] = purge_old_files(self.folders(), cutoff)
        return removed
