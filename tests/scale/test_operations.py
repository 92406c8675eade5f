"""Operations: PostgreSQL end to end, /metrics, /readyz, JSON logs, `nodeloom db copy`."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from tests.support.server import ROOT, publish, run_to_end, text_graph, wait_status


def test_same_api_on_postgresql(make_server: Any, pg_url: str) -> None:
    server = make_server(database_url=pg_url, worker_concurrency=4)
    _a, key = server.account()
    with server.client(key) as c:
        wid = publish(c, text_graph())
        ids = [c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": str(i)}}).json()["executionId"]
               for i in range(12)]
        results = [wait_status(c, i, {"COMPLETED", "FAILED"}) for i in ids]
        assert [r["outputs"]["greeting"] for r in results] == [f"Hello {i}!" for i in range(12)]
        page = c.get("/api/v1/workflows/executions", params={"limit": 5}).json()
        assert len(page["data"]) == 5 and page["nextCursor"]
        assert c.get("/api/v1/workflows", params={"q": "WF"}).json()["data"][0]["id"] == wid


def test_claims_never_collide_on_postgresql(pg_url: str) -> None:
    """Many threads claiming at once (FOR UPDATE SKIP LOCKED): every job handed out exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    from nodeloom.clock import SystemClock
    from nodeloom.queue.sql import SqlQueue
    from nodeloom.storage.db import Database
    from nodeloom.storage.migrate import upgrade

    upgrade(pg_url)
    db = Database(pg_url)
    q = SqlQueue(db, clock=SystemClock(), lease_seconds=30)
    with db.write() as s:
        for i in range(200):
            q.enqueue(s, execution_id=f"ex_{i:04d}", account_id="acct_x", queue="cpu")

    def drain(worker: int) -> list[str]:
        got = []
        while (claim := q.claim(worker_id=f"w{worker}", queues=("cpu",))) is not None:
            got.append(claim.execution_id)
        return got

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(drain, range(8)))
    claimed = [e for r in results for e in r]
    assert len(claimed) == 200 and len(set(claimed)) == 200
    assert sum(1 for r in results if r) > 1  # several workers took part
    db.dispose()


def test_metrics_and_readyz(server: Any) -> None:
    _a, key = server.account()
    with server.client(key) as c:
        wid = publish(c, text_graph())
        run_to_end(c, wid)
        run_to_end(c, publish(c, {"nodes": [{"id": "f", "type": "test.fail"}]}))
    text = httpx.get(server.url + "/metrics").text
    assert 'nodeloom_executions{status="COMPLETED"} 1.0' in text
    assert 'nodeloom_executions{status="FAILED"} 1.0' in text
    assert 'nodeloom_node_duration_seconds_count{node_type="text.template"} 1.0' in text
    assert 'nodeloom_nodes_total{node_type="test.fail",outcome="failed"} 1.0' in text
    assert "nodeloom_queue_depth" in text
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "queue": "ok", "storage": "ok"}


def test_readyz_reports_an_unreachable_broker(make_server: Any) -> None:
    server = make_server(queue="celery", broker_url="redis://127.0.0.1:1/0")
    r = httpx.get(server.url + "/readyz", timeout=30)
    assert r.status_code == 503 and r.json()["checks"]["broker"].startswith("error")


def test_json_logs_carry_request_and_execution_ids(capfd: Any) -> None:
    from nodeloom.logs import JsonFormatter, configure_logging, execution_id_var, request_id_var

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("json", "INFO")
        request_id_var.set("req_abc")
        execution_id_var.set("ex_123")
        logging.getLogger("nodeloom.test").info("hello %s", "world")
        line = capfd.readouterr().err.strip().splitlines()[-1]
        entry = json.loads(line)
        assert entry["message"] == "hello world" and entry["level"] == "info"
        assert entry["request_id"] == "req_abc" and entry["execution_id"] == "ex_123"
        assert entry["time"].endswith("Z")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
        request_id_var.set(None)
        execution_id_var.set(None)


def test_db_copy_moves_an_embedded_install_to_postgresql(make_server: Any, pg_url: str, tmp_path: Path) -> None:
    source = make_server()
    _a, key = source.account()
    with source.client(key) as c:
        wid = publish(c, text_graph())
        done = run_to_end(c, wid, {"prompt": "copy"})
        buf = io.BytesIO()
        Image.new("RGB", (10, 10), (1, 2, 3)).save(buf, "PNG")
        up = c.post("/api/v1/uploads", files={"file": ("a.png", buf.getvalue(), "image/png")}).json()
        wid2 = publish(c, {"nodes": [{"id": "i", "type": "input.image", "params": {"name": "image"}},
                                     {"id": "o", "type": "output.image", "params": {"name": "img"},
                                      "inputs": {"image": {"from": "i", "output": "image"}}}]})
        img_done = run_to_end(c, wid2, {"image": up["fileId"]})
    source.stop()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NODELOOM_DATA_DIR": str(source.settings.data_dir)}
    out = subprocess.run([sys.executable, "-m", "nodeloom.cli", "db", "copy", "--from",
                          source.settings.resolved_database_url, "--to", pg_url], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    again = subprocess.run([sys.executable, "-m", "nodeloom.cli", "db", "copy", "--from",
                            source.settings.resolved_database_url, "--to", pg_url], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "not empty" in again.stderr
    # a server on PostgreSQL with the same secret and files sees everything, and keeps working
    target = make_server(database_url=pg_url, data_dir=source.settings.data_dir)
    with target.client(key) as c:
        assert c.get(f"/api/v1/workflows/{wid}").json()["publishedVersion"] == 1
        poll = c.get(f"/api/v1/workflows/executions/{done['executionId']}/poll").json()
        assert poll["outputs"] == {"greeting": "Hello copy!"}
        img = c.get(f"/api/v1/workflows/executions/{img_done['executionId']}/poll").json()
        assert httpx.get(img["outputs"]["img"]["url"]).status_code == 200
        assert run_to_end(c, wid, {"prompt": "after"})["outputs"] == {"greeting": "Hello after!"}


def test_webhook_callbacks_on_postgresql(make_server: Any, pg_url: str) -> None:
    """The delivery sender claims outbox rows with SKIP LOCKED on PostgreSQL; retries keep their webhook-id."""
    from tests.webhooks.receiver import Receiver

    receiver = Receiver().start()
    try:
        server = make_server(database_url=pg_url, allow_private_urls=True, webhook_retry_schedule="0.2,0.2,0.2",
                             webhook_poll_interval_seconds=0.05, webhook_retry_jitter=0)
        _a, key = server.account()
        receiver.answer(500)
        with server.client(key) as c:
            wid = publish(c, text_graph())
            r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "pg"},
                                                                  "webhookUrl": receiver.url})
            assert r.status_code == 202, r.text
            got = receiver.wait_for(2, timeout=30)
        assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"]
        body = json.loads(got[1].body)
        assert body["type"] == "execution.completed" and body["outputs"] == {"greeting": "Hello pg!"}
    finally:
        receiver.stop()
