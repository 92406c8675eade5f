"""Test support: a real server over real HTTP, test factories, service guards for CI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from nodeloom.api import create_app
from nodeloom.compose import build
from nodeloom.settings import Settings
from nodeloom.types import ALL_SCOPES

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """create_app served by uvicorn in a background thread, on an ephemeral port."""

    def __init__(self, settings: Settings, **build_kwargs: Any):
        self.settings = settings
        self.services = build(settings, migrate=True, **build_kwargs)
        self.app = create_app(settings, services=self.services)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def account(self, *, plan: str = "pro", credits: float = 1000, scopes: list[str] | None = None,
                name: str = "Test") -> tuple[str, str]:
        """make_account(): returns (account_id, api key with the given scopes — all by default)."""
        acct = self.services.accounts.create_account(name=name, plan=plan, credits=credits)
        _row, key = self.services.accounts.create_key(account_id=acct.id, name="test",
                                                     scopes=scopes or list(ALL_SCOPES))
        return acct.id, key

    def key(self, account_id: str, scopes: list[str]) -> str:
        return self.services.accounts.create_key(account_id=account_id, name="scoped", scopes=scopes)[1]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        environment="test", data_dir=tmp_path / "data", secret_key="test-secret-key-0123456789",
        node_packs=["tests.support.nodes"], lease_seconds=3.0, heartbeat_seconds=0.5, poll_interval_seconds=0.05,
        process_pool_size=1, allow_private_urls=False,
        # tests poll every 50 ms: count requests (headers) but refuse none; tests/platform turns them on
        rate_limits_enabled=False)
    base.update(overrides)
    return Settings(**base)


def text_graph(template: str = "Hello {{ text }}!") -> dict[str, Any]:
    return {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "world"}},
        {"id": "tpl", "type": "text.template", "inputs": {"text": {"from": "prompt", "output": "text"}},
         "params": {"template": template}},
        {"id": "out", "type": "output.text", "inputs": {"text": {"from": "tpl", "output": "text"}},
         "params": {"name": "greeting"}},
    ]}


def delay_graph(seconds: float = 2.0) -> dict[str, Any]:
    return {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "x"}},
        {"id": "wait", "type": "util.delay", "inputs": {"value": {"from": "prompt", "output": "text"}},
         "params": {"seconds": seconds}},
        {"id": "out", "type": "output.json", "inputs": {"value": {"from": "wait", "output": "value"}},
         "params": {"name": "value"}},
    ]}


def publish(client: httpx.Client, graph: dict[str, Any], name: str = "wf") -> str:
    r = client.post("/api/v1/workflows", json={"name": name, "graph": graph})
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    r = client.post(f"/api/v1/workflows/{wid}/publish")
    assert r.status_code == 201, r.text
    return wid


def wait_status(client: httpx.Client, execution_id: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        body = client.get(f"/api/v1/workflows/executions/{execution_id}/poll").json()
        if body.get("status") in statuses:
            return body
        if time.time() > deadline:
            raise AssertionError(f"execution {execution_id} stuck in {body.get('status')}: {body}")
        time.sleep(0.05)


def run_to_end(client: httpx.Client, workflow_id: str, inputs: dict[str, Any] | None = None,
               **body: Any) -> dict[str, Any]:
    r = client.post(f"/api/v1/workflows/{workflow_id}/execute", json={"inputs": inputs or {}, **body})
    assert r.status_code == 202, r.text
    return wait_status(client, r.json()["executionId"], {"COMPLETED", "FAILED", "CANCELLED"})


def require_service(name: str, host: str, port: int) -> None:
    """Tests that need PostgreSQL/Redis/RabbitMQ fail in CI when the service is missing, skip elsewhere."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError:
        if IN_CI:
            pytest.fail(f"{name} is not reachable at {host}:{port} (required in CI)")
        pytest.skip(f"{name} not reachable at {host}:{port}")


def spawn_server(data_dir: Path, port: int, env_extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A real `nodeloom serve` process (for crash tests)."""
    env = {**os.environ, "NODELOOM_DATA_DIR": str(data_dir), "NODELOOM_SECRET_KEY": "test-secret-key-0123456789",
           "NODELOOM_NODE_PACKS": "tests.support.nodes", "NODELOOM_LEASE_SECONDS": "2",
           "NODELOOM_HEARTBEAT_SECONDS": "0.5", "NODELOOM_POLL_INTERVAL_SECONDS": "0.05",
           "NODELOOM_PROCESS_POOL_SIZE": "0", "NODELOOM_RATE_LIMITS_ENABLED": "false", "PYTHONPATH": str(ROOT),
           # the loop watchdog (a worker whose loop stalls past lease − heartbeat exits) would fire on a loaded test
           # machine with these short leases; tests/platform/test_poison_work.py turns it on where it is the subject
           "NODELOOM_LOOP_WATCHDOG_SECONDS": "0",
           **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "nodeloom.cli", "serve", "--port", str(port)], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server at {url} did not come up")


def cli_account(data_dir: Path, *, name: str = "test", plan: str = "enterprise", credits: float = 100) -> str:
    """Create an account with the real CLI (`nodeloom accounts create --json`) against a data dir; its API key."""
    import json

    env = {**os.environ, "NODELOOM_DATA_DIR": str(data_dir), "NODELOOM_SECRET_KEY": "test-secret-key-0123456789",
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "nodeloom.cli", "accounts", "create", "--name", name, "--plan", plan,
                          "--credits", str(credits), "--json"], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return str(json.loads(out.stdout.strip().splitlines()[-1])["apiKey"])
