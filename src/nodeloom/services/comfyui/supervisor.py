"""A ComfyUI that this process runs as its child: `nodeloom serve --comfyui PATH` and `nodeloom worker --comfyui PATH`.

`ComfyUISupervisor` starts ComfyUI from a checkout (PATH) on 127.0.0.1 and a free port chosen once, with its own
input/output/temp/user folders under the data dir, waits until `GET /system_stats` answers (polled, never a fixed
sleep; a deadline and the child's last log lines when it does not come up), restarts it on the same port when it
exits or stops answering (with back-off), and stops it on shutdown (SIGTERM to its process group, SIGKILL after a
grace period). The child runs in a process group of its own and gets SIGTERM from the kernel when the thread that
started it dies (PR_SET_PDEATHSIG on Linux), so a SIGKILLed nodeloom leaves no ComfyUI behind.

Its environment is ours without the server's own configuration (every NODELOOM_* variable, the vendor keys, the
AWS credentials), even when it starts before `scrub_secret_environment` has run. ComfyUI is GPL-3.0: we run it and
talk to it over HTTP, never import it.

Folders (one slot per process that runs a ComfyUI on this data dir, claimed with a lock, reused across restarts):

    <data_dir>/comfyui/<slot>/input, output, temp, user, comfyui.log

`swept_folders(data_dir)` lists the input/output/temp folders for the retention sweeper.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nodeloom.settings import is_server_variable

log = logging.getLogger("nodeloom.comfyui")

#: how long the first start may take before it is reported as failed (torch and ComfyUI's imports: 20–40 s on two
#: idle cores, minutes on a busy machine or a cold disk)
START_TIMEOUT = 300.0
LOG_TAIL_LINES = 40
_MAX_LOG_BYTES = 10 * 1024 * 1024


class ComfyUIStartError(RuntimeError):
    """ComfyUI could not be started (not a checkout, no Python, it exited, it never answered)."""


# --- folders -----------------------------------------------------------------------------------------------------

def comfyui_root(data_dir: Path) -> Path:
    return data_dir.resolve() / "comfyui"


@dataclass(frozen=True)
class ComfyFolders:
    """One slot's folders: what ComfyUI is told to use, and its log."""

    slot: int
    root: Path

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def temp(self) -> Path:
        return self.root / "temp"

    @property
    def user(self) -> Path:
        return self.root / "user"

    @property
    def log(self) -> Path:
        return self.root / "comfyui.log"


def swept_folders(data_dir: Path) -> list[Path]:
    """The folders of every local ComfyUI's files under `data_dir` that retention sweeps by age: input (per-execution
    uploads), output and temp — never user (its settings and database)."""
    root = comfyui_root(data_dir)
    if not root.is_dir():
        return []
    return sorted(folder for slot in root.iterdir() if slot.is_dir() and slot.name.isdigit()
                  for folder in (slot / "input", slot / "output", slot / "temp") if folder.is_dir())


def _claim_slot(data_dir: Path, *, slots: int = 64) -> tuple[ComfyFolders, int]:
    """The first slot no other process holds (an exclusive lock on <slot>/.lock, released with its descriptor)."""
    root = comfyui_root(data_dir)
    for slot in range(slots):
        folders = ComfyFolders(slot, root / str(slot))
        folders.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(folders.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        for folder in (folders.input, folders.output, folders.temp, folders.user):
            folder.mkdir(exist_ok=True)
        return folders, fd
    raise ComfyUIStartError(f"{slots} ComfyUI processes already run on {root}")


# --- the checkout and its Python -----------------------------------------------------------------------------------

def check_checkout(path: Path) -> Path:
    """`path` as an absolute path (symbolic links kept), if it looks like a ComfyUI checkout."""
    path = Path(os.path.abspath(path.expanduser()))
    if not path.is_dir():
        raise ComfyUIStartError(f"--comfyui {path}: no such folder (expected a ComfyUI checkout)")
    if not (path / "main.py").is_file() or not (path / "comfy").is_dir():
        raise ComfyUIStartError(f"--comfyui {path}: not a ComfyUI checkout (no main.py and comfy/ in it)")
    return path


def python_candidates(path: Path) -> list[Path]:
    """Where ComfyUI's Python is looked for: its own virtualenv (.venv, venv), then a `venv` next to the checkout
    (the layout of `make comfyui`: <home>/ComfyUI and <home>/venv)."""
    return [path / ".venv" / "bin" / "python", path / "venv" / "bin" / "python", path.parent / "venv" / "bin" / "python"]


def find_python(path: Path, python: Path | None = None) -> Path:
    """The interpreter that runs ComfyUI: `python` when given (NODELOOM_COMFYUI_PYTHON), else the first candidate."""
    if python is not None:
        python = Path(os.path.abspath(python.expanduser()))
        if not python.exists():
            raise ComfyUIStartError(f"NODELOOM_COMFYUI_PYTHON={python}: no such file")
        return python
    for candidate in python_candidates(path):
        if candidate.exists():
            return candidate
    looked = ", ".join(str(c) for c in python_candidates(path))
    raise ComfyUIStartError(f"no Python for the ComfyUI at {path}: looked for {looked}; create a virtualenv with "
                            "ComfyUI's requirements there, or set NODELOOM_COMFYUI_PYTHON to its interpreter")


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without the server's own configuration (NODELOOM_*, vendor keys, AWS credentials)."""
    source = os.environ if environ is None else environ
    env = {name: value for name, value in source.items() if not is_server_variable(name)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


_GPU_DEVICES = ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")
_GPU_PROBE = ("import sys, torch\n"
              "xpu = getattr(torch, 'xpu', None)\n"
              "gpu = torch.cuda.is_available() or bool(xpu and xpu.is_available()) or torch.backends.mps.is_available()\n"
              "sys.stdout.write('gpu' if gpu else 'cpu')\n")


def has_gpu(python: Path, env: Mapping[str, str], timeout: float = 180.0) -> bool:
    """Whether ComfyUI's torch sees a GPU. Without a GPU device on the machine, no: torch is not even asked."""
    if sys.platform != "darwin" and not any(os.path.exists(device) for device in _GPU_DEVICES):
        return False
    try:
        out = subprocess.run([str(python), "-c", _GPU_PROBE], env=dict(env), capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("could not ask ComfyUI's torch whether it sees a GPU (%s): running it with --cpu", exc)
        return False
    if out.stdout.strip() not in ("gpu", "cpu"):
        log.warning("could not ask ComfyUI's torch whether it sees a GPU (exit %s: %s): running it with --cpu",
                    out.returncode, out.stderr.strip().splitlines()[-1:] or "")
    return out.stdout.strip() == "gpu"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind host:port now (with SO_REUSEADDR, as ComfyUI's aiohttp binds)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# --- the child process -----------------------------------------------------------------------------------------

# The kernel sends the child SIGTERM when the thread that started it dies, even by SIGKILL (Linux). libc is loaded
# here, not between fork and exec.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child between fork and exec (`preexec_fn`): SIGTERM when the thread that started it dies."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the child's process group (it leads one of its own): ComfyUI and whatever it started."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


_live: weakref.WeakSet[ComfyUISupervisor] = weakref.WeakSet()


@atexit.register
def _kill_all() -> None:
    """Last resort at interpreter exit (a supervisor never stopped): no ComfyUI outlives us."""
    for supervisor in list(_live):
        proc = supervisor._proc
        if proc is not None:
            _signal_group(proc, signal.SIGKILL)


class ComfyUISupervisor:
    """One ComfyUI child on 127.0.0.1:<port>: `await start()` → its base URL once it answers; a watch task restarts
    it (same port, same folders) when it exits or stops answering; `await stop()` ends it and its process group.

    Start it from a thread that lives as long as it runs (the child dies with the thread that started it);
    `SupervisorThread` runs one on a thread of its own for synchronous callers.
    """

    def __init__(self, path: Path, *, data_dir: Path, python: Path | None = None, port: int | None = None,
                 cpu: bool | None = None, extra_args: Sequence[str] = (), start_timeout: float = START_TIMEOUT,
                 stop_grace: float = 10.0, check_interval: float = 5.0, unresponsive_after: float = 120.0,
                 backoff: tuple[float, float] = (1.0, 60.0), stable_after: float = 60.0,
                 environ: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.data_dir = Path(data_dir)
        self.python = python
        self.cpu = cpu  # None: --cpu unless ComfyUI's torch sees a GPU
        self.extra_args = tuple(extra_args)
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.check_interval = check_interval
        self.unresponsive_after = unresponsive_after
        self.backoff = backoff
        self.stable_after = stable_after
        self.restarts = 0
        self.folders: ComfyFolders | None = None
        self._environ = environ
        self._port = port
        self._source: Path | None = None
        self._interpreter: Path | None = None
        self._env: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready_at = 0.0
        self._healthy = False
        self._lock_fd: int | None = None
        self._watch: asyncio.Task[None] | None = None

    # --- what callers see --------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("ComfyUI not started")
        return self._port

    @property
    def url(self) -> str:
        """The child's base URL; the port is chosen once and kept across restarts."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def healthy(self) -> bool:
        """Whether the child is running and answered its last check."""
        return self._healthy and self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def command(self) -> list[str]:
        assert self._source is not None and self._interpreter is not None and self.folders is not None
        f = self.folders
        args = [str(self._interpreter), str(self._source / "main.py"), "--listen", "127.0.0.1",
                "--port", str(self.port), "--disable-auto-launch", "--dont-print-server",
                "--input-directory", str(f.input), "--output-directory", str(f.output),
                "--temp-directory", str(f.temp), "--user-directory", str(f.user)]
        if self._supports("--database-url"):  # else ComfyUI keeps its database in the checkout, shared by all
            args += ["--database-url", f"sqlite:///{f.user / 'comfyui.db'}"]
        if self.cpu:
            args.append("--cpu")
        return [*args, *self.extra_args]

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if self.folders is None:
            return "(no log)"
        try:
            with open(self.folders.log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                data = f.read()
        except OSError:
            return "(no log)"
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    # --- start and stop ----------------------------------------------------------------------------------------
    async def start(self) -> str:
        """Start ComfyUI and return its base URL once `/system_stats` answers; `ComfyUIStartError` (with the
        child's last log lines) when it exits first or does not answer within `start_timeout`."""
        if self._watch is not None or self._lock_fd is not None:
            raise RuntimeError("ComfyUI supervisor already started")
        self._source = check_checkout(self.path)
        self._env = child_environment(self._environ)
        self._interpreter = find_python(self._source, self.python)
        self.folders, self._lock_fd = _claim_slot(self.data_dir)
        _live.add(self)
        try:
            if self.cpu is None:
                self.cpu = not await asyncio.to_thread(has_gpu, self._interpreter, self._env)
            if self._port is None:
                self._port = free_port()
            await self._spawn_and_wait()
        except BaseException:
            await self._terminate(0.0)
            self._release()
            raise
        self._watch = asyncio.create_task(self._watch_loop(), name=f"comfyui-supervisor:{self._port}")
        return self.url

    async def stop(self) -> None:
        """Stop watching, then SIGTERM the child's process group, SIGKILL after `stop_grace` seconds."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            try:
                await watch
            except asyncio.CancelledError:
                pass
        await self._terminate(self.stop_grace)
        self._release()

    def _release(self) -> None:
        self._healthy = False
        _live.discard(self)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- the child ---------------------------------------------------------------------------------------------
    def _supports(self, flag: str) -> bool:
        assert self._source is not None
        try:
            return flag in (self._source / "comfy" / "cli_args.py").read_text(errors="replace")
        except OSError:
            return False

    def _spawn(self) -> subprocess.Popen[bytes]:
        assert self.folders is not None and self._source is not None
        if not port_is_free(self.port):
            raise ComfyUIStartError(f"port {self.port} on 127.0.0.1 is taken by another process")
        logfile = self.folders.log
        try:
            if logfile.stat().st_size > _MAX_LOG_BYTES:
                logfile.replace(logfile.with_name(logfile.name + ".1"))
        except FileNotFoundError:
            pass
        command = self.command()
        with open(logfile, "ab") as out:
            out.write(f"\n===== nodeloom {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command)}\n".encode())
            out.flush()
            try:
                return subprocess.Popen(command, cwd=self._source, env=self._env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=die_with_parent)
            except OSError as exc:
                raise ComfyUIStartError(f"cannot run {command[0]}: {exc}") from exc

    async def _spawn_and_wait(self) -> None:
        t0 = time.monotonic()
        log.info("starting ComfyUI from %s on 127.0.0.1:%d (%s)", self._source, self.port,
                 "CPU" if self.cpu else "GPU")
        self._proc = proc = self._spawn()
        try:
            await self._wait_ready(proc, t0 + self.start_timeout)
        except BaseException:
            await self._terminate(0.0)
            raise
        self._ready_at = time.monotonic()
        self._healthy = True
        log.info("ComfyUI is up at %s (pid %d) after %.1f s", self.url, proc.pid, self._ready_at - t0)

    async def ping(self, timeout: float = 5.0) -> bool:
        """Whether `GET /system_stats` answers 200 now. A bare HTTP/1.0 request, not an HTTP client: no log line per
        check, and nothing of ours (proxies, headers) on the way."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), timeout)
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(b"GET /system_stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), timeout)
            return status.split()[1:2] == [b"200"]
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def _wait_ready(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        while True:
            code = proc.poll()
            if code is not None:
                raise ComfyUIStartError(
                    f"ComfyUI ({self._source}) exited with {_describe_exit(code)} before answering on "
                    f"{self.url}\n--- last lines of {self.folders.log if self.folders else 'its log'} ---\n"
                    f"{self.log_tail()}")
            if await self.ping(2.0):
                return
            if time.monotonic() > deadline:
                raise ComfyUIStartError(
                    f"ComfyUI ({self._source}) did not answer {self.url}/system_stats within "
                    f"{self.start_timeout:.0f} s\n--- last lines of "
                    f"{self.folders.log if self.folders else 'its log'} ---\n{self.log_tail()}")
            await asyncio.sleep(0.25)

    async def _terminate(self, grace: float) -> None:
        """SIGTERM the child's group (SIGCONT too, so a stopped child can act on it), wait up to `grace` seconds,
        then SIGKILL whatever of the group is left; the child is reaped."""
        proc = self._proc
        if proc is None:
            return
        self._healthy = False
        if proc.poll() is None and grace > 0:
            _signal_group(proc, signal.SIGTERM)
            _signal_group(proc, signal.SIGCONT)
            deadline = time.monotonic() + grace
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                log.warning("ComfyUI (pid %d) did not stop within %.0f s of SIGTERM: SIGKILL", proc.pid, grace)
        _signal_group(proc, signal.SIGKILL)  # the child, or what it left in its group
        while proc.poll() is None:
            await asyncio.sleep(0.02)
        # what it started dies asynchronously: give it a moment (a group of zombies waiting for init still counts)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            await asyncio.sleep(0.02)

    # --- the watch -----------------------------------------------------------------------------------------
    async def _watch_loop(self) -> None:
        delay = self.backoff[0]
        while True:
            reason = await self._trouble()
            self._healthy = False
            if time.monotonic() - self._ready_at >= self.stable_after:
                delay = self.backoff[0]  # it ran well for a while: a fresh crash, not a crash loop
            log.warning("ComfyUI at %s %s; restarting it in %.1f s\n--- last lines of its log ---\n%s",
                        self.url, reason, delay, self.log_tail(15))
            await self._terminate(self.stop_grace)
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
                try:
                    await self._spawn_and_wait()
                    break
                except (ComfyUIStartError, OSError) as exc:
                    log.error("ComfyUI did not start again (next try in %.1f s): %s", delay, exc)
            self.restarts += 1

    async def _trouble(self) -> str:
        """Wait until the child exits or has not answered `/system_stats` for `unresponsive_after` seconds."""
        proc = self._proc
        assert proc is not None
        last_ok = next_check = time.monotonic()
        while True:
            await asyncio.sleep(0.2)
            code = proc.poll()
            if code is not None:
                return f"exited with {_describe_exit(code)}"
            now = time.monotonic()
            if now < next_check:
                continue
            next_check = now + self.check_interval
            ok = await self.ping(min(5.0, self.unresponsive_after))
            now = time.monotonic()
            if ok:
                last_ok = now
            elif now - last_ok >= self.unresponsive_after:
                return f"has not answered /system_stats for {now - last_ok:.0f} s"
            self._healthy = ok and proc.poll() is None


class SupervisorThread:
    """A `ComfyUISupervisor` on an event loop of its own, in a thread of its own, for synchronous callers (the CLI
    around uvicorn or a Celery worker): `start()` blocks until ComfyUI answers (or raises its start error) and returns
    its URL; `stop()` stops it and ends the thread. The thread lives as long as the child may, as PDEATHSIG needs."""

    def __init__(self, supervisor: ComfyUISupervisor):
        self.supervisor = supervisor
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()  # used on self._loop only
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="comfyui-supervisor", daemon=True)

    @property
    def url(self) -> str:
        return self.supervisor.url

    def start(self) -> str:
        self._thread.start()
        while not self._ready.wait(0.5):  # a timeout, so Ctrl-C interrupts the wait
            if not self._thread.is_alive():
                break
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise ComfyUIStartError("the ComfyUI supervisor thread ended before ComfyUI started")
        return self.supervisor.url

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop has just closed: nothing left to stop
                pass
            self._thread.join()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        starting = asyncio.create_task(self.supervisor.start())
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # stopped while starting: the start cleans up after itself when cancelled
            starting.cancel()
        try:
            await starting
        except BaseException as exc:  # handed to the thread that called start()
            self._error = exc
            stopping.cancel()
            self._ready.set()
            return
        self._ready.set()
        await stopping
        await self.supervisor.stop()
