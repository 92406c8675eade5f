"""Foundation benchmark: engine overhead per node, submit latency, sustained executions/s.

Run: .venv/bin/python bench/bench_engine.py   (not part of `make test`)
Each figure is printed beside a baseline measured in the same run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import BenchServer  # noqa: E402
from nodeloom.engine.context import LocalEnvironment  # noqa: E402
from nodeloom.engine.executor import run  # noqa: E402
from nodeloom.engine.graph import Limits, validate  # noqa: E402
from nodeloom.engine.node import Context, Node  # noqa: E402
from nodeloom.engine.registry import Registry  # noqa: E402
from nodeloom.engine.schema import Port  # noqa: E402


class Noop(Node):
    type = "bench.noop"
    inputs = (Port("value", "any", required=False),)
    outputs = (Port("value", "any"),)

    async def run(self, ctx: Context, value: Any = None) -> dict[str, Any]:
        return {"value": value}


def chain(n: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "n0", "type": "bench.noop"}]
    nodes += [{"id": f"n{i}", "type": "bench.noop", "inputs": {"value": {"from": f"n{i - 1}", "output": "value"}}}
              for i in range(1, n)]
    return {"nodes": nodes}


async def engine_overhead() -> None:
    reg = Registry([Noop])
    print("engine overhead per node (no-op nodes, validate + run, in-process)")
    print(f"{'chain':>8} {'validate µs/node':>18} {'run µs/node':>14} {'baseline µs/node':>18}")
    for n in (10, 100, 1000):
        raw = chain(n)
        reps = max(3, 3000 // n)
        t0 = time.perf_counter()
        for _ in range(reps):
            g = validate(raw, reg, limits=Limits(max_nodes=n))
        t_validate = (time.perf_counter() - t0) / reps / n * 1e6
        env = LocalEnvironment()
        t0 = time.perf_counter()
        for i in range(reps):
            async for _ in run(g, execution_id=f"b{i}", inputs={}, env=env):
                pass
        t_run = (time.perf_counter() - t0) / reps / n * 1e6
        node = Noop()
        t0 = time.perf_counter()
        for _ in range(reps):
            v = None
            for _ in range(n):
                v = (await node.run(None, value=v))["value"]  # type: ignore[arg-type]
        t_base = (time.perf_counter() - t0) / reps / n * 1e6
        print(f"{n:>8} {t_validate:>18.1f} {t_run:>14.1f} {t_base:>18.2f}")


THREE_NODE = {"nodes": [
    {"id": "p", "type": "input.text", "params": {"name": "prompt", "default": "fox"}},
    {"id": "t", "type": "text.template", "inputs": {"text": {"from": "p", "output": "text"}},
     "params": {"template": "a {{ text }}"}},
    {"id": "o", "type": "output.text", "inputs": {"text": {"from": "t", "output": "text"}}, "params": {"name": "out"}},
]}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def server_figures() -> None:
    srv = BenchServer()
    try:
        headers = {"Authorization": f"Bearer {srv.key}"}
        async with httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=60) as c:
            wid = (await c.post("/api/v1/workflows", json={"name": "bench", "graph": THREE_NODE})).json()["id"]
            await c.post(f"/api/v1/workflows/{wid}/publish")
            for _ in range(20):  # warm-up
                await c.get("/healthz")
                await c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}})
            health: list[float] = []
            submit: list[float] = []
            for _ in range(200):
                t0 = time.perf_counter()
                await c.get("/healthz")
                health.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                r = await c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "x"}})
                submit.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 202
            await drain(c)
            idle: list[float] = []  # the same, but each submit waits until nothing runs (no competing worker)
            for _ in range(100):
                t0 = time.perf_counter()
                r = await c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "x"}})
                idle.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 202
                await drain(c)
            print("\nsubmit latency (POST execute → 202, sequential, embedded SQLite)")
            print(f"  execute, while the previous one runs  p50 {statistics.median(submit):6.2f} ms   "
                  f"p99 {pct(submit, 99):6.2f} ms")
            print(f"  execute, with nothing running         p50 {statistics.median(idle):6.2f} ms   "
                  f"p99 {pct(idle, 99):6.2f} ms")
            print(f"  baseline GET /healthz                 p50 {statistics.median(health):6.2f} ms   "
                  f"p99 {pct(health, 99):6.2f} ms")

            n = 600
            sem = asyncio.Semaphore(32)

            async def submit_one(i: int) -> str:
                async with sem:
                    r = await c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": str(i)}})
                    return r.json()["executionId"]

            cpu0, client0 = server_cpu_s(srv.proc.pid), time.process_time()
            t0 = time.perf_counter()
            ids = await asyncio.gather(*(submit_one(i) for i in range(n)))
            t_submitted = time.perf_counter() - t0
            await drain(c)
            elapsed = time.perf_counter() - t0
            cpu_ms = (server_cpu_s(srv.proc.pid) - cpu0) / n * 1000
            client_ms = (time.process_time() - client0) / n * 1000
            ok = 0
            for i in ids[-50:]:
                ok += (await c.get(f"/api/v1/workflows/executions/{i}/poll")).json()["status"] == "COMPLETED"
            print(f"\nsustained throughput: {n} executions of a 3-node text workflow, 32 clients")
            print(f"  submitted in {t_submitted:.2f} s; all COMPLETED after {elapsed:.2f} s "
                  f"→ {n / elapsed:.0f} executions/s (sampled {ok}/50 COMPLETED)")
            print(f"  server CPU per execution (submit + run) {cpu_ms:.2f} ms; this client's CPU {client_ms:.2f} ms "
                  "per execution")

            async def ping() -> None:
                async with sem:
                    await c.get("/healthz")

            cpu0, t0 = server_cpu_s(srv.proc.pid), time.perf_counter()
            await asyncio.gather(*(ping() for _ in range(n)))
            print(f"  baseline: {n / (time.perf_counter() - t0):.0f} GET /healthz per s with the same 32 clients "
                  f"(server CPU {(server_cpu_s(srv.proc.pid) - cpu0) / n * 1000:.2f} ms each)")
    finally:
        srv.close()


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds the server process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drain(c: httpx.AsyncClient) -> None:
    while True:
        q = (await c.get("/api/v1/workflows/executions", params={"status": "QUEUED", "limit": 1})).json()["data"]
        r = (await c.get("/api/v1/workflows/executions", params={"status": "RUNNING", "limit": 1})).json()["data"]
        if not q and not r:
            return
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(engine_overhead())
    asyncio.run(server_figures())
