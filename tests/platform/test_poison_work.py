"""Poison work ends: an execution whose node freezes its worker's event loop ends FAILED after the configured
attempts, and never runs twice at once — the loop watchdog ends the frozen process before its lease runs out,
so the next attempt starts only once the old one is gone."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.support.server import cli_account, free_port, make_settings, spawn_server, wait_http

from nodeloom.compose import build
from nodeloom.settings import Settings
from nodeloom.worker import LoopWatchdog


def test_the_watchdog_fires_when_the_loop_freezes_while_armed() -> None:
    fired = threading.Event()
    stalls: list[float] = []

    def on_stall(stalled: float) -> None:
        stalls.append(stalled)
        fired.set()

    async def go() -> bool:
        dog = LoopWatchdog(0.2, armed=lambda: True, on_stall=on_stall)
        stop = asyncio.Event()
        task = asyncio.create_task(dog.run(stop))
        await asyncio.sleep(0)  # the watchdog starts watching
        frozen = fired.wait(timeout=60)  # blocks the loop itself: only the watchdog's thread can end this
        stop.set()
        await task
        return frozen

    assert asyncio.run(go())
    assert stalls and stalls[0] > 0.2


def test_an_unarmed_watchdog_lets_an_idle_worker_stall() -> None:
    calls: list[float] = []

    async def go() -> None:
        dog = LoopWatchdog(0.05, armed=lambda: False, on_stall=calls.append)
        stop = asyncio.Event()
        task = asyncio.create_task(dog.run(stop))
        await asyncio.sleep(0)
        time.sleep(0.5)  # a stall with no leases held: nothing to protect
        stop.set()
        await task

    asyncio.run(go())
    assert calls == []


def test_the_watchdog_is_derived_from_the_lease_and_wired_into_the_worker(tmp_path: Path) -> None:
    derived = Settings(lease_seconds=30, heartbeat_seconds=10)
    assert 0 < derived.watchdog_seconds() < 30 - 10  # gone before the lease it can no longer extend runs out
    assert make_settings(tmp_path).watchdog_seconds() == 0  # in-process test servers: off
    services = build(make_settings(tmp_path, loop_watchdog_seconds=4.0, embedded_workers=False), migrate=True)
    try:
        worker = services.worker()
        assert worker.watchdog is not None and worker.watchdog.stall_s == 4.0
    finally:
        services.db.dispose()


@pytest.mark.slow
def test_a_node_that_freezes_its_worker_ends_failed_after_the_attempts_and_never_runs_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = cli_account(data, name="poison")
    starts = tmp_path / "starts.txt"
    graph = {"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "v"}},
        {"id": "freeze", "type": "test.freeze", "params": {"path": str(starts)},
         "inputs": {"value": {"from": "p", "output": "text"}}},
        {"id": "out", "type": "output.json", "params": {"name": "result"},
         "inputs": {"value": {"from": "freeze", "output": "value"}}},
    ]}
    env = {"NODELOOM_NODE_PACKS": "tests.support.nodes,tests.platform.poison_nodes", "NODELOOM_MAX_ATTEMPTS": "2",
           "NODELOOM_LOOP_WATCHDOG_SECONDS": "1"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    execution_id = ""
    exits = []
    for attempt in range(3):
        proc = spawn_server(data, port, env)
        try:
            if attempt == 0:
                wait_http(url)
                c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
                wid = c.post("/api/v1/workflows", json={"name": "poison", "graph": graph}).json()["id"]
                assert c.post(f"/api/v1/workflows/{wid}/publish").status_code == 201
                execution_id = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}}).json()["executionId"]
            if attempt < 2:
                # the node freezes the loop (on a restart, as soon as the job is claimed again); the watchdog
                # ends the process — nothing here kills it
                exits.append(proc.wait(timeout=120))
                continue
            wait_http(url)  # the third claim is past the attempts: it ends the execution without running it
            c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            deadline = time.time() + 60
            while (body := c.get(f"/api/v1/workflows/executions/{execution_id}/poll").json())["status"] != "FAILED":
                assert body["status"] in ("QUEUED", "RUNNING"), body
                assert time.time() < deadline, body
                time.sleep(0.1)
            assert body["error"]["code"] == "too_many_attempts"
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    assert exits == [75, 75]  # each frozen server ended itself
    pids = starts.read_text().split()
    assert len(pids) == 2 and len(set(pids)) == 2  # one start per attempt, each in a process that was gone
