"""Soak: does a server's memory stay flat over many executions? (issue #14: within 10 % over 100,000)

Run: .venv/bin/python bench/soak_rss.py [--executions 2000] [--in-flight 16] [--samples 10]
     .venv/bin/python bench/soak_rss.py --executions 100000          (the full run: hours on a small machine)

Starts `nodeloom serve` as `make run` configures it (bench/_server.py: plan limits lifted) and runs the 3-node
image graph (`input.image` 64×64 PNG → `image.invert` → `output.image`) with a distinct input each time, keeping
--in-flight executions going. It samples the resident memory (RSS) of the server and of its children (the process
pool, sandboxes) after a warm-up of --warmup executions and then at --samples evenly spaced points, and prints
each sample and the growth from the first sample to the last (and to the largest).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT), str(ROOT / "src")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench._server import BenchServer  # noqa: E402

GRAPH = {"nodes": [
    {"id": "in", "type": "input.image", "params": {"name": "image", "required": True}},
    {"id": "inv", "type": "image.invert", "inputs": {"image": {"from": "in", "output": "image"}}},
    {"id": "out", "type": "output.image", "inputs": {"image": {"from": "inv", "output": "image"}},
     "params": {"name": "image"}},
]}


def rss_kib(pid: int) -> int:
    """VmRSS of `pid` and every descendant (KiB)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(c) for c in children)
    return total


def png_uri(i: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (i & 255, (i >> 8) & 255, (i >> 16) & 255)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


async def soak(server: BenchServer, *, executions: int, in_flight: int, warmup: int, samples: int) -> int:
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.key}"},
                                 timeout=120) as c:
        r = await c.post("/api/v1/workflows", json={"name": "soak", "graph": GRAPH})
        wid = r.json()["id"]
        await c.post(f"/api/v1/workflows/{wid}/publish")
        counter = iter(range(warmup + executions))
        done = 0
        failed = 0

        async def one(i: int) -> None:
            nonlocal done, failed
            r = await c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"image": png_uri(i)}})
            eid = r.json()["executionId"]
            while True:
                body = (await c.get(f"/api/v1/workflows/executions/{eid}/poll")).json()
                if body["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    break
                await asyncio.sleep(0.01)
            failed += body["status"] != "COMPLETED"
            done += 1

        async def lane() -> None:
            for i in counter:
                await one(i)

        points = sorted({warmup + round(k * executions / samples) for k in range(samples + 1)})
        readings: list[tuple[int, int]] = []
        lanes = [asyncio.create_task(lane()) for _ in range(in_flight)]
        t0 = time.perf_counter()
        while points:
            if done >= points[0]:
                readings.append((done - warmup, rss_kib(server.proc.pid)))
                print(f"  after {done - warmup:>8,} executions: RSS {readings[-1][1] / 1024:8.1f} MiB "
                      f"({(done - warmup) / max(1e-9, time.perf_counter() - t0):.0f}/s)", flush=True)
                if done - warmup <= 0:
                    t0 = time.perf_counter()
                points.pop(0)
                continue
            if all(t.done() for t in lanes):
                break
            await asyncio.sleep(0.05)
        await asyncio.gather(*lanes)
    first, last = readings[0][1], readings[-1][1]
    peak = max(r for _, r in readings)
    print(f"RSS {first / 1024:.1f} → {last / 1024:.1f} MiB after {executions:,} executions: "
          f"{(last - first) / first:+.1%} (peak {(peak - first) / first:+.1%}; target within ±10 %); "
          f"{failed} failed")
    return 0 if failed == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--executions", type=int, default=2000)
    ap.add_argument("--in-flight", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--samples", type=int, default=10)
    args = ap.parse_args()
    server = BenchServer()
    try:
        print(f"soak: {args.executions:,} executions after {args.warmup} of warm-up, {args.in_flight} in flight",
              flush=True)
        return asyncio.run(soak(server, executions=args.executions, in_flight=args.in_flight, warmup=args.warmup,
                                samples=args.samples))
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
