"""Two API processes and two Celery workers on PostgreSQL + Redis: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.scale.conftest import Cluster

pytestmark = pytest.mark.slow


def counting_graph(path: Path, delay: float) -> dict[str, Any]:
    return {"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
        {"id": "count", "type": "test.count", "params": {"path": str(path)},
         "inputs": {"value": {"from": "p", "output": "text"}}},
        {"id": "wait", "type": "util.delay", "params": {"seconds": delay},
         "inputs": {"value": {"from": "count", "output": "value"}}},
        {"id": "out", "type": "output.json", "params": {"name": "v"}, "inputs": {"value": {"from": "wait", "output": "value"}}},
    ]}


def setup_workflow(cluster: Cluster, graph: dict[str, Any]) -> tuple[str, str]:
    key = json.loads(cluster.cli("accounts", "create", "--name", "scale", "--plan", "enterprise", "--credits",
                                 "100000", "--json").strip().splitlines()[-1])["apiKey"]
    with httpx.Client(base_url=cluster.apis[0], headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        wid = c.post("/api/v1/workflows", json={"name": "scale", "graph": graph}).json()["id"]
        assert c.post(f"/api/v1/workflows/{wid}/publish").status_code == 201
    return key, wid


def wait_all(clients: list[httpx.Client], ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.time() + timeout
    pending = set(ids)
    while pending:
        assert time.time() < deadline, f"{len(pending)} executions never finished"
        listed = clients[0].get("/api/v1/workflows/executions", params={"status": "COMPLETED", "limit": 100}).json()
        for i in list(pending)[:50]:
            if clients[0].get(f"/api/v1/workflows/executions/{i}/poll").json()["status"] in (
                    "COMPLETED", "FAILED", "CANCELLED"):
                pending.discard(i)
        del listed
        time.sleep(0.2)
    return [clients[0].get(f"/api/v1/workflows/executions/{i}/poll").json() for i in ids]


def test_300_executions_across_two_apis_and_two_workers(cluster: Cluster, tmp_path: Path) -> None:
    cluster.api()
    cluster.api()
    cluster.worker()
    cluster.worker()
    counter = tmp_path / "runs.txt"
    key, wid = setup_workflow(cluster, counting_graph(counter, 0.0))
    clients = [httpx.Client(base_url=u, headers={"Authorization": f"Bearer {key}"}, timeout=30) for u in cluster.apis]
    ids: list[str] = []
    for i in range(300):
        r = clients[i % 2].post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"p": str(i)}})
        assert r.status_code == 202, r.text
        ids.append(r.json()["executionId"])
    results = wait_all(clients, ids, timeout=240)
    assert all(r["status"] == "COMPLETED" for r in results), [r for r in results if r["status"] != "COMPLETED"][:3]
    assert [r["outputs"]["v"] for r in results] == [str(i) for i in range(300)]
    runs = Counter(counter.read_text().split())
    assert set(runs) == set(ids) and set(runs.values()) == {1}  # none lost, none run twice
    # both workers took part
    logs = [(tmp_path / f"worker{n}.log").read_text(errors="replace") for n in range(2)]
    assert all("nodeloom.execute" in log for log in logs)


def test_killed_worker_hands_its_executions_to_the_other(cluster: Cluster, tmp_path: Path) -> None:
    cluster.api()
    victim = cluster.worker(concurrency=4)
    counter = tmp_path / "runs.txt"
    key, wid = setup_workflow(cluster, counting_graph(counter, 4.0))
    client = httpx.Client(base_url=cluster.apis[0], headers={"Authorization": f"Bearer {key}"}, timeout=30)
    ids = [client.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"p": str(i)}}).json()["executionId"]
           for i in range(4)]
    deadline = time.time() + 60

    def counted() -> bool:  # the counting node's completion is committed in all four (not only its file written)
        return all(client.get(f"/api/v1/workflows/executions/{eid}/poll").json()["nodes"]["count"]["status"]
                   == "COMPLETED" for eid in ids)

    while not counted():  # all four are past their first node
        assert time.time() < deadline
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    cluster.worker(concurrency=4)
    results = wait_all([client], ids, timeout=120)
    assert [r["status"] for r in results] == ["COMPLETED"] * 4
    assert [r["outputs"]["v"] for r in results] == ["0", "1", "2", "3"]
    runs = Counter(counter.read_text().split())
    assert set(runs.values()) == {1}  # resumed from the completed node: it never ran twice
    for r in results:
        assert r["nodes"]["count"]["status"] == "COMPLETED"
        assert r["creditsUsed"] == 1.0 and r["nodes"]["count"]["credits"] == 1.0  # charged once
    assert client.get("/api/v1/account").json()["credits"] == 100000 - 4


def test_rate_limits_hold_across_both_api_processes(cluster: Cluster) -> None:
    a = cluster.api()
    b = cluster.api()
    key = json.loads(cluster.cli("accounts", "create", "--name", "free", "--plan", "free", "--json")
                     .strip().splitlines()[-1])["apiKey"]
    headers = {"Authorization": f"Bearer {key}"}
    codes = [httpx.get(f"{(a, b)[i % 2]}/api/v1/workflows", headers=headers).status_code for i in range(14)]
    assert codes[:10] == [200] * 10  # the free plan's 10 requests a minute, shared by both processes
    assert codes[10:] == [429] * 4
    r = httpx.get(f"{b}/api/v1/workflows", headers=headers)
    assert r.headers["x-ratelimit-limit"] == "10" and r.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(r.headers["retry-after"]) <= 60


def test_sse_on_one_api_sees_events_from_a_worker(cluster: Cluster, tmp_path: Path) -> None:
    a = cluster.api()
    b = cluster.api()
    cluster.worker()
    key, wid = setup_workflow(cluster, counting_graph(tmp_path / "runs.txt", 1.5))
    headers = {"Authorization": f"Bearer {key}"}
    eid = httpx.post(f"{a}/api/v1/workflows/{wid}/execute", json={}, headers=headers).json()["executionId"]
    seen: list[tuple[float, str]] = []

    def listen() -> None:
        with httpx.stream("GET", f"{b}/api/v1/workflows/executions/{eid}/events", headers=headers, timeout=60) as r:
            for line in r.iter_lines():
                if line.startswith("event: "):
                    seen.append((time.time(), line[7:]))

    t = threading.Thread(target=listen)
    t.start()
    t.join(timeout=90)
    assert seen and seen[-1][1] == "execution.completed"
    assert "node.progress" in [e for _, e in seen]
    final = httpx.get(f"{a}/api/v1/workflows/executions/{eid}/poll", headers=headers).json()
    assert final["status"] == "COMPLETED"
