"""In-process fan-out of "something changed for execution X" to waiting SSE streams and `Prefer: wait`.

Waiters always re-read the events table, so a missed wake-up costs at most one poll interval; the
scale-out build adds Redis pub/sub behind the same two methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import Iterator


class EventHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: execution → (loop, event, ends_only) of each listener
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event, bool]]] = defaultdict(set)

    def notify(self, execution_id: str, *, ended: bool = True) -> None:
        """Wake the waiters of this execution; safe to call from any thread. `ended=False` says the change cannot
        have ended the run (a worker's progress batch): listeners that wait only for the end sleep on. When unsure,
        leave it True — a needless wake-up costs a read, a missed one a second."""
        with self._lock:
            waiters = [(loop, event) for loop, event, ends_only in self._waiters.get(execution_id, ())
                       if ended or not ends_only]
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                pass

    async def wait(self, execution_id: str, timeout: float) -> None:
        """Return when notified or after `timeout` seconds, whichever is first."""
        with self.listening(execution_id) as changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)

    @contextlib.contextmanager
    def listening(self, execution_id: str, *, ends_only: bool = False) -> Iterator[asyncio.Event]:
        """An event set by every notification for the execution while the block runs (call from the event loop);
        `ends_only`: only by those that may mean the run ended (`Prefer: wait` needs no other).
        Listen BEFORE reading what changed, and clear it before each read: a notification that lands between
        the read and the wait is then not lost."""
        entry = (asyncio.get_running_loop(), asyncio.Event(), ends_only)
        with self._lock:
            self._waiters[execution_id].add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                waiters = self._waiters.get(execution_id)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[execution_id]


class RedisEventHub(EventHub):
    """The same hub across processes: notifications go through Redis pub/sub (scale-out).

    A listener thread subscribes to every execution channel and wakes this process's local waiters.
    """

    CHANNEL = "nodeloom:execution:"

    def __init__(self, redis_url: str) -> None:
        super().__init__()
        import redis

        self._redis = redis.Redis.from_url(redis_url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(**{self.CHANNEL + "*": self._on_message})
        self._thread = self._pubsub.run_in_thread(sleep_time=0.5, daemon=True)

    def _on_message(self, message: dict[str, object]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            super().notify(channel.decode()[len(self.CHANNEL):], ended=message.get("data") != self.PROGRESS)

    #: the message of a change that cannot have ended the run (anything else may have)
    PROGRESS = b"progress"

    def notify(self, execution_id: str, *, ended: bool = True) -> None:
        try:
            self._redis.publish(self.CHANNEL + execution_id, b"1" if ended else self.PROGRESS)
        except Exception:  # a Redis hiccup only delays waiters until their next poll
            super().notify(execution_id, ended=ended)

    def close(self) -> None:
        self._thread.stop()
        self._thread.join(timeout=5)  # it notices within its 0.5 s read; closing under it would break its read
        self._pubsub.close()
        self._redis.close()


class WorkSignal:
    """"Something was enqueued": submissions set it from any thread, this process's worker loop waits on it
    (and looks now rather than at its next poll). Bound to the loop that waits on it."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self) -> asyncio.Event:
        """Called by the waiting loop: the event it waits on."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        return self._event

    def notify(self) -> None:
        loop, event = self._loop, self._event
        if loop is None or event is None:
            return
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # that loop is closed
            pass
