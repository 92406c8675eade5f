"""Fixtures for scale-out tests: a fresh PostgreSQL database, a Redis database, process clusters."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.server import ROOT, free_port, require_service, wait_http

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    name = "nl_" + secrets.token_hex(6)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def redis_url() -> Iterator[str]:
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    db = 8 + secrets.randbelow(7)
    url = f"redis://127.0.0.1:6379/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


class Cluster:
    """API processes and Celery workers sharing PostgreSQL and a broker."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        self.tmp = tmp
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "NODELOOM_SECRET_KEY": "scale-secret-0123456789",
                    "NODELOOM_NODE_PACKS": "tests.support.nodes", "NODELOOM_LEASE_SECONDS": "2",
                    "NODELOOM_HEARTBEAT_SECONDS": "0.5", "NODELOOM_POLL_INTERVAL_SECONDS": "0.1",
                    "NODELOOM_PROCESS_POOL_SIZE": "0",
                    # the load these tests make is far above the default plans: lift the enterprise plan
                    "NODELOOM_PLANS": json.dumps({"enterprise": {"requests_per_minute": 1_000_000,
                                                                 "executions_per_minute": 1_000_000,
                                                                 "concurrency": 1000}}), **env}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.apis: list[str] = []
        self.workers: list[subprocess.Popen[bytes]] = []

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "nodeloom.cli", *args], env={**self.env,
                             "NODELOOM_DATA_DIR": str(self.tmp / "cli")}, cwd=ROOT, capture_output=True, text=True,
                             check=True, timeout=120)
        return out.stdout

    def api(self) -> str:
        port = free_port()
        n = len(self.apis)
        proc = subprocess.Popen([sys.executable, "-m", "nodeloom.cli", "serve", "--port", str(port)],
                                env={**self.env, "NODELOOM_DATA_DIR": str(self.tmp / f"api{n}")}, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=open(self.tmp / f"api{n}.log", "wb"))
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url, timeout=60)
        self.apis.append(url)
        return url

    def worker(self, concurrency: int = 4, queues: str = "cpu,io,gpu") -> subprocess.Popen[bytes]:
        n = len(self.workers)
        proc = subprocess.Popen([sys.executable, "-m", "nodeloom.cli", "worker", "--queues", queues,
                                 "--concurrency", str(concurrency)],
                                env={**self.env, "NODELOOM_DATA_DIR": str(self.tmp / f"worker{n}")}, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=open(self.tmp / f"worker{n}.log", "wb"))
        self.procs.append(proc)
        self.workers.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[Cluster]:
    from nodeloom.storage.migrate import upgrade

    upgrade(pg_url)
    c = Cluster(tmp_path, {"NODELOOM_DATABASE_URL": pg_url, "NODELOOM_QUEUE": "celery",
                           "NODELOOM_BROKER_URL": redis_url, "NODELOOM_REDIS_URL": redis_url})
    yield c
    c.close()
