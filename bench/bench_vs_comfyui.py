"""nodeloom against ComfyUI on ComfyUI's own kind of work (issue #14): native nodeloom graphs beside the same work
as ComfyUI graphs, one table.

Run: .venv/bin/python bench/bench_vs_comfyui.py [--rounds 5] [--runs 40] [--quick] [--no-full]
(needs `make comfyui`; CPU only). `make bench` runs it.

Started by the bench: one real ComfyUI (tests/support/comfyui.py, `--cpu`) and `nodeloom serve` as `make run`
configures it (embedded SQLite + SQL queue, workers in the API process; the bench account's plan limits lifted),
the same with `--workers N` (executions in N worker processes beside the API process; `--workers 0` skips it), and
one with NODELOOM_SQLITE_SYNCHRONOUS=FULL (the power-loss-durable setting) for the rows that show what it costs. Both products are driven by the same headless polling client (httpx, one keep-alive
connection, a poll every --poll-ms):

- ComfyUI: `POST /prompt`, then `GET /history/{id}` until it is there — `EmptyImage 64×64 (color c) → ImageInvert
  ×N → PreviewImage`;
- nodeloom: `POST /api/v1/workflows/{id}/execute`, then `GET …/poll` until COMPLETED — `input.image` (a 64×64 PNG
  of color c as a data: URI) `→ image.invert ×N → output.image`.

Every run on either side has an input of its own (the color), so no cache answers for it — except in the
"all cached" row, which re-runs one input on purpose. Figures are measured in ALTERNATING rounds (ComfyUI,
nodeloom, nodeloom FULL; the order rotates each round) so every side sees the same machine load; the table shows
medians over rounds of each round's percentile. Timings on a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT), str(ROOT / "src")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from tests.support.comfyui import ComfyServer, find_comfyui  # noqa: E402

from bench._server import BenchServer  # noqa: E402

CHAINS = (10, 100, 500, 1000)
CACHED_CHAIN = 100  # + input + output = 102 nodes


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Colors:
    """A new color for every run (both sides draw from their own sequence)."""

    def __init__(self, start: int):
        self.n = start

    def next(self) -> int:
        self.n = (self.n + 7919) % 0xFFFFFF
        return self.n


# --- the two sides ---------------------------------------------------------------------------------------------
class Side:
    name: str

    def prepare(self, n: int) -> None: ...

    def submit(self, n: int, color: int) -> str:
        raise NotImplementedError

    def done(self, run_id: str) -> bool:
        raise NotImplementedError

    def close(self) -> None: ...


class Comfy(Side):
    name = "ComfyUI"

    def __init__(self, server: ComfyServer, poll_s: float):
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=600, trust_env=False)
        self.poll_s = poll_s

    @staticmethod
    def prompt(n: int, color: int) -> dict[str, Any]:
        p: dict[str, Any] = {"1": {"class_type": "EmptyImage",
                                   "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color}}}
        for i in range(n):
            p[str(i + 2)] = {"class_type": "ImageInvert", "inputs": {"image": [str(i + 1), 0]}}
        p[str(n + 2)] = {"class_type": "PreviewImage", "inputs": {"images": [str(n + 1), 0]}}
        return p

    def submit(self, n: int, color: int) -> str:
        r = self.http.post("/prompt", json={"prompt": self.prompt(n, color)})
        if r.status_code != 200:
            raise RuntimeError(f"ComfyUI refused the prompt: {r.status_code} {r.text[:300]}")
        return str(r.json()["prompt_id"])

    def done(self, run_id: str) -> bool:
        h = self.http.get(f"/history/{run_id}").json()
        if run_id not in h:
            return False
        status = h[run_id].get("status") or {}
        if status.get("status_str") == "error":
            messages = [m for m in status.get("messages", []) if m[0] == "execution_error"]
            detail = messages[0][1].get("exception_message", "") if messages else ""
            raise RuntimeError(f"ComfyUI failed: {detail[:200]}")
        return bool(status.get("completed", True))

    def close(self) -> None:
        self.http.close()


def png_uri(color: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), ((color >> 16) & 255, (color >> 8) & 255, color & 255)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Loom(Side):
    def __init__(self, name: str, server: BenchServer, poll_s: float):
        self.name = name
        self.server = server
        self.http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.key}"}, timeout=600)
        self.poll_s = poll_s
        self.workflows: dict[int, str] = {}

    @staticmethod
    def graph(n: int) -> dict[str, Any]:
        nodes: list[dict[str, Any]] = [{"id": "in", "type": "input.image", "params": {"name": "image",
                                                                                      "required": True}}]
        prev = "in"
        for i in range(n):
            nodes.append({"id": f"inv{i}", "type": "image.invert", "inputs": {"image": {"from": prev,
                                                                                     "output": "image"}}})
            prev = f"inv{i}"
        nodes.append({"id": "out", "type": "output.image", "inputs": {"image": {"from": prev, "output": "image"}},
                      "params": {"name": "image"}})
        return {"nodes": nodes}

    def prepare(self, n: int) -> None:
        if n in self.workflows:
            return
        r = self.http.post("/api/v1/workflows", json={"name": f"chain-{n}", "graph": self.graph(n)})
        if r.status_code != 201:
            raise RuntimeError(f"{self.name}: creating the workflow failed: {r.status_code} {r.text[:300]}")
        wid = r.json()["id"]
        r = self.http.post(f"/api/v1/workflows/{wid}/publish")
        if r.status_code != 201:
            raise RuntimeError(f"{self.name}: publishing failed: {r.status_code} {r.text[:300]}")
        self.workflows[n] = wid

    def submit(self, n: int, color: int) -> str:
        r = self.http.post(f"/api/v1/workflows/{self.workflows[n]}/execute",
                           json={"inputs": {"image": png_uri(color)}})
        if r.status_code != 202:
            raise RuntimeError(f"{self.name}: execute answered {r.status_code}: {r.text[:300]}")
        return str(r.json()["executionId"])

    def done(self, run_id: str) -> bool:
        body = self.http.get(f"/api/v1/workflows/executions/{run_id}/poll").json()
        if body["status"] in ("FAILED", "CANCELLED"):
            raise RuntimeError(f"{self.name}: execution {body['status']}: {body.get('error')}")
        return bool(body["status"] == "COMPLETED")

    def close(self) -> None:
        self.http.close()


def wait(side: Side, run_id: str, poll_s: float, timeout: float = 600) -> None:
    deadline = time.perf_counter() + timeout
    while not side.done(run_id):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{side.name}: {run_id} did not finish in {timeout} s")
        time.sleep(poll_s)


# --- measurements -----------------------------------------------------------------------------------------------
@dataclass
class Figures:
    """Per side: per round, the measured values of each figure."""

    rounds: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, side: str, figure: str, value: float) -> None:
        self.rounds.setdefault(side, {}).setdefault(figure, []).append(value)

    def median(self, side: str, figure: str) -> float | None:
        values = self.rounds.get(side, {}).get(figure)
        return statistics.median(values) if values else None


def end_to_end(side: Side, n: int, colors: Colors, runs: int, poll_s: float) -> tuple[list[float], list[float]]:
    """Sequential runs: (submit ms, end-to-end ms) of each."""
    submits, totals = [], []
    for _ in range(runs):
        color = colors.next()
        t0 = time.perf_counter()
        run_id = side.submit(n, color)
        t1 = time.perf_counter()
        wait(side, run_id, poll_s)
        t2 = time.perf_counter()
        submits.append((t1 - t0) * 1000)
        totals.append((t2 - t0) * 1000)
    return submits, totals


def throughput(side: Side, count: int, colors: Colors, poll_s: float) -> float:
    """`count` 3-node runs submitted back to back; runs per second from the first submit to the last one done."""
    t0 = time.perf_counter()
    ids = [side.submit(1, colors.next()) for _ in range(count)]
    for run_id in reversed(ids):  # the last submitted is (about) the last to finish: the rest are done by then
        wait(side, run_id, poll_s)
    return count / (time.perf_counter() - t0)


def cached_rerun(side: Side, colors: Colors, runs: int, poll_s: float) -> list[float]:
    """The 102-node chain once, then again with the same input (everything cached): end-to-end ms of the re-runs."""
    color = colors.next()
    wait(side, side.submit(CACHED_CHAIN, color), poll_s)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        wait(side, side.submit(CACHED_CHAIN, color), poll_s)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def alternate(sides: list[Side], rounds: int, measure: Callable[[Side, int], None]) -> None:
    for r in range(rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]
        for side in order:
            measure(side, r)


# --- the table --------------------------------------------------------------------------------------------------
TARGETS = {
    "submit p50 (ms)": "≤ 2 ms",
    "submit p99 (ms)": "",
    "3-node end-to-end p50 (ms)": "≤ 1.5× ComfyUI (aim ≤ 1×)",
    "3-node end-to-end p99 (ms)": "≤ 2× ComfyUI",
    "throughput, 500 back to back (/s)": "≥ ComfyUI (aim 2×)",
    **{f"chain of {n}: end to end (ms)": "" for n in CHAINS},
    **{f"chain of {n}: per node (ms)": "≤ 0.3 ms, linear" for n in CHAINS},
    "102-node chain again, all cached (ms)": "≤ 10 ms",
}


def fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def print_table(fig: Figures, sides: list[str], failures: dict[str, str]) -> None:
    comfy, loom = sides[0], sides[1]
    cols = ["figure", *sides, "nodeloom ÷ ComfyUI", "target"]
    rows = []
    for figure, target in TARGETS.items():
        values = [fig.median(s, figure) for s in sides]
        cells = []
        for s, v in zip(sides, values, strict=True):
            cells.append(failures.get(f"{s}:{figure}", fmt(v)))
        a, b = fig.median(comfy, figure), fig.median(loom, figure)
        ratio = f"{b / a:.2f}×" if a and b else "—"
        rows.append([figure, *cells, ratio, target])
    widths = [max(len(str(r[i])) for r in [cols, *rows]) for i in range(len(cols))]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"(medians over rounds; throughput: higher is better; ratio {loom} ÷ {comfy}, below 1× nodeloom is faster"
          " except for throughput)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (≥ 5 for the issue's figures)")
    ap.add_argument("--runs", type=int, default=40, help="sequential 3-node runs per side per round")
    ap.add_argument("--throughput", type=int, default=500, help="runs submitted back to back")
    ap.add_argument("--throughput-rounds", type=int, default=3)
    ap.add_argument("--poll-ms", type=float, default=2.0, help="the client's poll interval, both sides")
    ap.add_argument("--chains", default=",".join(map(str, CHAINS)))
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke run, not figures)")
    ap.add_argument("--no-full", action="store_true", help="skip the NODELOOM_SQLITE_SYNCHRONOUS=FULL server")
    ap.add_argument("--workers", type=int, default=1,
                    help="also measure `serve --workers N` (executions in N worker processes); 0 skips it")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.runs, args.throughput, args.throughput_rounds = 2, 10, 100, 1
    chains = [int(c) for c in args.chains.split(",") if c]
    poll_s = args.poll_ms / 1000
    if find_comfyui() is None:
        print("skipping bench_vs_comfyui.py: no ComfyUI environment (run `make comfyui`)")
        return 0

    work = Path(tempfile.mkdtemp(prefix="nodeloom-vs-comfyui-"))
    comfy_server = ComfyServer(work / "comfyui").start()
    most = max([*chains, CACHED_CHAIN, 10]) + 10
    servers = [BenchServer(NODELOOM_MAX_NODES=str(most))]
    sides: list[Side] = [Comfy(comfy_server, poll_s), Loom("nodeloom", servers[0], poll_s)]
    if args.workers:
        servers.append(BenchServer(NODELOOM_MAX_NODES=str(most), NODELOOM_WORKER_PROCESSES=str(args.workers)))
        sides.append(Loom(f"nodeloom --workers {args.workers}", servers[-1], poll_s))
    if not args.no_full:
        servers.append(BenchServer(NODELOOM_MAX_NODES=str(most), NODELOOM_SQLITE_SYNCHRONOUS="FULL"))
        sides.append(Loom("nodeloom FULL", servers[-1], poll_s))
    colors = {s.name: Colors(1000 + 100_003 * i) for i, s in enumerate(sides)}
    fig = Figures()
    failures: dict[str, str] = {}
    try:
        for side in sides:
            for n in (1, CACHED_CHAIN, *chains):
                side.prepare(n)
            end_to_end(side, 1, colors[side.name], 10, poll_s)  # warm-up, not counted

        def latency(side: Side, _r: int) -> None:
            submits, totals = end_to_end(side, 1, colors[side.name], args.runs, poll_s)
            fig.add(side.name, "submit p50 (ms)", percentile(submits, 0.5))
            fig.add(side.name, "submit p99 (ms)", percentile(submits, 0.99))
            fig.add(side.name, "3-node end-to-end p50 (ms)", percentile(totals, 0.5))
            fig.add(side.name, "3-node end-to-end p99 (ms)", percentile(totals, 0.99))

        print(f"3-node graph: {args.rounds} rounds × {args.runs} runs per side …", flush=True)
        alternate(sides, args.rounds, latency)

        def rate(side: Side, _r: int) -> None:
            fig.add(side.name, "throughput, 500 back to back (/s)",
                    throughput(side, args.throughput, colors[side.name], poll_s))

        print(f"throughput: {args.throughput_rounds} rounds of {args.throughput} back to back …", flush=True)
        alternate(sides, args.throughput_rounds, rate)

        # the FULL server adds nothing per node (one batch of events is one commit either way)
        chain_sides = [side for side in sides if not side.name.endswith("FULL")]
        for n in chains:
            runs = 5 if n <= 10 else 2 if n <= 100 else 1
            rounds = 3 if n <= 500 else 2
            if args.quick:
                runs, rounds = 1, 1

            def chain(side: Side, _r: int, n: int = n, runs: int = runs) -> None:
                key = f"{side.name}:chain of {n}: end to end (ms)"
                if key in failures:
                    return
                try:
                    _, totals = end_to_end(side, n, colors[side.name], runs, poll_s)
                except RuntimeError as exc:
                    failures[key] = failures[f"{side.name}:chain of {n}: per node (ms)"] = "failed"
                    print(f"  {side.name}, chain of {n}: {exc}", flush=True)
                    return
                e2e = statistics.median(totals)
                fig.add(side.name, f"chain of {n}: end to end (ms)", e2e)
                fig.add(side.name, f"chain of {n}: per node (ms)", e2e / n)

            print(f"chain of {n}: {rounds} rounds × {runs} runs …", flush=True)
            alternate(chain_sides, rounds, chain)

        def cached(side: Side, _r: int) -> None:
            fig.add(side.name, "102-node chain again, all cached (ms)",
                    statistics.median(cached_rerun(side, colors[side.name], 3 if not args.quick else 1, poll_s)))

        print("102-node chain, all cached …", flush=True)
        alternate(chain_sides, 3 if not args.quick else 1, cached)
    finally:
        for side in sides:
            side.close()
        for server in servers:
            server.close()
        comfy_server.stop()

    print()
    print_table(fig, [s.name for s in sides], failures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
