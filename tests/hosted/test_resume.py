"""Never pay twice: a hosted node that had submitted its job polls that job again after a crash."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.hosted.helpers import flux_graph, standin_env, wait_until
from tests.support.server import cli_account, free_port, publish, spawn_server, wait_http, wait_status

from nodeloom.storage.models import Execution, ExecutionNode, Job


def test_a_resumed_node_polls_the_remembered_job_instead_of_submitting(hosted_server, fal_standin, tmp_path: Path):
    # a job this execution had already paid for, before the worker running it died
    submitted = httpx.post(f"{fal_standin.base_url}/fal-ai/flux-2-pro", json={"prompt": "a red fox"},
                           headers={"Authorization": f"Key {fal_standin.key}"})
    request_id = submitted.json()["request_id"]
    fal_standin.behaviour.queue_positions = (1,)

    data_dir = tmp_path / "shared"
    before = hosted_server(data_dir=data_dir, embedded_workers=False)
    _account, key = before.account()
    with before.client(key) as c:
        execution_id = c.post(f"/api/v1/workflows/{publish(c, flux_graph())}/execute",
                              json={"inputs": {}}).json()["executionId"]
    with before.services.db.write() as s:
        row = s.scalar(select(ExecutionNode).where(ExecutionNode.execution_id == execution_id,
                                                   ExecutionNode.node_id == "gen"))
        row.memory = {"vendor_job": {"provider": "fal", "model": "fal-ai/flux-2-pro", "requestId": request_id}}
        row.status = "RUNNING"
        # the state a worker leaves behind when it dies mid-node: its attempt started the execution and
        # holds the job, whose lease has run out
        ex = s.get(Execution, execution_id)
        ex.status, ex.attempts = "RUNNING", 1
        job = s.scalar(select(Job).where(Job.execution_id == execution_id))
        job.state, job.attempts, job.lease_owner, job.lease_expires_at = "claimed", 1, "dead-worker", 0.0
    before.stop()

    after = hosted_server(data_dir=data_dir)
    with after.client(key) as c:
        done = wait_status(c, execution_id, {"COMPLETED", "FAILED", "CANCELLED"})

    assert done["status"] == "COMPLETED", done
    assert [job.request_id for job in fal_standin.submissions] == [request_id]  # nothing new was bought
    assert done["nodes"]["gen"]["outputs"]["vendor"]["requestId"] == request_id


def _remembered(data_dir: Path, execution_id: str) -> dict[str, object] | None:
    with sqlite3.connect(data_dir / "nodeloom.db") as db:
        row = db.execute("SELECT memory FROM execution_nodes WHERE execution_id = ? AND node_id = 'gen'",
                         (execution_id,)).fetchone()
    memory = json.loads(row[0]) if row and row[0] else {}
    return memory.get("vendor_job")


@pytest.mark.slow
def test_sigkill_while_the_vendor_works_resumes_polling_the_same_job(no_provider_env, fal_standin,
                                                                     replicate_standin, openai_standin,
                                                                     gemini_standin, tmp_path: Path):
    fal_standin.behaviour.queue_positions = (4,) * 100_000
    env = standin_env(fal_standin, replicate_standin, openai_standin, gemini_standin)
    data = tmp_path / "data"
    key = cli_account(data)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn_server(data, port, env)
    try:
        wait_http(url)
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        wid = c.post("/api/v1/workflows", json={"name": "hosted", "graph": flux_graph()}).json()["id"]
        assert c.post(f"/api/v1/workflows/{wid}/publish").status_code == 201
        execution_id = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}}).json()["executionId"]
        remembered = wait_until(lambda: _remembered(data, execution_id), what="the job id to be stored")
        wait_until(lambda: fal_standin.submissions[0].polls > 1, what="the job to be polled")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    [job] = fal_standin.submissions
    assert remembered == {"provider": "fal", "model": "fal-ai/flux-2-pro", "requestId": job.request_id}

    fal_standin.behaviour.queue_positions = ()  # the vendor finishes while nobody watches
    proc = spawn_server(data, port, env)
    try:
        wait_http(url)
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        done = wait_status(c, execution_id, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert done["status"] == "COMPLETED", done
    assert [j.request_id for j in fal_standin.submissions] == [job.request_id]  # paid once
    assert done["nodes"]["gen"]["outputs"]["vendor"]["requestId"] == job.request_id
