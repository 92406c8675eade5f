"""`nodeloom serve --workers N`: executions run in worker children that the server keeps alive and stops; the
processes wake each other through the data directory's sockets (LocalBus) and share SQLite's writer through an
flock (Database)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from tests.support.server import ROOT, cli_account, free_port, spawn_server, wait_http

from nodeloom.services.hub import LocalBus, LocalBusHub
from nodeloom.storage.db import Database
from nodeloom.storage.migrate import upgrade


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "nodeloom.cli" in (entry / "cmdline").read_text():
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout: float = 30, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_runs_happen_in_worker_children_that_are_restarted_and_stopped_with_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = cli_account(data, name="workers")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn_server(data, port, {"NODELOOM_WORKER_PROCESSES": "2", "NODELOOM_WORKER_CONCURRENCY": "2"})
    workers: set[int] = set()
    try:
        wait_http(url)
        workers = wait_for(lambda: (lambda c: c if len(c) == 2 else None)(children_of(proc.pid)), what="2 workers")
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        pid_graph = {"nodes": [
            {"id": "pid", "type": "test.pid"},
            {"id": "out", "type": "output.json", "params": {"name": "pid"},
             "inputs": {"value": {"from": "pid", "output": "worker"}}}]}
        wid = c.post("/api/v1/workflows", json={"name": "pid", "graph": pid_graph}).json()["id"]
        assert c.post(f"/api/v1/workflows/{wid}/publish").status_code == 201
        r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}}, headers={"Prefer": "wait=30"})
        assert r.status_code == 200, r.text  # the worker's recorded end woke the waiting request
        ran_in = r.json()["outputs"]["pid"]
        assert ran_in in workers and ran_in != proc.pid  # not in the API process

        # a worker killed in the middle of a run: the run completes (its claim expires and is taken again), and the
        # server starts a worker in its place
        slow = {"nodes": [
            {"id": "wait", "type": "test.sleep", "params": {"seconds": 1.5}},
            {"id": "pid", "type": "test.pid", "inputs": {"value": {"from": "wait", "output": "value"}}},
            {"id": "out", "type": "output.json", "params": {"name": "pid"},
             "inputs": {"value": {"from": "pid", "output": "worker"}}}]}
        sid = c.post("/api/v1/workflows", json={"name": "slow", "graph": slow}).json()["id"]
        assert c.post(f"/api/v1/workflows/{sid}/publish").status_code == 201
        eid = c.post(f"/api/v1/workflows/{sid}/execute", json={"inputs": {}}).json()["executionId"]
        wait_for(lambda: c.get(f"/api/v1/workflows/executions/{eid}/poll").json()["nodes"]["wait"]["status"]
                 == "RUNNING", what="the sleep to start")
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(lambda: (lambda c: c if len(c) == 2 and victim not in c else None)(
            children_of(proc.pid)), what="a worker in the killed one's place")
        body = wait_for(lambda: (lambda b: b if b["status"] in ("COMPLETED", "FAILED") else None)(
            c.get(f"/api/v1/workflows/executions/{eid}/poll").json()), timeout=60, what="the run to end")
        assert body["status"] == "COMPLETED", body
        assert body["outputs"]["pid"] in replaced
        workers = replaced
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    # the server stopped its workers with it, and their sockets are gone
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=30, what="the workers to stop")
    assert list((data / "run").glob("*.sock")) == []


SENDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from nodeloom.services.hub import LocalBus, LocalBusHub
    hub = LocalBusHub(LocalBus(Path(sys.argv[1])))
    hub.notify("ex_1", ended=False)  # a worker's progress batch
    hub.notify("ex_1")               # a change that may have ended it
""")


def test_another_process_wakes_the_listeners_its_change_is_for(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    # a socket file nobody reads any more (a process SIGKILLed before it could remove it)
    import socket

    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(folder / "api-1-deadbeef.sock"))
    stale.close()

    async def main() -> None:
        hub = LocalBusHub(LocalBus(folder))
        assert hub.listen()
        try:
            with hub.listening("ex_1", ends_only=True) as ends, hub.listening("ex_1") as every:
                sender = await asyncio.create_subprocess_exec(sys.executable, "-c", SENDER, str(folder), cwd=ROOT)
                assert await sender.wait() == 0
                await asyncio.wait_for(ends.wait(), 10)  # the second datagram
                assert every.is_set()
        finally:
            hub.bus.close()

    asyncio.run(main())
    assert [p.name for p in folder.iterdir()] == []  # ours removed on close, the stale one by the sender


def test_a_progress_datagram_alone_does_not_wake_a_listener_for_the_end(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    progress_only = SENDER.replace('hub.notify("ex_1")               # a change that may have ended it', "")

    async def main() -> None:
        hub = LocalBusHub(LocalBus(folder))
        assert hub.listen()
        try:
            with hub.listening("ex_1", ends_only=True) as ends, hub.listening("ex_1") as every:
                sender = await asyncio.create_subprocess_exec(sys.executable, "-c", progress_only, str(folder),
                                                              cwd=ROOT)
                assert await sender.wait() == 0
                await asyncio.wait_for(every.wait(), 10)
                await asyncio.sleep(0.2)
                assert not ends.is_set()
        finally:
            hub.bus.close()

    asyncio.run(main())
    assert folder.stat().st_mode & 0o777 == 0o700  # made by the bus: other users cannot write to its sockets


HOLDER = textwrap.dedent("""
    import sys, time
    from nodeloom.storage.db import Database
    db = Database(sys.argv[1])
    with db._locked():  # the write lock, without a SQLite transaction: only the flock keeps others out
        print("held", flush=True)
        time.sleep(1.0)
        released = time.time()
    print(released, flush=True)
""")


def test_writers_of_different_processes_queue_on_the_lock_beside_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(url)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        db = Database(url)
        with db.write():
            entered = time.time()
        released = float(holder.stdout.readline())
        assert holder.wait(timeout=30) == 0
        assert entered >= released  # it waited for the other process's writer, not only for SQLite's lock
        assert (tmp_path / "shared.db.write-lock").exists()
        db.dispose()
    finally:
        if holder.poll() is None:
            holder.kill()
