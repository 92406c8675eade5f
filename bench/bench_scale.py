"""Embedded SQLite vs PostgreSQL + Celery (Redis broker): submit latency and sustained executions/s.

Run: .venv/bin/python bench/bench_scale.py   (needs the local PostgreSQL and Redis; not part of `make test`)
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import LIFTED, ROOT, BenchServer  # noqa: E402
from bench.bench_engine import THREE_NODE, drain, pct  # noqa: E402


async def measure(label: str, srv: BenchServer, n: int = 400) -> tuple[float, float, float]:
    async with httpx.AsyncClient(base_url=srv.url, headers={"Authorization": f"Bearer {srv.key}"}, timeout=120) as c:
        wid = (await c.post("/api/v1/workflows", json={"name": "bench", "graph": THREE_NODE})).json()["id"]
        await c.post(f"/api/v1/workflows/{wid}/publish")
        lat = []
        for i in range(100):
            t0 = time.perf_counter()
            r = await c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": str(i)}})
            lat.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 202, r.text
        await drain(c)
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem:
                r = await c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": str(i)}})
                assert r.status_code == 202, r.text

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        await drain(c)
        rate = n / (time.perf_counter() - t0)
    p50, p99 = statistics.median(lat), pct(lat, 99)
    print(f"{label:<34} submit p50 {p50:6.2f} ms  p99 {p99:6.2f} ms   sustained {rate:6.0f} executions/s")
    return p50, p99, rate


def pg_database() -> str:
    import psycopg

    name = "nl_bench_" + secrets.token_hex(4)
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


async def main() -> None:
    print("3-node text workflow; 100 sequential submits, then 400 from 32 concurrent clients\n")
    embedded = BenchServer(NODELOOM_PLANS=LIFTED)
    try:
        await measure("embedded (SQLite, in-process)", embedded)
    finally:
        embedded.close()
    url = pg_database()
    env = {"NODELOOM_PLANS": LIFTED, "NODELOOM_DATABASE_URL": url, "NODELOOM_QUEUE": "celery",
           "NODELOOM_BROKER_URL": "redis://127.0.0.1:6379/14", "NODELOOM_REDIS_URL": "redis://127.0.0.1:6379/14"}
    import redis

    redis.Redis.from_url(env["NODELOOM_BROKER_URL"]).flushdb()
    scale = BenchServer(**env)
    workers = [subprocess.Popen([sys.executable, "-m", "nodeloom.cli", "worker", "--concurrency", "8"],
                                env={**scale.env, "NODELOOM_DATA_DIR": str(scale.data / f"w{i}")}, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(2)]
    try:
        time.sleep(3)
        await measure("PostgreSQL + Celery (2 workers)", scale)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)
        scale.close()


if __name__ == "__main__":
    asyncio.run(main())
