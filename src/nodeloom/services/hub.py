"""In-process fan-out of "something changed for execution X" to waiting SSE streams and `Prefer: wait`.

Waiters always re-read the events table, so a missed wake-up costs at most one poll interval; the
scale-out build adds Redis pub/sub behind the same two methods.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict


class EventHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)

    def notify(self, execution_id: str) -> None:
        """Wake every waiter of this execution; safe to call from any thread."""
        with self._lock:
            waiters = list(self._waiters.get(execution_id, ()))
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                pass

    async def wait(self, execution_id: str, timeout: float) -> None:
        """Return when notified or after `timeout` seconds, whichever is first."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[execution_id].add(entry)
        try:
            await asyncio.wait_for(entry[1].wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                waiters = self._waiters.get(execution_id)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[execution_id]
