"""The heartbeat of running executions: extends each claim's lease and notices cancel requests.

Every second it reads one column (`cancel_requested`) of each running execution; the lease is extended
every `interval` seconds. A lease that could not be extended means another worker owns the execution
now: the run is told to stop (`on_lost`) without writing anything more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import select

from nodeloom.clock import Clock
from nodeloom.queue.base import Claim, QueueBackend
from nodeloom.storage.db import Database
from nodeloom.storage.models import Execution


class Heartbeat:
    def __init__(self, *, db: Database, queue: QueueBackend, clock: Clock, interval: float):
        self.db = db
        self.queue = queue
        self.clock = clock
        self.interval = interval
        self._last_beat: dict[str, float] = {}  # execution id → when its lease was last extended

    async def watch(self, claim: Claim, *, on_cancel: Callable[[], None], on_lost: Callable[[], None]) -> None:
        """Beat until cancelled (the run ended) or the lease is lost."""
        try:
            while True:
                await asyncio.sleep(min(self.interval, 1.0))
                alive, cancel_requested = await asyncio.to_thread(self.beat, claim)
                if not alive:
                    on_lost()
                    return
                if cancel_requested:
                    on_cancel()
        finally:
            self._last_beat.pop(claim.execution_id, None)

    def beat(self, claim: Claim) -> tuple[bool, bool]:
        """(the lease is still ours, a cancel was requested)."""
        now = self.clock.time()
        alive = True
        if now - self._last_beat.get(claim.execution_id, 0) >= self.interval:
            alive = self.queue.heartbeat(claim)
            self._last_beat[claim.execution_id] = now
        with self.db.read() as s:  # one column, every second, for every running execution: not the whole row
            cancel_requested = s.scalar(select(Execution.cancel_requested).where(Execution.id == claim.execution_id))
            return alive, bool(cancel_requested)
