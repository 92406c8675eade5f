#!/usr/bin/env python
"""Crash trials: SIGKILL the server (embedded) or a Celery worker at random moments while a client submits
executions, and check the invariants after every trial.

    python scripts/crash_trials.py                       # 200 embedded + 200 Celery trials
    python scripts/crash_trials.py --mode embedded --trials 20
    python scripts/crash_trials.py --mode celery --trials 5 --seed 7

Modes:
- `embedded`: `nodeloom serve` on SQLite (its workers inside); the server is SIGKILLed, then started again.
- `celery`: one `nodeloom serve` API process (never killed) and two `nodeloom worker` processes
  (NODELOOM_QUEUE=celery, Redis broker, PostgreSQL); a random worker is SIGKILLed and a new one started.
  Needs PostgreSQL at 127.0.0.1:5432 (trust, db `test`) and Redis at 127.0.0.1:6379 (`--pg`, `--redis`).

Each trial submits a few executions of graphs with several nodes, two of them priced (`test.count`, 1 credit);
some with an `Idempotency-Key` (some sent twice), some with callbacks to a local receiver (which refuses one
attempt in ten, so retries happen too), some cancelled. At a random moment the victim is killed; requests that
got no answer are retried after the restart when they carry a key. Then, once every execution is terminal and
every delivery is out, the invariants:

1. each 202 ends in exactly one terminal state: its row is terminal and its event log holds exactly one
   terminal event (executions whose 202 was lost with the server are held to the same); a key never makes a
   second execution (one execution per submitted body at most, and every answer for a key names the same one);
2. each node is charged at most once: one `charge` ledger entry per (execution, node) at most, exactly one for
   each completed priced node, the execution's `creditsUsed` is the sum of its charges, and the account's
   balance is what was granted less what was charged (no hold is left open);
3. each callback is delivered at least once with one `webhook-id` per event: every delivery row is
   `delivered` and was received, each event (execution, type, node) has one delivery id, and every subscribed
   event that happened has its delivery.

It prints one line per trial with a problem and a summary: trials, executions, violations, time. The exit
status is 1 when any invariant was violated. tests/test_crash_trials.py runs a short version in `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
TERMINAL_EVENTS = {"execution.completed": "COMPLETED", "execution.failed": "FAILED",
                   "execution.cancelled": "CANCELLED"}
ALL_EVENTS = ["started", "node.completed", "completed", "failed", "cancelled"]
PRICED = {"test.count"}
CREDITS = Decimal(1_000_000)
SECRET = "crash-trials-secret-0123456789"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the callback receiver --------------------------------------------------------------------------------


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]


class Receiver:
    """A local callback receiver that answers 204, or 503 to one attempt in ten (so the sender retries)."""

    def __init__(self, rng: random.Random, refuse: float = 0.1):
        self.rng = rng
        self.refuse = refuse
        self.lock = threading.Lock()
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unreadable": body.decode(errors="replace")[:200]}
                with receiver.lock:
                    refuse = receiver.rng.random() < receiver.refuse
                    if not refuse:
                        receiver.received.append(Received(self.headers.get("webhook-id", ""), payload))
                self.send_response(503 if refuse else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def by_id(self) -> dict[str, list[Received]]:
        with self.lock:
            out: dict[str, list[Received]] = defaultdict(list)
            for r in self.received:
                out[r.webhook_id].append(r)
            return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- processes ---------------------------------------------------------------------------------------------


def base_env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "NODELOOM_SECRET_KEY": SECRET,
            "NODELOOM_NODE_PACKS": "tests.support.nodes", "NODELOOM_LEASE_SECONDS": "2",
            "NODELOOM_HEARTBEAT_SECONDS": "0.4", "NODELOOM_POLL_INTERVAL_SECONDS": "0.05",
            "NODELOOM_PROCESS_POOL_SIZE": "0", "NODELOOM_RATE_LIMITS_ENABLED": "false",
            "NODELOOM_ALLOW_PRIVATE_URLS": "1", "NODELOOM_WEBHOOK_RETRY_SCHEDULE": "0.2,0.5,1,1,2,2,3,5",
            "NODELOOM_WEBHOOK_RETRY_JITTER": "0", "NODELOOM_WEBHOOK_POLL_INTERVAL_SECONDS": "0.1",
            "NODELOOM_WEBHOOK_TIMEOUT_SECONDS": "5", "NODELOOM_WEBHOOK_LEASE_MARGIN_SECONDS": "3", "NODELOOM_MAX_ATTEMPTS": "10", "NODELOOM_LOG_LEVEL": "WARNING",
            "NODELOOM_PLANS": json.dumps({"enterprise": {"requests_per_minute": 1_000_000,
                                                         "executions_per_minute": 1_000_000, "concurrency": 1000}}),
            **extra}


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self.popen = subprocess.Popen([sys.executable, "-m", "nodeloom.cli", *args], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=open(log, "ab"))

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_http(url: str, timeout: float = 180, proc: Proc | None = None) -> bool:
    """Until the server answers /healthz; False when its process ended first (e.g. its port was taken)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            return False
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not come up")


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "nodeloom.cli", *args], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=180)
    return out.stdout


# --- the workload --------------------------------------------------------------------------------------------


def graphs(counter: Path) -> list[dict[str, Any]]:
    """Graphs with several nodes, two priced ones each: a chain and a fan-out (priced nodes run in parallel)."""

    def count(nid: str, src: str, port: str = "text") -> dict[str, Any]:  # a file per node: runs per node
        return {"id": nid, "type": "test.count", "params": {"path": f"{counter}.{nid}"},
                "inputs": {"value": {"from": src, "output": port}}}

    def delay(nid: str, src: str, seconds: float) -> dict[str, Any]:
        return {"id": nid, "type": "util.delay", "params": {"seconds": seconds},
                "inputs": {"value": {"from": src, "output": "value"}}}

    def out(nid: str, src: str, name: str) -> dict[str, Any]:
        return {"id": nid, "type": "output.json", "params": {"name": name},
                "inputs": {"value": {"from": src, "output": "value"}}}

    p = {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}}
    chain = {"nodes": [p, count("c1", "p"), delay("d", "c1", 0.6), count("c2", "d", "value"), out("out", "c2", "v")]}
    fan = {"nodes": [p, count("c1", "p"), count("c2", "p"), delay("d1", "c1", 0.3), delay("d2", "c2", 1.0),
                     out("o1", "d1", "a"), out("o2", "d2", "b")]}
    quick = {"nodes": [p, count("c1", "p"), count("c2", "c1", "value"), out("out", "c2", "v")]}
    return [chain, fan, quick]


@dataclass
class Request:
    marker: str
    workflow_id: str
    key: str | None
    webhook_events: list[str] | None  # None: no callback; [] the default events
    cancel: bool
    twice: bool
    answers: list[tuple[int, str | None]] = field(default_factory=list)  # (status, executionId)
    lost: bool = False  # no answer: the connection failed (the server died)

    def body(self, receiver_url: str) -> dict[str, Any]:
        body: dict[str, Any] = {"inputs": {"p": self.marker}}
        if self.webhook_events is not None:
            body["webhookUrl"] = receiver_url
            if self.webhook_events:
                body["webhookEvents"] = self.webhook_events
        return body

    def ids(self) -> set[str]:
        return {eid for status, eid in self.answers if status == 202 and eid}


def plan_requests(rng: random.Random, trial: int, workflows: list[str]) -> list[Request]:
    out = []
    for n in range(rng.randint(3, 7)):
        hook = rng.random()
        events = None if hook < 0.4 else ([] if hook < 0.7 else list(ALL_EVENTS))
        keyed = rng.random() < 0.5
        out.append(Request(marker=f"t{trial}-{n}-{uuid.uuid4().hex[:6]}", workflow_id=rng.choice(workflows),
                           key=f"crash-{uuid.uuid4().hex}" if keyed else None, webhook_events=events,
                           cancel=rng.random() < 0.1, twice=keyed and rng.random() < 0.3))
    return out


def send(client: httpx.Client, req: Request, receiver_url: str) -> tuple[int, str | None] | None:
    headers = {"Idempotency-Key": req.key} if req.key else {}
    try:
        r = client.post(f"/api/v1/workflows/{req.workflow_id}/execute", json=req.body(receiver_url), headers=headers)
    except httpx.HTTPError:
        return None
    eid = r.json().get("executionId") if r.status_code == 202 else None
    return r.status_code, eid


def submit_all(client: httpx.Client, rng: random.Random, requests: list[Request], receiver_url: str,
               spread: float) -> None:
    """The client: each request at a random moment within `spread` seconds; a failed connection is a lost answer."""
    pauses = sorted(rng.uniform(0, spread) for _ in requests)
    started = time.monotonic()
    for req, at in zip(requests, pauses, strict=True):
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        for _ in range(2 if req.twice else 1):
            answer = send(client, req, receiver_url)
            if answer is None:
                req.lost = True
                break
            req.answers.append(answer)
        if req.cancel and req.ids() and not req.lost:
            try:
                client.post(f"/api/v1/workflows/executions/{next(iter(req.ids()))}/cancel")
            except httpx.HTTPError:
                pass


def retry_lost(client: httpx.Client, requests: list[Request], receiver_url: str, window: float = 4.0) -> int:
    """After the restart, a keyed request whose answer was lost is sent again (what a client would do). Returns how
    many are still answered 409 (the key's first request may still be in flight: API.md, Idempotency)."""
    pending = [r for r in requests if r.lost and r.key]
    deadline = time.monotonic() + window
    while pending and time.monotonic() < deadline:
        for req in list(pending):
            answer = send(client, req, receiver_url)
            if answer is not None and answer[0] != 409:
                req.answers.append(answer)
                pending.remove(req)
        if pending:
            time.sleep(0.3)
    return len(pending)


# --- the invariants ------------------------------------------------------------------------------------------


def rows(db: Engine, sql: str, **params: Any) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def trial_executions(db: Engine, markers: set[str], seen: set[str]) -> dict[str, tuple[str, str]]:
    """Executions created since the last trial: id → (status, marker)."""
    out = {}
    for eid, status, inputs in rows(db, "SELECT id, status, inputs FROM executions"):
        if eid in seen:
            continue
        marker = (as_json(inputs) or {}).get("p")
        if marker in markers:
            out[eid] = (status, marker)
    return out


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def check(db: Engine, receiver: Receiver, requests: list[Request], executions: dict[str, tuple[str, str]],
          account_id: str) -> list[str]:
    """Every invariant over one trial's executions; the violations found, in words."""
    bad: list[str] = []
    ids = set(executions)
    if not ids:
        return bad
    in_ids = ",".join(f"'{eid}'" for eid in ids)  # ids are ours (exec_…): no quoting needed beyond this
    # 1. one terminal state each; a key (or a body) never makes two executions
    by_marker: dict[str, list[str]] = defaultdict(list)
    for eid, (_status, marker) in executions.items():
        by_marker[marker].append(eid)
    for req in requests:
        made = by_marker.get(req.marker, [])
        if len(made) > 1:
            bad.append(f"{req.marker}: {len(made)} executions for one request ({made})")
        answered = req.ids()
        if len(answered) > 1:
            bad.append(f"{req.marker}: its answers name different executions {sorted(answered)}")
        if answered - set(made):
            bad.append(f"{req.marker}: answered 202 with {sorted(answered)} but no such execution")
    status = {eid: st for eid, (st, _m) in executions.items()}
    for eid, st in status.items():
        if st not in TERMINAL:
            bad.append(f"{eid}: not terminal ({st})")
    terminal_events: dict[str, list[str]] = defaultdict(list)
    for eid, kind in rows(db, f"SELECT execution_id, type FROM execution_events WHERE execution_id IN ({in_ids}) "
                              "ORDER BY execution_id, seq"):
        if kind in TERMINAL_EVENTS:
            terminal_events[eid].append(kind)
    for eid, st in status.items():
        got = terminal_events.get(eid, [])
        if len(got) != 1 or TERMINAL_EVENTS[got[0]] != st:
            bad.append(f"{eid}: status {st} with terminal events {got}")
    # 2. charged at most once; completed priced nodes exactly once; creditsUsed adds up
    charges: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    for eid, nid, amount in rows(db, "SELECT execution_id, node_id, amount FROM credit_ledger "
                                     f"WHERE kind = 'charge' AND execution_id IN ({in_ids})"):
        charges[(eid, nid)].append(Decimal(str(amount)))
    for (eid, nid), amounts in charges.items():
        if len(amounts) > 1:
            bad.append(f"{eid}/{nid}: charged {len(amounts)} times")
    for eid, nid, node_type, nstatus, cached in rows(db, "SELECT execution_id, node_id, node_type, status, cached FROM "
                                                 f"execution_nodes WHERE execution_id IN ({in_ids})"):
        if node_type in PRICED and nstatus == "COMPLETED" and not cached and len(charges.get((eid, nid), [])) != 1:
            bad.append(f"{eid}/{nid}: completed, charged {len(charges.get((eid, nid), []))} times")
    for eid, used in rows(db, f"SELECT id, credits_used FROM executions WHERE id IN ({in_ids})"):
        total = sum((sum(a) for (e, _n), a in charges.items() if e == eid), Decimal(0))
        if Decimal(str(used)) != total:
            bad.append(f"{eid}: creditsUsed {used} but charges add up to {total}")
    (balance,), = rows(db, "SELECT credits FROM accounts WHERE id = :a", a=account_id)
    (charged,), = rows(db, "SELECT COALESCE(SUM(amount), 0) FROM credit_ledger WHERE account_id = :a "
                           "AND kind = 'charge'", a=account_id)
    if Decimal(str(balance)) != CREDITS - Decimal(str(charged)):
        bad.append(f"balance {balance} but granted {CREDITS} less charged {charged}")
    # 3. callbacks: each delivery out at least once, one id per event, every subscribed event that happened
    deliveries = rows(db, "SELECT id, execution_id, event_type, status, payload FROM webhook_deliveries "
                          f"WHERE execution_id IN ({in_ids})")
    received = receiver.by_id()
    per_event: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for did, eid, kind, dstatus, payload in deliveries:
        per_event[(eid, kind, (as_json(payload) or {}).get("nodeId") or "")].add(did)
        if dstatus != "delivered":
            bad.append(f"{did} ({eid} {kind}): {dstatus}, not delivered")
        elif did not in received:
            bad.append(f"{did} ({eid} {kind}): delivered but never received")
    for copies in received.values():
        for r in copies:
            if r.body.get("executionId") in ids:
                per_event[(r.body["executionId"], r.body["type"], r.body.get("nodeId") or "")].add(r.webhook_id)
    for (eid, kind, nid), dids in per_event.items():
        if len(dids) != 1:
            bad.append(f"{eid} {kind} {nid}: {len(dids)} webhook ids {sorted(dids)}")
    subscribed = {eid: as_json(events) for eid, events, url in rows(
        db, f"SELECT id, webhook_events, webhook_url FROM executions WHERE id IN ({in_ids})") if url}
    for eid, events in subscribed.items():
        events = set(events or ["completed", "failed", "cancelled"])
        final = {"COMPLETED": "completed", "FAILED": "failed", "CANCELLED": "cancelled"}.get(status[eid], "")
        if final in events and not per_event.get((eid, f"execution.{final}", "")):
            bad.append(f"{eid}: {status[eid]}, subscribed, but no execution.{final} callback")
    for eid, nid in rows(db, f"SELECT execution_id, node_id FROM execution_nodes WHERE execution_id IN ({in_ids}) "
                             "AND status = 'COMPLETED'"):
        if eid in subscribed and "node.completed" in set(subscribed[eid] or []) \
                and not per_event.get((eid, "node.completed", nid)):
            bad.append(f"{eid}/{nid}: completed, subscribed, but no node.completed callback")
    return bad


# --- the trials ------------------------------------------------------------------------------------------------


@dataclass
class Summary:
    mode: str
    trials: int = 0
    executions: int = 0
    accepted: int = 0  # 202 answers
    lost_answers: int = 0  # requests whose answer died with the server
    keys_in_flight: int = 0  # keyed retries still answered 409 when given up
    kills: int = 0
    unexpected_exits: int = 0  # victims that died on their own (e.g. the loop watchdog)
    reruns: int = 0  # priced nodes that ran again after a crash (allowed: charged once)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.mode}: trials={self.trials} executions={self.executions} accepted={self.accepted} "
                f"kills={self.kills} lost_answers={self.lost_answers} keys_in_flight={self.keys_in_flight} "
                f"unexpected_exits={self.unexpected_exits} priced_reruns={self.reruns} "
                f"violations={len(self.violations)} time={self.seconds:.0f}s")


class Harness:
    """What both modes share: the account, the workflows, the receiver, the trial loop."""

    def __init__(self, mode: str, workdir: Path, rng: random.Random, log: Callable[[str], None]):
        self.mode = mode
        self.workdir = workdir
        self.rng = rng
        self.log = log
        self.receiver = Receiver(random.Random(rng.random()))
        self.counter = workdir / "runs.txt"
        self.summary = Summary(mode)
        self.seen: set[str] = set()
        self.api_url = ""
        self.key = ""
        self.account_id = ""
        self.workflows: list[str] = []
        self.db: Engine | None = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=15)

    def setup(self, env: dict[str, str], database_url: str) -> None:
        out = json.loads(cli(env, "accounts", "create", "--name", "crash", "--plan", "enterprise", "--credits",
                             str(CREDITS), "--json").strip().splitlines()[-1])
        self.key, self.account_id = out["apiKey"], out.get("accountId") or out.get("id") or ""
        self.db = create_engine(database_url)
        if not self.account_id:
            (self.account_id,), = rows(self.db, "SELECT id FROM accounts WHERE name = 'crash'")

    def ours(self, proc: Proc) -> bool:
        """The server that answers is the one we started (not another process that took the port first)."""
        while proc.alive():
            try:
                with self.client() as c:
                    return c.get("/api/v1/account").status_code == 200 and proc.alive()
            except httpx.HTTPError:
                time.sleep(0.1)
        return False

    def publish(self) -> None:
        with self.client() as c:
            for n, graph in enumerate(graphs(self.counter)):
                r = c.post("/api/v1/workflows", json={"name": f"crash-{n}", "graph": graph})
                r.raise_for_status()
                wid = r.json()["id"]
                c.post(f"/api/v1/workflows/{wid}/publish").raise_for_status()
                self.workflows.append(wid)

    def trial(self, n: int, kill: Callable[[], None], recover: Callable[[], None]) -> None:
        """Submit, kill at a random moment, recover, wait, check."""
        assert self.db is not None
        requests = plan_requests(self.rng, n, self.workflows)
        spread = self.rng.uniform(0.2, 1.5)
        kill_at = self.rng.uniform(0.0, spread + 1.5)
        client = self.client()
        submitter = threading.Thread(target=submit_all, args=(client, self.rng, requests, self.receiver.url, spread))
        submitter.start()
        time.sleep(kill_at)
        kill()
        submitter.join()
        t_killed = time.monotonic()
        recover()
        with self.client() as c:
            self.summary.keys_in_flight += retry_lost(c, requests, self.receiver.url)
        client.close()
        markers = {r.marker for r in requests}
        executions: dict[str, tuple[str, str]] = {}

        def settled() -> bool:
            nonlocal executions
            executions = trial_executions(self.db, markers, self.seen)  # type: ignore[arg-type]
            return all(st in TERMINAL for st, _m in executions.values())

        def delivered() -> bool:
            ids = ",".join(f"'{eid}'" for eid in executions) or "''"
            return not rows(self.db, "SELECT 1 FROM webhook_deliveries WHERE status IN ('pending', 'sending') "  # type: ignore[arg-type]
                                     f"AND execution_id IN ({ids})")

        t_recovered = time.monotonic()
        if not wait_until(settled, 120):
            self.log(f"trial {n}: executions still running after 120 s")
        t_settled = time.monotonic()
        wait_until(delivered, 60)
        if os.environ.get("CRASH_TRIALS_VERBOSE"):
            self.log(f"trial {n}: kill at {kill_at:.1f}s, recovered in {t_recovered - t_killed:.1f}s, settled {t_settled - t_recovered:.1f}s after recovery, "
                     f"delivered {time.monotonic() - t_settled:.1f}s later")
        time.sleep(0.2)  # the receiver records a delivery before the sender marks it: nothing is in flight now
        bad = check(self.db, self.receiver, requests, executions, self.account_id)
        for problem in bad:
            self.log(f"trial {n}: VIOLATION {problem}")
        self.summary.violations += [f"trial {n}: {b}" for b in bad]
        self.summary.trials += 1
        self.summary.executions += len(executions)
        self.summary.accepted += sum(1 for r in requests for st, _e in r.answers if st == 202)
        self.summary.lost_answers += sum(1 for r in requests if r.lost)
        self.seen |= set(executions)

    def finish(self, started: float) -> Summary:
        for path in self.workdir.glob(f"{self.counter.name}.*"):
            runs = path.read_text().split()
            self.summary.reruns += len(runs) - len(set(runs))
        self.summary.seconds = time.monotonic() - started
        self.receiver.close()
        if self.db is not None:
            self.db.dispose()
        return self.summary


def run_embedded(trials: int, *, seed: int, workdir: Path, log: Callable[[str], None] = print) -> Summary:
    """SIGKILL `nodeloom serve` (SQLite, its own workers) at random moments; start it again each time."""
    started = time.monotonic()
    rng = random.Random(seed)
    h = Harness("embedded", workdir, rng, log)
    data = workdir / "data"
    env = base_env({"NODELOOM_DATA_DIR": str(data), "NODELOOM_WORKER_CONCURRENCY": "4"})
    h.setup(env, f"sqlite:///{(data / 'nodeloom.db').resolve()}")
    server: list[Proc] = []

    def start() -> None:
        for _ in range(5):  # a port another process took meanwhile: the server exits, try another
            port = free_port()
            h.api_url = f"http://127.0.0.1:{port}"
            server.append(Proc(["serve", "--port", str(port)], env, workdir / "server.log"))
            if wait_http(h.api_url, proc=server[-1]) and h.ours(server[-1]):
                return
            server[-1].kill()
        raise RuntimeError(f"the server did not start: see {workdir / 'server.log'}")

    def kill() -> None:
        if not server[-1].alive():
            h.summary.unexpected_exits += 1
        server[-1].kill()
        h.summary.kills += 1

    def recover() -> None:
        start()

    start()
    try:
        h.publish()
        for n in range(trials):
            h.trial(n, kill, recover)
    finally:
        server[-1].stop()
    return h.finish(started)


@contextlib.contextmanager
def postgres_database(admin: str = PG_ADMIN) -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    import psycopg

    name = "nl_crash_" + secrets.token_hex(5)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_celery(trials: int, *, seed: int, workdir: Path, redis_url: str, log: Callable[[str], None] = print,
               workers: int = 2, concurrency: int = 3) -> Summary:
    """One API process (never killed) and `workers` Celery workers on PostgreSQL + Redis: SIGKILL a random worker
    at random moments and start a new one in its place each time."""
    import redis

    started = time.monotonic()
    rng = random.Random(seed)
    h = Harness("celery", workdir, rng, log)
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    with postgres_database() as pg_url:
        env = base_env({"NODELOOM_DATA_DIR": str(workdir / "data"), "NODELOOM_DATABASE_URL": pg_url,
                        "NODELOOM_QUEUE": "celery", "NODELOOM_BROKER_URL": redis_url, "NODELOOM_REDIS_URL": redis_url})
        cli(env, "migrate")
        h.setup(env, pg_url)
        port = free_port()
        h.api_url = f"http://127.0.0.1:{port}"
        api = Proc(["serve", "--port", str(port)], env, workdir / "api.log")
        pool: list[Proc] = []

        def spawn() -> None:
            pool.append(Proc(["worker", "--queues", "cpu,io,gpu", "--concurrency", str(concurrency)], env,
                             workdir / "workers.log"))

        def kill() -> None:
            for proc in pool:
                if not proc.alive():
                    h.summary.unexpected_exits += 1
            pool[:] = [p for p in pool if p.alive()]
            if pool:
                victim = rng.choice(pool)
                victim.kill()
                pool.remove(victim)
                h.summary.kills += 1
            while len(pool) < workers:
                spawn()

        try:
            wait_http(h.api_url)
            for _ in range(workers):
                spawn()
            h.publish()
            for n in range(trials):
                h.trial(n, kill, lambda: None)
        finally:
            for proc in pool:
                proc.stop()
            api.stop()
            summary = h.finish(started)
            broker.flushdb()
            broker.close()
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["embedded", "celery", "both"], default="both")
    parser.add_argument("--trials", type=int, default=200, help="trials per mode (default 200)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="keep data and logs here (default: a temp dir)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="Redis for the Celery mode (flushed)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="nodeloom-crash-"))
    print(f"crash trials: seed={seed} workdir={root}", flush=True)
    summaries = []
    for mode in (["embedded", "celery"] if args.mode == "both" else [args.mode]):
        workdir = root / mode
        workdir.mkdir(parents=True, exist_ok=True)
        log = lambda line: print(line, flush=True)  # noqa: E731
        if mode == "embedded":
            summaries.append(run_embedded(args.trials, seed=seed, workdir=workdir, log=log))
        else:
            summaries.append(run_celery(args.trials, seed=seed, workdir=workdir, redis_url=args.redis, log=log))
        print(summaries[-1].line(), flush=True)
    print("summary:")
    for s in summaries:
        print("  " + s.line())
    if args.workdir is None and not any(s.violations for s in summaries):
        shutil.rmtree(root, ignore_errors=True)
    return 1 if any(s.violations for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
