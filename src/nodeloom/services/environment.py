"""The Environment nodes run in: a process pool for CPU-heavy work, services, secrets, node memory."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from sqlalchemy import select

from nodeloom.storage.db import Database
from nodeloom.storage.models import ExecutionNode

T = TypeVar("T")


class ResilientProcessPool:
    """A spawn-based process pool (fork is unsafe beside threads and an event loop) that replaces itself
    when a child dies (a segfaulting library, the OOM killer), so one crash does not break every later
    CPU-heavy node. The call that hit the broken pool is retried once on the new one."""

    def __init__(self, size: int):
        self.size = size
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.size, mp_context=multiprocessing.get_context("spawn"))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        pool = self._pool
        try:
            return await loop.run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = self._new()
                pool.shutdown(wait=False, cancel_futures=True)
            return await loop.run_in_executor(self._pool, fn, *args)

    def shutdown(self, wait: bool = False, cancel_futures: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def make_process_pool(size: int) -> ResilientProcessPool | None:
    """None means threads."""
    if size <= 0:
        return None
    return ResilientProcessPool(size)


class SleepingSlots:
    """Executions whose nodes sleep (`util.delay`) lend their worker slot back while they sleep.

    A node enters `asleep(execution_id)` around its sleep (nodes reach this as `ctx.service("sleeping")`); the
    worker loop counts the executions with a node asleep as not holding a slot (up to its
    `worker_sleeping_slots`) and is woken to claim more work at once. An execution that sleeps in one node while
    another of its nodes works lends its slot too: the bound on parked executions caps that overcommit. Sleeps
    shorter than `min_seconds` keep their slot (a short pause is not worth a claim and a parked execution)."""

    def __init__(self, min_seconds: float = 0.0) -> None:
        self.min_seconds = min_seconds
        self._lock = threading.Lock()
        self._sleeping: dict[str, int] = {}  # execution id → its nodes asleep now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    @property
    def count(self) -> int:
        """Executions with at least one node asleep."""
        with self._lock:
            return len(self._sleeping)

    def bind(self) -> asyncio.Event:
        """Called by the worker loop: an event set whenever an execution starts sleeping."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        return self._event

    def _notify(self) -> None:
        loop, event = self._loop, self._event
        if loop is None or event is None:
            return
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # that loop is closed
            pass

    @contextlib.contextmanager
    def asleep(self, execution_id: str, seconds: float = float("inf")) -> Iterator[None]:
        if seconds < self.min_seconds:
            yield
            return
        with self._lock:
            first = execution_id not in self._sleeping
            self._sleeping[execution_id] = self._sleeping.get(execution_id, 0) + 1
        if first:
            self._notify()
        try:
            yield
        finally:
            with self._lock:
                left = self._sleeping.get(execution_id, 1) - 1
                if left > 0:
                    self._sleeping[execution_id] = left
                else:
                    self._sleeping.pop(execution_id, None)


class ExecutionEnvironment:
    def __init__(self, *, db: Database, execution_id: str, pool: ResilientProcessPool | None,
                 services: Mapping[str, Any], secrets: Mapping[str, str], memory: dict[str, dict[str, Any]]):
        self.db = db
        self.execution_id = execution_id
        self.pool = pool
        self._services = services
        self._secrets = secrets
        self._memory = memory

    async def run_cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        if self.pool is None:
            return await asyncio.to_thread(fn, *args)
        return await self.pool.run(fn, *args)

    async def run_thread(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def service(self, name: str) -> Any:
        if name not in self._services:
            raise LookupError(f"service '{name}' is not configured on this server")
        return self._services[name]

    def secret(self, name: str) -> str | None:
        return self._secrets.get(name)

    async def remember(self, node_id: str, key: str, value: Any) -> None:
        self._memory.setdefault(node_id, {})[key] = value
        await asyncio.to_thread(self._persist, node_id)

    def _persist(self, node_id: str) -> None:
        with self.db.write() as s:
            row = s.scalar(select(ExecutionNode).where(ExecutionNode.execution_id == self.execution_id,
                                                       ExecutionNode.node_id == node_id))
            if row is not None:
                row.memory = dict(self._memory[node_id])

    def recalled(self, node_id: str, key: str) -> Any:
        return self._memory.get(node_id, {}).get(key)
