"""A real ComfyUI server for tests and benchmarks (the vendored source in tests/fixtures/comfyui).

`make comfyui` (scripts/comfyui-env.sh) prepares it outside the checkout; `ComfyServer` runs one process of it on a
free port with its own input/output/temp/user folders, talks to it only over HTTP and keeps its output in a log file.
ComfyUI is GPL-3.0: nothing here imports it.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"
HOME_ENV = "NODELOOM_COMFYUI_HOME"
SETUP_HINT = "make comfyui"  # = bash scripts/comfyui-env.sh
START_TIMEOUT = 180.0  # 20–40 s on two idle cores; much more when the machine is busy


def comfyui_home() -> Path:
    """Where scripts/comfyui-env.sh puts ComfyUI: $NODELOOM_COMFYUI_HOME or ~/.cache/nodeloom/comfyui."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nodeloom" / "comfyui"


@dataclass(frozen=True)
class ComfyEnv:
    """A prepared ComfyUI: the source tree and the interpreter of its virtualenv (the script's layout)."""

    home: Path

    @property
    def source(self) -> Path:
        return self.home / "ComfyUI"

    @property
    def main(self) -> Path:
        return self.source / "main.py"

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def complete(self) -> bool:
        # the script writes .nodeloom-complete only after a successful install
        return self.main.is_file() and self.python.exists() and (self.venv / ".nodeloom-complete").is_file()


def find_comfyui() -> ComfyEnv | None:
    env = ComfyEnv(comfyui_home())
    return env if env.complete() else None


def require_comfyui() -> ComfyEnv:
    """The prepared ComfyUI; when missing, fail in CI (`make test` prepares it) and skip elsewhere."""
    env = find_comfyui()
    if env is not None:
        return env
    msg = f"no ComfyUI environment in {comfyui_home()}: run `{SETUP_HINT}` (scripts/comfyui-env.sh)"
    if IN_CI:
        pytest.fail(f"{msg} — required in CI", pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ComfyStartError(RuntimeError):
    pass


# Each child gets SIGTERM when the process (thread) that started it dies, even by SIGKILL, so a killed test run
# leaves no ComfyUI behind; libc is loaded here, not between fork and exec.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_live: weakref.WeakSet[ComfyServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        server.kill()


class ComfyServer:
    """One ComfyUI process on 127.0.0.1:<port>, with fresh input/output/temp/user folders under `root`.

    `start()` returns once `GET /system_stats` answers 200; `stop()` terminates (then kills), `kill()` is a SIGKILL
    (a crash, for failover tests), `restart()` starts it again on the same port and folders (history, which ComfyUI
    keeps in memory, is then empty). Start it from the main thread: the child dies with the starting thread.
    """

    def __init__(self, root: Path, *, env: ComfyEnv | None = None, port: int | None = None,
                 extra_args: Sequence[str] = (), start_timeout: float = START_TIMEOUT):
        self.env = env or require_comfyui()
        self.root = root
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.input_dir = root / "input"
        self.output_dir = root / "output"
        self.temp_dir = root / "temp"
        self.user_dir = root / "user"
        self.log_path = root / "comfyui.log"
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.started_in: float | None = None  # seconds the last start took
        self._proc: subprocess.Popen[bytes] | None = None
        for d in (self.input_dir, self.output_dir, self.temp_dir, self.user_dir):
            d.mkdir(parents=True, exist_ok=True)

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def command(self) -> list[str]:
        return [str(self.env.python), str(self.env.main), "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                "--disable-auto-launch", "--dont-print-server",
                "--input-directory", str(self.input_dir), "--output-directory", str(self.output_dir),
                "--temp-directory", str(self.temp_dir), "--user-directory", str(self.user_dir),
                # its database too, so no two servers (nor a test and the shared source tree) share a file
                "--database-url", f"sqlite:///{self.user_dir / 'comfyui.db'}",
                *self.extra_args]

    def start(self) -> ComfyServer:
        if self.running:
            raise RuntimeError(f"ComfyUI already running (pid {self.pid})")
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== nodeloom: starting {' '.join(self.command())}\n".encode())
            log.flush()
            child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"}
            self._proc = subprocess.Popen(self.command(), cwd=self.env.source, env=child_env,
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          preexec_fn=_die_with_parent)
        _live.add(self)
        try:
            self._wait_ready(t0 + self.start_timeout)
        except BaseException:
            self.kill()
            raise
        self.started_in = time.monotonic() - t0
        return self

    def _wait_ready(self, deadline: float) -> None:
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                proc = self._proc
                assert proc is not None
                if proc.poll() is not None:
                    raise ComfyStartError(f"ComfyUI exited with {proc.returncode} while starting on port {self.port}"
                                          f"\n--- {self.log_path} (tail) ---\n{self.log_tail()}")
                try:
                    if client.get(self.url + "/system_stats").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ComfyStartError(f"ComfyUI did not answer /system_stats within {self.start_timeout:.0f} s"
                                          f"\n--- {self.log_path} (tail) ---\n{self.log_tail()}")
                time.sleep(0.25)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _live.discard(self)

    def kill(self) -> None:
        """SIGKILL: ComfyUI dies as in a crash (queue and history lost)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        _live.discard(self)

    def restart(self) -> ComfyServer:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("ComfyUI not started")
        return self._proc.pid

    # --- helpers -----------------------------------------------------------------------------------------------
    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)

    def log_tail(self, lines: int = 60) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                data = f.read()
        except OSError:
            return "(no log)"
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def __enter__(self) -> ComfyServer:
        return self if self.running else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ComfyServer({self.url}, pid={self._proc.pid if self._proc else None}, root={self.root})"


def wait_for_pool(client: httpx.Client, node_type: str = "comfyui.ImageInvert", timeout: float = 120) -> None:
    """Until the nodeloom server behind `client` offers `node_type` from a healthy server of its ComfyUI pool (its
    worker checks the pool when it starts)."""
    deadline = time.monotonic() + timeout
    while not client.get(f"/api/v1/nodes/{node_type}").json().get("available"):
        assert time.monotonic() < deadline, f"the pool never offered {node_type}"
        time.sleep(0.2)
