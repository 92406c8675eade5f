"""Platform benchmark: the latency the rate-limit + idempotency path adds to a request.

Run: .venv/bin/python bench/bench_platform.py [--requests N] [--redis redis://127.0.0.1:6379/0]

Two apps share one Runtime (embedded default: SQLite, memory rate-limit storage): the real one, and a
baseline built the same way without the RateLimit and Idempotency middlewares. Requests go to both,
interleaved, in-process over ASGI (no sockets, so the figures are the middleware's and not the
network's). The baseline still authenticates in the route, so "added" is what the path costs on top.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodeloom.api import create_app  # noqa: E402
from nodeloom.api.idempotency import IdempotencyMiddleware  # noqa: E402
from nodeloom.api.ratelimit import RateLimitMiddleware  # noqa: E402
from nodeloom.settings import Settings  # noqa: E402
from nodeloom.types import ALL_SCOPES  # noqa: E402
from nodeloom.worker import Runtime  # noqa: E402

GRAPH = {"nodes": [
    {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "world"}},
    {"id": "tpl", "type": "text.template", "inputs": {"text": {"from": "prompt", "output": "text"}},
     "params": {"template": "Hello {{ text }}!"}},
    {"id": "out", "type": "output.text", "inputs": {"text": {"from": "tpl", "output": "text"}},
     "params": {"name": "greeting"}},
]}

Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def compare(name: str, limited: httpx.AsyncClient, baseline: httpx.AsyncClient, request: Request,
                  n: int, *, baseline_request: Request | None = None) -> None:
    times: dict[str, list[float]] = {"limited": [], "baseline": []}
    for i in range(-50, n):  # 50 warm-up rounds, not counted
        for label, client, send in (("baseline", baseline, baseline_request or request), ("limited", limited, request)):
            t0 = time.perf_counter()
            r = await send(client, i)
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status_code >= 400:
                raise RuntimeError(f"{name}: {label} answered {r.status_code}: {r.text[:200]}")
            if i >= 0:
                times[label].append(elapsed)
    b50, b99 = percentile(times["baseline"], 0.5), percentile(times["baseline"], 0.99)
    l50, l99 = percentile(times["limited"], 0.5), percentile(times["limited"], 0.99)
    print(f"{name:<44} {b50:8.3f} {b99:8.3f} {l50:8.3f} {l99:8.3f} {l50 - b50:+9.3f} {l99 - b99:+9.3f}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--redis", default=None, help="a Redis URL: rate-limit storage on Redis")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="nodeloom-bench-platform-"))
    settings = Settings(data_dir=data, secret_key="bench-secret-0123456789", embedded_workers=False,
                        process_pool_size=0, redis_url=args.redis, rate_limit_namespace=f"bench-{uuid.uuid4().hex[:8]}",
                        plans={"enterprise": {"requests_per_minute": 10_000_000}})
    rt = Runtime(settings, migrate=True)
    account = rt.accounts.create_account(name="bench", plan="enterprise", credits=0)
    _row, key = rt.accounts.create_key(account_id=account.id, name="bench", scopes=list(ALL_SCOPES))
    limited_app = create_app(settings, runtime=rt, run_workers=False)
    baseline_app = create_app(settings, runtime=rt, run_workers=False)
    baseline_app.user_middleware = [m for m in baseline_app.user_middleware
                                    if m.cls not in (RateLimitMiddleware, IdempotencyMiddleware)]
    headers = {"Authorization": f"Bearer {key}"}
    n = args.requests
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited_app), base_url="http://bench",
                                 headers=headers) as limited, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=baseline_app), base_url="http://bench",
                              headers=headers) as baseline:
        wid = (await limited.post("/api/v1/workflows", json={"name": "bench", "graph": GRAPH})).json()["id"]
        storage = "Redis" if args.redis else "memory"
        print(f"added latency of the rate-limit + idempotency path, ms per request ({n} requests each, "
              f"SQLite, {storage} rate-limit storage, in-process ASGI)")
        print(f"{'request':<44} {'base p50':>8} {'base p99':>8} {'with p50':>8} {'with p99':>8} "
              f"{'added p50':>9} {'added p99':>9}")
        await compare("GET /workflows/{id} (limit only)", limited, baseline,
                      lambda c, _i: c.get(f"/api/v1/workflows/{wid}"), n)
        await compare("POST /workflows/validate (limit only)", limited, baseline,
                      lambda c, _i: c.post("/api/v1/workflows/validate", json={"graph": GRAPH}), n)
        await compare("POST /workflows/validate + new Idempotency-Key", limited, baseline,
                      lambda c, i: c.post("/api/v1/workflows/validate", json={"graph": GRAPH},
                                          headers={"Idempotency-Key": f"k-{i}-{uuid.uuid4().hex}"}), n)
        await limited.post("/api/v1/workflows/validate", json={"graph": GRAPH}, headers={"Idempotency-Key": "r"})
        await compare("POST /workflows/validate replayed (vs. run)", limited, baseline,
                      lambda c, _i: c.post("/api/v1/workflows/validate", json={"graph": GRAPH},
                                           headers={"Idempotency-Key": "r"}), n)
        print("(the replay row compares answering from the store with running the route: negative is faster)")
    await rt.aclose()


if __name__ == "__main__":
    asyncio.run(main())
