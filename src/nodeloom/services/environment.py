"""The Environment nodes run in: a process pool for CPU-heavy work, services, secrets, node memory."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image
from sqlalchemy import select

from nodeloom.media.images import INLINE_MAX_PIXELS
from nodeloom.services.hub import WorkSignal
from nodeloom.storage.db import Database
from nodeloom.storage.models import ExecutionNode

T = TypeVar("T")

#: modules whose `run_cpu` functions are pure Pillow/OpenCV/NumPy work on their arguments — no model, no global
#: state, and libraries that release the GIL for the work itself. On images up to the pool's `local_max_pixels`
#: they run in this process (pickling an image to a child and its result back costs more than inverting it);
#: anything else — models, operators' packs, larger images — still goes to the process pool.
LOCAL_MODULES = frozenset({"nodeloom.nodes.core", "nodeloom.nodes.image", "nodeloom.nodes.image_adjust",
                           "nodeloom.nodes.image_compose", "nodeloom.nodes.image_mask",
                           "nodeloom.nodes.image_analyze"})
#: ... and with no number among the arguments larger than this (a size or padding could make the result large)
INLINE_MAX_NUMBER = 256


def inline_ok(args: tuple[Any, ...]) -> bool:
    """No argument asks for more work than the image's size says (a large target size, padding, radius)."""
    for arg in args:
        for item in arg if isinstance(arg, (list, tuple)) else (arg,):
            if isinstance(item, (int, float)) and not isinstance(item, bool) and abs(item) > INLINE_MAX_NUMBER:
                return False
            if isinstance(item, (list, tuple)) and len(item) > INLINE_MAX_NUMBER:
                return False
    return True


def image_pixels(args: tuple[Any, ...]) -> int | None:
    """The pixels of the images among `args` (and in lists of them), or None when an argument is something whose
    size we cannot see (then the call is not judged small)."""
    total = 0
    for arg in args:
        items = arg if isinstance(arg, (list, tuple)) else (arg,)
        for item in items:
            if isinstance(item, Image.Image):
                total += item.width * item.height
            elif isinstance(item, (bytes, bytearray, memoryview)) and len(item) > 1 << 20:
                return None
    return total


class ResilientProcessPool:
    """A spawn-based process pool (fork is unsafe beside threads and an event loop) that replaces itself
    when a child dies (a segfaulting library, the OOM killer), so one crash does not break every later
    CPU-heavy node. The call that hit the broken pool is retried once on the new one."""

    def __init__(self, size: int, *, local_max_pixels: int = 0):
        self.size = size
        #: images up to this many pixels are worked on in this process by the pure image functions (LOCAL_MODULES)
        self.local_max_pixels = local_max_pixels
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


def make_process_pool(size: int, *, local_max_pixels: int = 0) -> ResilientProcessPool | None:
    """None means threads."""
    if size <= 0:
        return None
    return ResilientProcessPool(size, local_max_pixels=local_max_pixels)


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
        self._signal = WorkSignal()  # "an execution started sleeping", for the worker loop that binds it

    @property
    def count(self) -> int:
        """Executions with at least one node asleep."""
        with self._lock:
            return len(self._sleeping)

    def is_asleep(self, execution_id: str) -> bool:
        """The execution has a node asleep now (a Celery task lends its slot back on this)."""
        with self._lock:
            return execution_id in self._sleeping

    def bind(self) -> asyncio.Event:
        """Called by the worker loop: an event set whenever an execution starts sleeping."""
        return self._signal.bind()

    @contextlib.contextmanager
    def asleep(self, execution_id: str, seconds: float = float("inf")) -> Iterator[None]:
        if seconds < self.min_seconds:
            yield
            return
        with self._lock:
            first = execution_id not in self._sleeping
            self._sleeping[execution_id] = self._sleeping.get(execution_id, 0) + 1
        if first:
            self._signal.notify()
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
                 services: Mapping[str, Any], secrets: Mapping[str, str], memory: dict[str, dict[str, Any]],
                 workdir: Path | None = None):
        self.db = db
        self.execution_id = execution_id
        self.pool = pool
        self._services = services
        #: the execution's own folder, made the first time a node asks for it (`ctx.service("workdir")`): most
        #: executions never need one, and making and removing a folder costs milliseconds on some filesystems
        self.workdir = workdir
        self.workdir_made = False
        self._secrets = secrets
        self._memory = memory

    async def run_cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        pool = self.pool
        local = pool is None or pool.local_max_pixels > 0  # 0: the operator wants every call in the pool
        pixels = image_pixels(args) if local and getattr(fn, "__module__", None) in LOCAL_MODULES else None
        if pixels is not None and pixels <= INLINE_MAX_PIXELS and inline_ok(args):
            return fn(*args)  # a small image: no thread hop, no pickling (nothing is copied between nodes)
        if pool is None or (pixels is not None and pixels <= pool.local_max_pixels):
            return await asyncio.to_thread(fn, *args)
        return await pool.run(fn, *args)

    async def run_thread(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def service(self, name: str) -> Any:
        if name == "workdir" and self.workdir is not None:
            if not self.workdir_made:
                self.workdir.mkdir(parents=True, exist_ok=True)
                self.workdir_made = True
            return self.workdir
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
