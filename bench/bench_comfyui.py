"""ComfyUI benchmark (issue #11, Speed): the same graphs on the same real ComfyUI, called directly and through nodeloom.

Run: .venv/bin/python bench/bench_comfyui.py [--quick] [--rounds N]      (needs `make comfyui`; CPU)

One ComfyUI (tests/support/comfyui.py, `--cpu`) and one `nodeloom serve` process (`make run`'s configuration:
embedded SQLite + SQL queue, embedded workers; the bench account's plan limits lifted, NODELOOM_COMFYUI_URLS set to
that ComfyUI) are started by the bench. Each figure is measured in ALTERNATING rounds (direct, nodeloom, direct,
nodeloom …) so that both sides see the same machine load, and every run on either side has an input of its own
(EmptyImage's color), so ComfyUI's cache never answers for it.

- direct: what a client of ComfyUI does — one socket (`/ws?clientId=…`) open for the whole run, `POST /prompt`
  with our own prompt_id + client_id, wait for `executing {node: null}` of that prompt, `GET /history/{id}`,
  `GET /view` of each output image;
- nodeloom: what a client of nodeloom's public API does to be told of the end, as the direct client is by its
  socket. A run alone: `POST /api/v1/workflows/{id}/execute` with the color as the workflow's input and
  `Prefer: wait=60`, answered 200 with the poll body when the run has ended; runs submitted back to back: a plain
  `POST …/execute` (202) each, then per run one `GET …/poll` (all it takes for a run that has ended) or, while it
  has not, the SSE stream `GET …/executions/{id}/events` up to its terminal event (which carries the outputs). Then
  `GET` of the output's signed URL. `--poll-ms N`: the older client instead, `GET …/poll` every N ms until
  COMPLETED — it costs the server a request every N ms on the CPU ComfyUI runs on, which slows ComfyUI's own run
  (on two cores, the 1024² graph added more than the 3-node one for that reason).

Graphs: the 3-node one (EmptyImage 64×64 → ImageInvert → SaveImage; in nodeloom input.integer → comfyui.EmptyImage
→ comfyui.ImageInvert → comfyui.SaveImage → output.image) and a ≥ 200 ms one (EmptyImage 1024×1024 → ImageBlur radius
15, σ 5 → SaveImage). Latency is end to end (submit → output bytes in hand), runs one after another; throughput is
N runs submitted back to back, from the first submit to the last output fetched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: issue #11's targets for the heavy graph
ADDED_P50_TARGET_MS = 20.0
THROUGHPUT_TARGET = 0.90


@dataclass(frozen=True)
class Shape:
    """A graph: EmptyImage of `size`² → ImageInvert (blur None) or ImageBlur(radius, sigma) → SaveImage."""

    key: str
    title: str
    size: int
    blur: tuple[int, float] | None = None


LIGHT = Shape("light", "3-node (EmptyImage 64² → ImageInvert → SaveImage)", 64)
HEAVY = Shape("heavy", "blur (EmptyImage 1024² → ImageBlur r15 σ5 → SaveImage)", 1024, (15, 5.0))


def comfy_prompt(shape: Shape, color: int, prefix: str) -> dict[str, Any]:
    """The API-format prompt a client sends ComfyUI (the same nodes nodeloom sends for its graph)."""
    middle = ({"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}} if shape.blur is None else
              {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": shape.blur[0],
                                                     "sigma": shape.blur[1]}})
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": shape.size, "height": shape.size, "batch_size": 1,
                                                     "color": color}},
        "2": middle,
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def nodeloom_graph(shape: Shape, prefix: str) -> dict[str, Any]:
    """The same graph as a nodeloom workflow; the color is the workflow's input `color`."""

    def link(src: str, out: str) -> dict[str, str]:
        return {"from": src, "output": out}

    middle: dict[str, Any] = (
        {"id": "inv", "type": "comfyui.ImageInvert", "inputs": {"image": link("empty", "image")}}
        if shape.blur is None else
        {"id": "inv", "type": "comfyui.ImageBlur", "inputs": {"image": link("empty", "image"),
                                                              "blur_radius": shape.blur[0], "sigma": shape.blur[1]}})
    return {"nodes": [
        {"id": "color", "type": "input.integer", "params": {"name": "color", "default": 0, "min": 0,
                                                             "max": 0xFFFFFF}},
        {"id": "empty", "type": "comfyui.EmptyImage", "inputs": {"width": shape.size, "height": shape.size,
                                                                 "batch_size": 1, "color": link("color", "value")}},
        middle,
        {"id": "save", "type": "comfyui.SaveImage", "inputs": {"images": link("inv", "image"),
                                                               "filename_prefix": prefix}},
        {"id": "out", "type": "output.image", "inputs": {"image": link("save", "images")}, "params": {"name": "image"}},
    ]}


class Colors:
    """A distinct EmptyImage color for every run, on both sides (ComfyUI caches a prompt it has seen)."""

    def __init__(self) -> None:
        self._next = 0x010203

    def __call__(self) -> int:
        self._next = (self._next + 7919) % 0xFFFFFF
        return self._next


# --- the two clients -------------------------------------------------------------------------------------------

class Direct:
    """A client of ComfyUI itself: one socket for the session, our own prompt ids, /history, /view."""

    name = "direct"

    def __init__(self, url: str, colors: Colors):
        self.url = url.rstrip("/")
        self.colors = colors
        self.client_id = f"bench-{uuid.uuid4().hex}"
        self.http = httpx.AsyncClient(base_url=self.url, timeout=120, trust_env=False)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._done: dict[str, asyncio.Future[None]] = {}

    async def start(self) -> None:
        ws_url = self.url.replace("http://", "ws://", 1) + f"/ws?clientId={self.client_id}"
        self._ws = await connect(ws_url, max_size=64 * 1024 * 1024, proxy=None, ping_interval=None)
        while True:  # ComfyUI greets a registered socket with its status
            frame = await self._ws.recv()
            if isinstance(frame, str) and json.loads(frame).get("type") == "status":
                break
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if not isinstance(frame, str):
                    continue  # a preview
                message = json.loads(frame)
                data = message.get("data") or {}
                kind, pid = message.get("type"), data.get("prompt_id")
                done = self._done.get(pid) if isinstance(pid, str) else None
                if done is None or done.done():
                    continue
                if kind == "executing" and data.get("node") is None:  # sent after the history entry is written
                    done.set_result(None)
                elif kind in ("execution_error", "execution_interrupted"):
                    done.set_exception(RuntimeError(f"ComfyUI: {kind}: {json.dumps(data)[:500]}"))
        finally:  # the socket closed: nothing more will come
            for done in self._done.values():
                if not done.done():
                    done.set_exception(RuntimeError("ComfyUI's socket closed"))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()
        await self.http.aclose()

    async def prepare(self, shape: Shape) -> Shape:
        return shape

    async def submit(self, shape: Shape) -> str:
        if self._reader is None or self._reader.done():
            raise RuntimeError("ComfyUI's socket is closed")
        pid = str(uuid.uuid4())
        self._done[pid] = asyncio.get_running_loop().create_future()
        prompt = comfy_prompt(shape, self.colors(), f"bench_direct_{shape.key}")
        r = await self.http.post("/prompt", json={"prompt": prompt, "prompt_id": pid, "client_id": self.client_id})
        if r.status_code != 200:
            raise RuntimeError(f"POST /prompt answered {r.status_code}: {r.text[:500]}")
        return pid

    async def run(self, shape: Shape) -> list[bytes]:
        return await self.result(await self.submit(shape))

    async def result(self, pid: str) -> list[bytes]:
        try:
            await asyncio.wait_for(asyncio.shield(self._done[pid]), timeout=120)
        finally:
            del self._done[pid]
        entry = (await self.http.get(f"/history/{pid}")).json()[pid]
        images = [image for out in entry["outputs"].values() for image in out.get("images", [])]
        if not images:
            raise RuntimeError(f"prompt {pid} has no image output: {json.dumps(entry)[:500]}")
        got = []
        for image in images:
            r = await self.http.get("/view", params={"filename": image["filename"], "subfolder": image["subfolder"],
                                                     "type": image["type"]})
            r.raise_for_status()
            got.append(r.content)
        return got


class Nodeloom:
    """A client of nodeloom's API that learns of a run's end the way the direct client does, by being told.

    One run alone (`run`): `POST …/execute` with `Prefer: wait=60`, answered 200 with the poll body once the run has
    ended (202, then the events below, if it has not within 60 s). Several in flight (`submit` + `result`): a plain
    `POST …/execute` (202) each, then per run one `GET …/poll`, and while the run has not ended,
    `GET …/executions/{id}/events` (SSE) up to its terminal event, which carries the outputs. Either way the output's
    signed URL is fetched. `poll_s` set: the old client instead, which polls `GET …/poll` every `poll_s` until
    COMPLETED.
    """

    name = "nodeloom"

    def __init__(self, url: str, key: str, colors: Colors, *, poll_s: float | None = None):
        self.url = url.rstrip("/")
        self.colors = colors
        self.poll_s = poll_s
        self.http = httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                      trust_env=False)
        self._workflows: dict[str, str] = {}

    async def start(self) -> None:
        deadline = time.monotonic() + 120
        while True:  # until the pool has read the server's node types
            r = await self.http.get("/api/v1/nodes/comfyui.ImageBlur")
            if r.status_code == 200 and r.json().get("available"):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodeloom's ComfyUI pool never offered comfyui.ImageBlur: {r.text[:300]}")
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        await self.http.aclose()

    async def prepare(self, shape: Shape) -> Shape:
        if shape.key not in self._workflows:
            graph = nodeloom_graph(shape, f"bench_{self.name}_{shape.key}")
            r = await self.http.post("/api/v1/workflows", json={"name": f"bench comfyui {shape.key}", "graph": graph})
            if r.status_code != 201:
                raise RuntimeError(f"create workflow answered {r.status_code}: {r.text[:800]}")
            wid = r.json()["id"]
            r = await self.http.post(f"/api/v1/workflows/{wid}/publish")
            if r.status_code != 201:
                raise RuntimeError(f"publish answered {r.status_code}: {r.text[:800]}")
            self._workflows[shape.key] = wid
        return shape

    async def _execute(self, shape: Shape, *, wait_s: int = 0) -> httpx.Response:
        wid = self._workflows[shape.key]
        headers = {"Prefer": f"wait={wait_s}"} if wait_s else {}
        r = await self.http.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"color": self.colors()}},
                                 headers=headers)
        if r.status_code not in (200, 202):
            raise RuntimeError(f"execute answered {r.status_code}: {r.text[:500]}")
        return r

    async def submit(self, shape: Shape) -> str:
        return str((await self._execute(shape)).json()["executionId"])

    async def run(self, shape: Shape) -> list[bytes]:
        """One run, submitted and waited for in one request (`Prefer: wait`)."""
        if self.poll_s is not None:
            return await self.result(await self.submit(shape))
        r = await self._execute(shape, wait_s=60)
        body = r.json()
        if r.status_code == 202:  # not ended within the wait
            return await self.result(str(body["executionId"]))
        return await self._fetch(body)

    async def result(self, eid: str) -> list[bytes]:
        if self.poll_s is not None:
            return await self._fetch(await self._poll(eid))
        body: dict[str, Any] = (await self.http.get(f"/api/v1/workflows/executions/{eid}/poll")).json()
        if body.get("status") not in ("COMPLETED", "FAILED", "CANCELLED"):  # not over yet: be told when it is
            body = await self._events(eid)
        return await self._fetch(body)

    async def _events(self, eid: str) -> dict[str, Any]:
        """Follow the execution's events up to the terminal one (its data: status, outputs, error)."""
        kind = ""
        async with self.http.stream("GET", f"/api/v1/workflows/executions/{eid}/events") as r:
            if r.status_code != 200:
                raise RuntimeError(f"events answered {r.status_code}: {(await r.aread())[:500]!r}")
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind.startswith("execution.") and kind != "execution.started":
                    return dict(json.loads(line[5:]))
        raise RuntimeError(f"execution {eid}: the event stream ended without a terminal event")

    async def _poll(self, eid: str) -> dict[str, Any]:
        assert self.poll_s is not None
        deadline = time.monotonic() + 120
        while True:
            body: dict[str, Any] = (await self.http.get(f"/api/v1/workflows/executions/{eid}/poll")).json()
            if body.get("status") in ("COMPLETED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
                return body
            await asyncio.sleep(self.poll_s)

    async def _fetch(self, body: dict[str, Any]) -> list[bytes]:
        """The output image's bytes, from the poll body or terminal event of a run that ended."""
        if body.get("status") != "COMPLETED":
            raise RuntimeError(f"execution {body.get('executionId')} ended {body.get('status')}: "
                               f"{json.dumps(body)[:800]}")
        value = body["outputs"]["image"]
        got = []
        for image in value if isinstance(value, list) else [value]:
            r = await self.http.get(image["url"])  # absolute (public URL) or relative to the API: httpx takes both
            r.raise_for_status()
            got.append(r.content)
        return got


Side = Direct | Nodeloom


# --- measuring ---------------------------------------------------------------------------------------------------

@dataclass
class Samples:
    latency_ms: list[float] = field(default_factory=list)
    throughput: list[float] = field(default_factory=list)  # runs/s, one per round


async def one_run(side: Side, shape: Shape) -> float:
    t0 = time.perf_counter()
    images = await side.run(shape)
    elapsed = (time.perf_counter() - t0) * 1000
    if not images or not all(images):
        raise RuntimeError(f"{side.name}: no output bytes")
    return elapsed


async def burst(side: Side, shape: Shape, n: int) -> float:
    """N runs submitted back to back; the results collected in order as they come. Runs/s."""
    t0 = time.perf_counter()
    ids = [await side.submit(shape) for _ in range(n)]
    for run_id in ids:
        if not await side.result(run_id):
            raise RuntimeError(f"{side.name}: no output bytes")
    return n / (time.perf_counter() - t0)


async def alternate(sides: tuple[Side, Side], rounds: int, measure: Callable[[Side], Awaitable[None]]) -> None:
    for _ in range(rounds):
        for side in sides:  # direct, nodeloom, direct, nodeloom …
            await measure(side)


@dataclass
class Config:
    rounds: int = 5
    light_runs: int = 8  # sequential runs per side per round
    heavy_runs: int = 3
    light_burst: int = 50  # runs submitted back to back per side per round
    heavy_burst: int = 8


async def measure_all(direct: Direct, nodeloom: Nodeloom, cfg: Config,
                      log: Callable[[str], None] = print) -> dict[str, dict[str, Samples]]:
    """Every figure for both graphs; {shape key: {side name: Samples}}."""
    sides: tuple[Side, Side] = (direct, nodeloom)
    results: dict[str, dict[str, Samples]] = {}
    for shape, runs, n in ((LIGHT, cfg.light_runs, cfg.light_burst), (HEAVY, cfg.heavy_runs, cfg.heavy_burst)):
        got = results[shape.key] = {side.name: Samples() for side in sides}
        for side in sides:
            await side.prepare(shape)
            await one_run(side, shape)  # warm-up, not counted (first compile, first connection …)

        async def sequential(side: Side, shape: Shape = shape, runs: int = runs,
                             got: dict[str, Samples] = got) -> None:
            for _ in range(runs):
                got[side.name].latency_ms.append(await one_run(side, shape))

        async def back_to_back(side: Side, shape: Shape = shape, n: int = n, got: dict[str, Samples] = got) -> None:
            got[side.name].throughput.append(await burst(side, shape, n))

        t0 = time.perf_counter()
        await alternate(sides, cfg.rounds, sequential)
        log(f"  {shape.key}: latency rounds done in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        await alternate(sides, cfg.rounds, back_to_back)
        log(f"  {shape.key}: throughput rounds done in {time.perf_counter() - t0:.1f} s")
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(results: dict[str, dict[str, Samples]], cfg: Config) -> str:
    """One table: both columns, the ratio, nodeloom − direct, the target and PASS/MISS where issue #11 sets one."""
    rows: list[tuple[str, str, str, str, str, str, str]] = []
    for shape, n in ((LIGHT, cfg.light_burst), (HEAVY, cfg.heavy_burst)):
        if shape.key not in results:
            continue
        d, nl = results[shape.key]["direct"], results[shape.key]["nodeloom"]
        heavy = shape is HEAVY
        rows.append((shape.title, "", "", "", "", "", ""))
        for label, q in (("end-to-end p50 (ms)", 0.5), ("end-to-end p99 (ms)", 0.99)):
            dv, nv = percentile(d.latency_ms, q), percentile(nl.latency_ms, q)
            target, verdict = "report", ""
            if heavy and q == 0.5:
                target = f"added ≤ {ADDED_P50_TARGET_MS:g} ms"
                verdict = "PASS" if nv - dv <= ADDED_P50_TARGET_MS else "MISS"
            rows.append((f"  {label}", f"{dv:.1f}", f"{nv:.1f}", f"{nv / dv:.2f}×", f"{nv - dv:+.1f}", target,
                         verdict))
        dt, nt = statistics.median(d.throughput), statistics.median(nl.throughput)
        target, verdict = "report", ""
        if heavy:
            target = f"≥ {THROUGHPUT_TARGET:.0%} of direct"
            verdict = "PASS" if nt >= THROUGHPUT_TARGET * dt else "MISS"
        rows.append((f"  throughput (runs/s, {n} back to back)", f"{dt:.2f}", f"{nt:.2f}", f"{nt / dt:.0%}",
                     f"{nt - dt:+.2f}", target, verdict))
    header = ("graph / figure", "direct", "nodeloom", "ratio", "nl − direct", "target", "result")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = []
    for r in (header, *rows):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:5], widths[1:5], strict=True)]
        cells += [r[5].ljust(widths[5]), r[6]]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def describe(cfg: Config, poll_ms: float | None, workers: int = 0) -> str:
    told = ("nodeloom's client told of the end (Prefer: wait on execute for one run; for a burst one poll, then the "
            "SSE events while a run has not ended)"
            if poll_ms is None else f"nodeloom polled every {poll_ms:g} ms")
    serve = f"serve --workers {workers}" if workers else "serve"
    return (f"ComfyUI (CPU) called directly vs. through nodeloom {serve} (embedded SQLite + SQL queue, plan limits "
            f"lifted); {cfg.rounds} alternating rounds each; latency: {cfg.light_runs} (3-node) / {cfg.heavy_runs} "
            f"(blur) sequential runs per side per round; throughput: median of the rounds; {told}; every run a "
            f"distinct color")


# --- the bench itself --------------------------------------------------------------------------------------------

async def bench(comfy_url: str, nodeloom_url: str, key: str, cfg: Config, *, poll_ms: float | None = None,
                workers: int = 0, log: Callable[[str], None] = print) -> str:
    """Measure everything against running servers; the table (printed by the caller)."""
    colors = Colors()
    direct, nodeloom = Direct(comfy_url, colors), Nodeloom(nodeloom_url, key, colors,
                                                                  poll_s=None if poll_ms is None else poll_ms / 1000)
    try:
        await nodeloom.start()
        await direct.start()
        results = await measure_all(direct, nodeloom, cfg, log)
    finally:
        await direct.close()
        await nodeloom.close()
    return describe(cfg, poll_ms, workers) + "\n\n" + table(results, cfg)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer runs (about a minute)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per figure (default 5)")
    parser.add_argument("--poll-ms", type=float, default=None,
                        help="poll GET …/poll this often instead of being told of the end (the old client)")
    parser.add_argument("--workers", type=int, default=0,
                        help="run nodeloom as `serve --workers N` (executions in N worker processes)")
    args = parser.parse_args()
    cfg = Config(rounds=2, light_runs=5, heavy_runs=2, light_burst=20, heavy_burst=4) if args.quick else Config()
    if args.rounds is not None:
        cfg.rounds = args.rounds

    from tests.support.comfyui import ComfyServer, find_comfyui

    from bench._server import BenchServer

    env = find_comfyui()
    if env is None:
        print("skipping bench_comfyui.py: no ComfyUI environment (run `make comfyui`)")
        return 0
    t0 = time.perf_counter()
    comfy = ComfyServer(Path(tempfile.mkdtemp(prefix="nodeloom-bench-comfyui-")), env=env).start()
    srv = None
    try:
        srv = BenchServer(NODELOOM_COMFYUI_URLS=comfy.url, NODELOOM_WORKER_PROCESSES=str(args.workers))
        print(f"ComfyUI {comfy.url} and nodeloom {srv.url} up in {time.perf_counter() - t0:.1f} s", flush=True)
        print(asyncio.run(bench(comfy.url, srv.url, srv.key, cfg, poll_ms=args.poll_ms, workers=args.workers,
                                log=lambda s: print(s, flush=True))))
    finally:
        if srv is not None:
            srv.close()
        comfy.stop()
    print(f"(whole bench: {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
