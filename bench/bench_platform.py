"""Platform benchmark: the latency the rate-limit + idempotency path adds to a request.

Run: .venv/bin/python bench/bench_platform.py [--requests N] [--redis redis://127.0.0.1:6379/0]

Two apps share one object graph (compose.build) (embedded default: SQLite, memory rate-limit storage): the real one, and a
baseline built the same way without the RateLimit and Idempotency middlewares. Requests go to both,
interleaved, in-process over ASGI (no sockets, so the figures are the middleware's and not the
network's). The baseline still authenticates in the route, so "added" is what the path costs on top.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodeloom.api import create_app
from nodeloom.api.idempotency import IdempotencyMiddleware
from nodeloom.api.ratelimit import RateLimitMiddleware
from nodeloom.compose import Services, build
from nodeloom.settings import Settings
from nodeloom.types import ALL_SCOPES

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
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


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
    print(f"{name:<52} {b50:8.3f} {b99:8.3f} {l50:8.3f} {l99:8.3f} {l50 - b50:+9.3f} {l99 - b99:+9.3f}")


def components(rt: Services, account_id: str, key: str, n: int) -> None:
    """The pieces on their own, called directly (µs): what the path is made of."""

    def timed(fn: Callable[[int], object]) -> tuple[float, float]:
        xs = []
        for i in range(n):
            t0 = time.perf_counter()
            fn(i)
            xs.append((time.perf_counter() - t0) * 1e6)
        return percentile(xs, 0.5), percentile(xs, 0.99)

    claims: list[object] = []
    rows = [
        ("rate-limit hit + window stats", lambda i: rt.limiter.hit(f"acct:{account_id}", 10_000_000)),
        ("plan lookup (cached)", lambda i: rt.limiter.plan_for(account_id)),
        ("API key lookup (moved from the route, not added)", lambda i: rt.accounts.authenticate(key)),
        ("idempotency claim (own committed row)", lambda i: claims.append(rt.idempotency.claim(
            scope=account_id, key=f"c-{i}", method="POST", path="/bench", fingerprint="f"))),
        ("idempotency answer stored", lambda i: rt.idempotency.complete(
            claims[i], status=200, body=b'{"ok":true}', content_type="application/json")),  # type: ignore[arg-type]
        ("idempotency replay lookup", lambda i: rt.idempotency.claim(
            scope=account_id, key=f"c-{i}", method="POST", path="/bench", fingerprint="f")),
    ]
    print(f"\n{'component (called directly)':<50} {'p50 µs':>9} {'p99 µs':>9}")
    for name, fn in rows:
        p50, p99 = timed(fn)
        print(f"{name:<50} {p50:9.1f} {p99:9.1f}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--redis", default=None, help="a Redis URL: rate-limit storage on Redis")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="nodeloom-bench-platform-"))
    settings = Settings(data_dir=data, secret_key="bench-secret-0123456789", embedded_workers=False,
                        process_pool_size=0, redis_url=args.redis, rate_limit_namespace=f"bench-{uuid.uuid4().hex[:8]}",
                        plans={"enterprise": {"requests_per_minute": 10_000_000, "executions_per_minute": 10_000_000}})
    rt = build(settings, migrate=True)
    account = rt.accounts.create_account(name="bench", plan="enterprise", credits=0)
    _row, key = rt.accounts.create_key(account_id=account.id, name="bench", scopes=list(ALL_SCOPES))
    limited_app = create_app(settings, services=rt, run_workers=False)
    baseline_app = create_app(settings, services=rt, run_workers=False)
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
        print(f"{'request':<52} {'base p50':>8} {'base p99':>8} {'with p50':>8} {'with p99':>8} "
              f"{'added p50':>9} {'added p99':>9}")
        await compare("GET /workflows/{id} (limit only)", limited, baseline,
                      lambda c, _i: c.get(f"/api/v1/workflows/{wid}"), n)
        await compare("POST /workflows/validate (limit only)", limited, baseline,
                      lambda c, _i: c.post("/api/v1/workflows/validate", json={"graph": GRAPH}), n)
        await compare("POST /workflows/validate + new Idempotency-Key", limited, baseline,
                      lambda c, i: c.post("/api/v1/workflows/validate", json={"graph": GRAPH},
                                          headers={"Idempotency-Key": f"k-{i}-{uuid.uuid4().hex}"}), n)
        await limited.post(f"/api/v1/workflows/{wid}/publish")
        await compare("POST /workflows/{id}/execute (limit only)", limited, baseline,
                      lambda c, _i: c.post(f"/api/v1/workflows/{wid}/execute", json={}), n)
        await compare("POST /workflows/{id}/execute + new Idempotency-Key", limited, baseline,
                      lambda c, i: c.post(f"/api/v1/workflows/{wid}/execute", json={},
                                          headers={"Idempotency-Key": f"x-{i}-{uuid.uuid4().hex}"}), n)
        await limited.post("/api/v1/workflows/validate", json={"graph": GRAPH}, headers={"Idempotency-Key": "r"})
        await compare("POST /workflows/validate replayed (vs. run)", limited, baseline,
                      lambda c, _i: c.post("/api/v1/workflows/validate", json={"graph": GRAPH},
                                           headers={"Idempotency-Key": "r"}), n)
        print("(the replay row compares answering from the store with running the route: negative is faster)")
    components(rt, account.id, key, n)
    await rt.aclose()


if __name__ == "__main__":
    asyncio.run(main())
