"""The worker processes of `nodeloom serve --workers N`.

On the embedded default one process answers requests and runs executions, so both share one interpreter lock: a
burst of submissions slows the runs and the runs slow the answers. With `--workers N` the API process runs no
executions; N `nodeloom worker` children (the same settings, the same SQLite file and data directory) do, each on its
own core. They wake each other through the data directory's `run/` sockets (`services.hub.LocalBus`): a submission
wakes the workers at once, and a worker's recorded change wakes the API's `Prefer: wait` requests and event streams.
SQLite's single writer is shared through an flock beside the database file (`storage.db`), so writers of different
processes queue instead of sleeping in SQLite's busy handler.

`WorkerProcesses` starts the children, restarts one that exits (back-off up to 30 s), and stops them when the server
stops (SIGTERM: each hands its running executions back to the queue; SIGKILL after a grace period). A child gets
SIGTERM from the kernel if the server dies without stopping it (PR_SET_PDEATHSIG on Linux). Nothing accepted is lost
either way: a killed worker's claims expire and another worker (or its restart) resumes them.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from nodeloom.services.comfyui.supervisor import die_with_parent

log = logging.getLogger("nodeloom.processes")


class WorkerProcesses:
    """N `nodeloom worker` children, kept running until `stop()`."""

    BACKOFF_MAX_S = 30.0
    #: a child that ran this long before exiting restarts at once (its back-off starts over)
    STEADY_S = 60.0

    def __init__(self, count: int, *, concurrency: int, env: Mapping[str, str],
                 command: Sequence[str] | None = None, check_s: float = 0.5, sockets: Path | None = None):
        self.count = count
        #: the folder of the processes' wake-up sockets: a child that died without closing leaves its own there
        self.sockets = sockets
        self.env = dict(env)
        self.command = list(command or [sys.executable, "-m", "nodeloom.cli", "worker",
                                        "--concurrency", str(concurrency)])
        self.check_s = check_s
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self._started_at = [0.0] * count
        self._backoff = [0.0] * count
        self._restart_at: list[float | None] = [None] * count
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    def start(self) -> None:
        with self._lock:
            for i in range(self.count):
                self._spawn(i)
        self._thread = threading.Thread(target=self._watch, name="nodeloom-workers", daemon=True)
        self._thread.start()
        log.info("started %d worker processes: %s", self.count, self.pids())

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._procs if p is not None and p.poll() is None]

    def _spawn(self, i: int) -> None:
        self._procs[i] = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL,
                                          preexec_fn=die_with_parent)
        self._started_at[i] = time.monotonic()
        self._restart_at[i] = None

    def _watch(self) -> None:
        while not self._stopping.wait(self.check_s):
            with self._lock:
                if self._stopping.is_set():
                    return
                now = time.monotonic()
                for i, proc in enumerate(self._procs):
                    if proc is not None and proc.poll() is None:
                        continue
                    if self._restart_at[i] is None:  # it just exited: when may it start again
                        code = proc.returncode if proc is not None else None
                        ran = now - self._started_at[i]
                        self._backoff[i] = 0.0 if ran >= self.STEADY_S else min(
                            self.BACKOFF_MAX_S, max(0.5, self._backoff[i] * 2))
                        self._restart_at[i] = now + self._backoff[i]
                        log.warning("worker process %s exited (%s) after %.1f s; restarting in %.1f s",
                                    proc.pid if proc is not None else "?", code, ran, self._backoff[i])
                        if proc is not None:
                            self._remove_sockets(proc.pid)
                    restart_at = self._restart_at[i]
                    if restart_at is not None and now >= restart_at:
                        try:
                            self._spawn(i)
                            self.restarts += 1
                        except OSError:
                            log.exception("cannot start a worker process")
                            self._restart_at[i] = now + self.BACKOFF_MAX_S

    def _remove_sockets(self, pid: int) -> None:
        if self.sockets is None:
            return
        for path in self.sockets.glob(f"*-{pid}-*.sock"):
            with contextlib.suppress(OSError):
                path.unlink()

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM every child (each hands its runs back to the queue), SIGKILL those still there after `grace_s`."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            procs = [p for p in self._procs if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker process %s did not stop within %.0f s: killed", proc.pid, grace_s)
                proc.kill()
                proc.wait()
            self._remove_sockets(proc.pid)
