"""A SIGKILL of the server while executions are queued or running loses nothing."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from tests.support.server import cli_account, free_port, spawn_server, wait_http

pytestmark = pytest.mark.slow


def test_sigkill_while_queued_and_running_resumes_from_completed_nodes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = cli_account(data, name="crash")
    counter = tmp_path / "runs.txt"
    graph = {"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "v"}},
        {"id": "first", "type": "test.count", "params": {"path": str(counter)},
         "inputs": {"value": {"from": "p", "output": "text"}}},
        {"id": "slow", "type": "util.delay", "params": {"seconds": 2.5},
         "inputs": {"value": {"from": "first", "output": "value"}}},
        {"id": "out", "type": "output.json", "params": {"name": "result"},
         "inputs": {"value": {"from": "slow", "output": "value"}}},
    ]}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn_server(data, port, {"NODELOOM_WORKER_CONCURRENCY": "2"})
    try:
        wait_http(url)
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        wid = c.post("/api/v1/workflows", json={"name": "crash", "graph": graph}).json()["id"]
        assert c.post(f"/api/v1/workflows/{wid}/publish").status_code == 201
        ids = [c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"p": f"v{i}"}}).json()["executionId"]
               for i in range(4)]
        deadline = time.time() + 20
        while True:  # wait until two run (past their first node) and two wait in the queue
            polls = [c.get(f"/api/v1/workflows/executions/{i}/poll").json() for i in ids]
            running = [p for p in polls if p["status"] == "RUNNING" and p["nodes"]["first"]["status"] == "COMPLETED"]
            if len(running) == 2:
                break
            assert time.time() < deadline, polls
            time.sleep(0.05)
        assert sum(p["status"] == "QUEUED" for p in polls) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    runs_before = counter.read_text().splitlines()
    assert len(runs_before) == 2

    proc = spawn_server(data, port)
    try:
        wait_http(url)
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        deadline = time.time() + 60
        while True:
            polls = [c.get(f"/api/v1/workflows/executions/{i}/poll").json() for i in ids]
            if all(p["status"] == "COMPLETED" for p in polls):
                break
            assert all(p["status"] in ("QUEUED", "RUNNING", "COMPLETED") for p in polls), polls
            assert time.time() < deadline, polls
            time.sleep(0.1)
        assert [p["outputs"]["result"] for p in polls] == ["v0", "v1", "v2", "v3"]
        assert [p["creditsUsed"] for p in polls] == [1.0] * 4  # the priced node: charged once, never twice
        assert c.get("/api/v1/account").json()["credits"] == 100 - 4
        # the two that were running resumed from their completed node: `first` ran once per execution
        runs = counter.read_text().splitlines()
        assert sorted(runs) == sorted(ids)
        events = [e for e in c.get(f"/api/v1/workflows/executions/{running[0]['executionId']}/events").text.split("\n\n")
                  if e.strip()]
        assert sum("event: execution.started" in e for e in events) == 1
        assert events[-1].splitlines()[1] == "event: execution.completed"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
