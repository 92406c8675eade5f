"""Fan-out of "something changed for execution X" to waiting SSE streams and `Prefer: wait`, and of "something was
enqueued" to worker loops.

Waiters always re-read the database, so a missed wake-up costs at most one poll interval. In one process the hub
and the signal are plain objects; the processes of one machine (`serve --workers N`) reach each other through UNIX
datagram sockets in the data directory (`LocalBus`); the scale-out build adds Redis pub/sub behind the same methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger("nodeloom.hub")


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


class LocalBus:
    """Wake-ups between the processes of one machine that share a data directory (`serve --workers N`, or `serve`
    beside `nodeloom worker` on the embedded default): each process binds a UNIX datagram socket per role it plays
    in `folder`, and a sender writes one datagram to every OTHER process's socket of a role (its own process is told
    directly). Lossy by design, like the hub: a lost datagram costs one poll interval, never a run."""

    #: how long a sender trusts its listing of the folder (a new process is heard from within this)
    LIST_S = 1.0

    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._sender: socket.socket | None = None
        self._peers: dict[str, tuple[float, list[str]]] = {}  # role → (listed at, socket paths)
        self._own: list[tuple[socket.socket, Path, asyncio.AbstractEventLoop]] = []

    def listen(self, role: str, on_message: Callable[[bytes], None]) -> bool:
        """Bind this process's socket of `role`; `on_message` gets each datagram, on the running loop. False when
        the folder cannot hold a socket (e.g. a path longer than the 107 bytes AF_UNIX allows): then only polls."""
        loop = asyncio.get_running_loop()
        path = self.folder / f"{role}-{os.getpid()}-{secrets.token_hex(4)}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # only this user's processes may write to it
            sock.bind(str(path))
        except OSError as exc:
            sock.close()
            log.warning("no local wake-ups for %s (%s): other processes are seen at their next poll", role, exc)
            return False
        sock.setblocking(False)

        def drain() -> None:
            while True:
                try:
                    data = sock.recv(1024)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                try:
                    on_message(data)
                except Exception:  # a listener's bug must not stop the socket
                    log.exception("local wake-up listener failed")

        loop.add_reader(sock.fileno(), drain)
        with self._lock:
            self._own.append((sock, path, loop))
        return True

    def send(self, role: str, message: bytes) -> None:
        """One datagram to every other process's socket of `role` (never blocks: a full receiver misses it)."""
        if os.getpid() != self._pid:  # forked: this object's socket belongs to the parent
            return
        for path in self._paths(role):
            try:
                self._socket().sendto(message, path)
            except (BlockingIOError, InterruptedError):
                pass  # its buffer is full: it is awake anyway
            except (ConnectionRefusedError, FileNotFoundError):
                self._forget(role, path)  # its process is gone (a socket file nobody reads)
            except OSError:
                pass

    def _socket(self) -> socket.socket:
        if self._sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
            self._sender = sender
        return self._sender

    def _paths(self, role: str) -> list[str]:
        now = time.monotonic()
        with self._lock:
            listed = self._peers.get(role)
            if listed is not None and now - listed[0] < self.LIST_S:
                return listed[1]
            mine = f"{role}-{os.getpid()}-"
            try:
                paths = [str(p) for p in self.folder.glob(f"{role}-*.sock") if not p.name.startswith(mine)]
            except OSError:
                paths = []
            self._peers[role] = (now, paths)
            return paths

    def _forget(self, role: str, path: str) -> None:
        with self._lock:
            listed = self._peers.get(role)
            if listed is not None and path in listed[1]:
                self._peers[role] = (listed[0], [p for p in listed[1] if p != path])
        with contextlib.suppress(OSError):
            os.unlink(path)  # nobody is bound to it (refused): a process that died without closing

    def close(self) -> None:
        with self._lock:
            own, self._own = self._own, []
        for sock, path, loop in own:
            with contextlib.suppress(Exception):
                loop.remove_reader(sock.fileno())
            sock.close()
            with contextlib.suppress(OSError):
                path.unlink()
        if self._sender is not None:
            self._sender.close()
            self._sender = None


class LocalBusHub(EventHub):
    """The hub across the processes of one machine (`LocalBus`): a change a worker process records wakes the
    `Prefer: wait` requests and event streams of the API process."""

    ROLE = "api"

    def __init__(self, bus: LocalBus) -> None:
        super().__init__()
        self.bus = bus

    def listen(self) -> bool:
        """Called by a process that answers requests (its waiters are woken by other processes' changes)."""
        return self.bus.listen(self.ROLE, self._on_message)

    def _on_message(self, data: bytes) -> None:
        execution_id, _, ended = data.decode(errors="replace").partition(" ")
        if execution_id:
            super().notify(execution_id, ended=ended != "0")

    def notify(self, execution_id: str, *, ended: bool = True) -> None:
        super().notify(execution_id, ended=ended)
        self.bus.send(self.ROLE, f"{execution_id} {1 if ended else 0}".encode())


class LocalBusWorkSignal(WorkSignal):
    """"Something was enqueued" across the processes of one machine: a submission wakes this process's worker loop
    and, through the `LocalBus`, the worker loops of the others."""

    ROLE = "worker"

    def __init__(self, bus: LocalBus) -> None:
        super().__init__()
        self.bus = bus

    def bind(self) -> asyncio.Event:
        event = super().bind()
        self.bus.listen(self.ROLE, lambda _data: WorkSignal.notify(self))  # heard from another process: local only
        return event

    def notify(self) -> None:
        super().notify()
        self.bus.send(self.ROLE, b"w")
