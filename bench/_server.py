"""Start a real `nodeloom serve` process for benchmarks, with a fresh data dir and an account."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
#: benchmarks measure the machinery, not the plan limits: the bench account's plan allows everything
LIFTED = json.dumps({"enterprise": {"requests_per_minute": 10_000_000, "executions_per_minute": 10_000_000,
                                    "concurrency": 100_000}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchServer:
    def __init__(self, **env: str):
        self.data = Path(tempfile.mkdtemp(prefix="nodeloom-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "NODELOOM_DATA_DIR": str(self.data), "NODELOOM_SECRET_KEY": "bench-secret-0123456789",
                    "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "NODELOOM_PLANS": LIFTED, **env}
        out = subprocess.run([sys.executable, "-m", "nodeloom.cli", "accounts", "create", "--name", "bench",
                              "--plan", "enterprise", "--credits", "1000000", "--json"], env=self.env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
        self.key = json.loads(out.stdout.strip().splitlines()[-1])["apiKey"]
        self.proc = subprocess.Popen([sys.executable, "-m", "nodeloom.cli", "serve", "--port", str(self.port)],
                                     env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("bench server did not start")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
