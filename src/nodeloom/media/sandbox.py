"""A warm pool of killable child processes for work a user programs: templates, regular expressions, JSON queries.

Python threads can be neither killed nor capped, so a node that evaluates what a user wrote hands a pure
function to `Sandbox.run`, which runs it in a child process under budgets:

- CPU time: `RLIMIT_CPU` (the kernel ends the child with SIGXCPU), and a wall-clock deadline the parent enforces
  with SIGKILL (a child that blocks without spending CPU);
- memory: `RLIMIT_AS` set to the child's own size after its imports plus the budget, so an allocation past it
  raises MemoryError in the child (or kills it) — never in the server;
- the event loop is never blocked: the answer is read with `add_reader` on a non-blocking pipe.

Exceeding a budget fails the node with `node_timeout` or `node_memory`; a child that failed is discarded and the
next call starts a fresh one. Idle children stay warm (their imports and caches, e.g. compiled templates, survive
from call to call), so a call costs one pipe round trip. The child answers in JSON (never pickle): its results are
plain values, and a child that a template escaped from cannot run code in the server by what it answers.

The composition root builds one `Sandbox` from the settings and hands it to nodes as `ctx.service("sandbox")`;
`sandbox_for(ctx)` falls back to a process-wide default only where nothing was configured (a bare
`LocalEnvironment`).
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import json
import math
import os
import pickle
import resource
import signal
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from nodeloom.engine.errors import NodeError

T = TypeVar("T")

_HEADER = struct.Struct(">I")
_READY = "ready"
#: modules a child imports before its memory budget is set (their size is not counted against it)
DEFAULT_PRELOAD: tuple[str, ...] = ("nodeloom.nodes.core", "nodeloom.nodes.text")


@dataclass(frozen=True, slots=True)
class Budget:
    """What one sandboxed call may spend."""

    cpu_seconds: float = 2.0
    wall_seconds: float = 10.0
    memory_bytes: int = 256 * 1024 * 1024


class _Child:
    """One child process and its pipes. Used by one call at a time."""

    def __init__(self, preload: tuple[str, ...], memory_bytes: int):
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import nodeloom.media.sandbox as s; s.child_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True, start_new_session=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = bytearray()
        self.ready = False
        self.calls = 0
        self.send({"preload": list(preload), "memory_bytes": memory_bytes})

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.stdin.write(_HEADER.pack(len(data)) + data)
        self.stdin.flush()

    async def receive(self, timeout: float) -> Any:
        """The next JSON frame; None when the child died (its pipe closed). TimeoutError past `timeout`."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def frame() -> bytes | None:
            if len(self.buffer) < _HEADER.size:
                return None
            (size,) = _HEADER.unpack_from(self.buffer)
            if len(self.buffer) < _HEADER.size + size:
                return None
            data = bytes(self.buffer[_HEADER.size:_HEADER.size + size])
            del self.buffer[:_HEADER.size + size]
            return data

        def readable() -> None:
            if done.done():
                return
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                done.set_result(None)
                return
            self.buffer += chunk
            data = frame()
            if data is not None:
                done.set_result(data)

        data = frame()
        if data is None:
            loop.add_reader(self.fd, readable)
            try:
                data = await asyncio.wait_for(done, timeout)
            finally:
                loop.remove_reader(self.fd)
        return None if data is None else json.loads(data)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
            pass

    def exit_signal(self) -> int | None:
        code = self.proc.poll()
        return -code if code is not None and code < 0 else None


class Sandbox:
    """Runs pure functions in warm child processes under a `Budget` (see the module's docstring)."""

    def __init__(self, budget: Budget = Budget(), *, warm: int = 2, max_children: int = 8,
                 preload: tuple[str, ...] = DEFAULT_PRELOAD, startup_seconds: float = 60.0):
        self.budget = budget
        self.warm = max(0, warm)
        self.max_children = max(1, max_children)
        self.preload = preload
        self.startup_seconds = startup_seconds
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._lock = threading.Lock()
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
            weakref.WeakKeyDictionary()
        self._closed = False
        _OPEN.add(self)

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            slot = self._slots.get(loop)
            if slot is None:
                slot = self._slots[loop] = asyncio.Semaphore(self.max_children)
            return slot

    def _take(self) -> _Child | None:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    self._busy.add(child)
                    return child
                child.kill()
        return None

    def _give_back(self, child: _Child, healthy: bool) -> None:
        with self._lock:
            self._busy.discard(child)
            keep = healthy and not self._closed and child.alive() and len(self._idle) < self.warm
            if keep:
                self._idle.append(child)
        if not keep:
            child.kill()

    async def _start(self) -> _Child:
        child = _Child(self.preload, self.budget.memory_bytes)
        with self._lock:
            self._busy.add(child)
        try:
            answer = await child.receive(self.startup_seconds)
        except BaseException:
            self._give_back(child, False)
            raise
        if answer != [_READY]:
            self._give_back(child, False)
            raise NodeError("the sandbox for user code could not start", code="sandbox_unavailable")
        child.ready = True
        return child

    async def run(self, fn: Callable[..., T], /, *args: Any, budget: Budget | None = None) -> T:
        """`fn(*args)` in a child. `fn` must be importable by name (a module-level function) and return JSON.
        A NodeError it raises arrives as the same code and message; a spent budget as `node_timeout` or
        `node_memory`."""
        budget = budget or self.budget
        async with self._slot():
            child = self._take() or await self._start()
            healthy = False
            try:
                try:
                    child.send((fn, args, budget.cpu_seconds))
                except BrokenPipeError:  # it died while idle: once more, on a fresh one
                    self._give_back(child, False)
                    child = await self._start()
                    child.send((fn, args, budget.cpu_seconds))
                child.calls += 1
                try:
                    answer = await child.receive(budget.wall_seconds)
                except TimeoutError:
                    raise NodeError(f"the node ran past its time budget of {budget.wall_seconds:g} s and was "
                                    "stopped", code="node_timeout") from None
                if answer is None:
                    raise self._died(child, budget)
                kind = answer[0]
                if kind == "ok":
                    healthy = True
                    return answer[1]
                code, message = str(answer[1]), str(answer[2])
                healthy = code not in ("node_memory", "node_timeout")
                raise NodeError(message, code=code)
            finally:
                self._give_back(child, healthy)

    @staticmethod
    def _died(child: _Child, budget: Budget) -> NodeError:
        child.kill()
        sig = child.exit_signal()
        if sig == signal.SIGXCPU:
            return NodeError(f"the node ran past its CPU budget of {budget.cpu_seconds:g} s and was stopped",
                             code="node_timeout")
        mb = budget.memory_bytes // (1024 * 1024)
        return NodeError(f"the node's process ended (memory budget {mb} MB exhausted, or it crashed)",
                         code="node_memory")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children = self._idle + list(self._busy)
            self._idle = []
        for child in children:
            child.kill()
        _OPEN.discard(self)


_OPEN: weakref.WeakSet[Sandbox] = weakref.WeakSet()
_default: Sandbox | None = None
_default_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    for sandbox in list(_OPEN):
        sandbox.close()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox with default budgets, for environments the composition root did not build."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox()
        return _default


def sandbox_for(ctx: Any) -> Sandbox:
    """The sandbox the composition root configured (`ctx.service("sandbox")`), else the default one."""
    try:
        found = ctx.service("sandbox")
    except LookupError:
        return default_sandbox()
    return found if isinstance(found, Sandbox) else default_sandbox()


# --- the child ------------------------------------------------------------------------------------------


def _read_exact(stream: Any, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _write_frame(stream: Any, value: Any) -> None:
    data = json.dumps(value, ensure_ascii=False).encode()
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_main() -> None:  # pragma: no cover - runs in the child process
    """The child's loop: read (fn, args, cpu seconds), run it under the CPU limit, answer in JSON."""
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the code prints goes to stderr, never into the answers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    header = _read_exact(inp, _HEADER.size)
    if header is None:
        return
    config = pickle.loads(_read_exact(inp, _HEADER.unpack(header)[0]) or b"")
    for name in config.get("preload", ()):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = _address_space() + int(config["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _write_frame(out, [_READY])
    while True:
        header = _read_exact(inp, _HEADER.size)
        if header is None:
            return
        body = _read_exact(inp, _HEADER.unpack(header)[0])
        if body is None:
            return
        recycle = False
        try:
            fn, args, cpu_seconds = pickle.loads(body)
            used = resource.getrusage(resource.RUSAGE_SELF)
            soft = math.ceil(used.ru_utime + used.ru_stime + float(cpu_seconds))
            resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
            answer: list[Any] = ["ok", fn(*args)]
            data = json.dumps(answer, ensure_ascii=False).encode()
        except MemoryError:
            answer, recycle = ["fail", "node_memory", "the node ran past its memory budget and was stopped"], True
            data = json.dumps(answer).encode()
        except NodeError as exc:
            data = json.dumps(["fail", exc.code, exc.message], ensure_ascii=False).encode()
        except RecursionError:
            data = json.dumps(["fail", "node_failed", "the input is nested too deeply"]).encode()
        except Exception as exc:  # noqa: BLE001 - every failure of user code becomes the node's error
            data = json.dumps(["fail", "node_failed", f"{type(exc).__name__}: {exc}"], ensure_ascii=False,
                              default=str).encode()
        try:
            out.write(_HEADER.pack(len(data)) + data)
            out.flush()
        except MemoryError:
            recycle = True
        if recycle:
            return
