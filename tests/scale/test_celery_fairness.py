"""The Celery worker against real Redis and PostgreSQL: claims rotate between accounts as on the `sql` queue (one
account's backlog in the broker does not starve another account's trivial run), a sleeping node (`util.delay`)
lends its Celery slot back, and a frozen event loop ends the worker (the loop watchdog). Assertions are on order
and state, never on durations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.scale.conftest import Cluster
from tests.support.server import wait_status

pytestmark = pytest.mark.slow


def account(cluster: Cluster, name: str) -> httpx.Client:
    key = json.loads(cluster.cli("accounts", "create", "--name", name, "--plan", "enterprise", "--credits", "1000",
                                 "--json").strip().splitlines()[-1])["apiKey"]
    return httpx.Client(base_url=cluster.apis[0], headers={"Authorization": f"Bearer {key}"}, timeout=30)


def publish(client: httpx.Client, graph: dict[str, Any]) -> str:
    r = client.post("/api/v1/workflows", json={"name": "fair", "graph": graph})
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    assert client.post(f"/api/v1/workflows/{wid}/publish").status_code == 201
    return str(wid)


def submit(client: httpx.Client, workflow_id: str) -> str:
    r = client.post(f"/api/v1/workflows/{workflow_id}/execute", json={"inputs": {}})
    assert r.status_code == 202, r.text
    return str(r.json()["executionId"])


def status(client: httpx.Client, execution_id: str) -> str:
    return str(client.get(f"/api/v1/workflows/executions/{execution_id}/poll").json()["status"])


def one_node_graph(node: dict[str, Any]) -> dict[str, Any]:
    return {"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
        {"id": "n", **node, "inputs": {"value": {"from": "p", "output": "text"}}},
        {"id": "out", "type": "output.json", "params": {"name": "value"}, "inputs": {"value": {"from": "n", "output": "value"}}},
    ]}


def trivial_graph() -> dict[str, Any]:
    return {"nodes": [
        {"id": "p", "type": "input.text", "params": {"name": "p", "default": "small"}},
        {"id": "out", "type": "output.json", "params": {"name": "value"}, "inputs": {"value": {"from": "p", "output": "text"}}},
    ]}


def cancel_all(client: httpx.Client, ids: list[str]) -> None:
    for eid in ids:
        client.post(f"/api/v1/workflows/executions/{eid}/cancel")
    for eid in ids:
        wait_status(client, eid, {"CANCELLED", "COMPLETED", "FAILED"}, timeout=60)


def test_a_trivial_run_passes_another_accounts_backlog_in_the_broker(cluster: Cluster) -> None:
    cluster.api()
    cluster.worker(concurrency=1)
    with account(cluster, "big") as big, account(cluster, "small") as small:
        # test.sleep waits without lending its slot: each holds the worker's only slot for its whole run
        backlog_wf = publish(big, one_node_graph({"type": "test.sleep", "params": {"seconds": 3.0}}))
        trivial_wf = publish(small, trivial_graph())
        backlog = [submit(big, backlog_wf) for _ in range(3)]
        wait_status(big, backlog[0], {"RUNNING"}, timeout=60)
        trivial = submit(small, trivial_wf)  # its message is behind the backlog's two in the broker
        done = wait_status(small, trivial, {"COMPLETED"}, timeout=60)
        assert done["outputs"]["value"] == "small"
        # first in, first out would have run the whole backlog first: the small account took the next slot
        assert status(big, backlog[2]) == "QUEUED"
        first = wait_status(big, backlog[1], {"RUNNING", "COMPLETED"}, timeout=60)
        assert first["startedAt"] >= done["startedAt"]
        # the backlog's messages were not lost on the way: it all runs, each once
        results = [wait_status(big, eid, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=90) for eid in backlog]
        assert [r["status"] for r in results] == ["COMPLETED"] * 3


def test_a_sleeping_node_lends_its_celery_slot(cluster: Cluster) -> None:
    cluster.api()
    cluster.worker(concurrency=1)
    with account(cluster, "big") as big, account(cluster, "small") as small:
        sleeping_wf = publish(big, one_node_graph({"type": "util.delay", "params": {"seconds": 600}}))
        trivial_wf = publish(small, trivial_graph())
        sleepers = [submit(big, sleeping_wf) for _ in range(2)]
        trivial = submit(small, trivial_wf)
        wait_status(small, trivial, {"COMPLETED"}, timeout=60)
        # one Celery slot, and both long sleepers run beside the trivial run: sleeping lent it back
        for eid in sleepers:
            wait_status(big, eid, {"RUNNING"}, timeout=30)
        assert [status(big, eid) for eid in sleepers] == ["RUNNING", "RUNNING"]
        cancel_all(big, sleepers)  # the lent runs still heart-beat: their cancel requests are noticed
        assert [status(big, eid) for eid in sleepers] == ["CANCELLED", "CANCELLED"]


def test_a_frozen_loop_ends_the_celery_worker(cluster: Cluster, tmp_path: Path) -> None:
    cluster.env["NODELOOM_NODE_PACKS"] = "tests.support.nodes,tests.platform.poison_nodes"
    cluster.env["NODELOOM_LOOP_WATCHDOG_SECONDS"] = "1"
    cluster.api()
    worker = cluster.worker(concurrency=1)
    starts = tmp_path / "starts.txt"
    with account(cluster, "poison") as client:
        wid = publish(client, one_node_graph({"type": "test.freeze", "params": {"path": str(starts)}}))
        eid = submit(client, wid)
        # the node blocks the loop the executions run on: the watchdog ends the process (nothing here kills it)
        assert worker.wait(timeout=120) == 75
        assert len(starts.read_text().split()) == 1
        assert status(client, eid) in ("QUEUED", "RUNNING")  # not run twice meanwhile: no other worker ran it
        client.post(f"/api/v1/workflows/executions/{eid}/cancel")
        cluster.worker(concurrency=1)  # its sweeper hands the dead worker's job out again; the claim ends it
        assert wait_status(client, eid, {"CANCELLED", "FAILED", "COMPLETED"}, timeout=60)["status"] == "CANCELLED"
        assert len(starts.read_text().split()) == 1
