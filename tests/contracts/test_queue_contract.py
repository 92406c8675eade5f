"""One set of cases for the QueueBackend contract, run over every backend: SqlQueue on SQLite and on
PostgreSQL, CeleryQueue (rows in SQL, messages on a real Redis broker) and MemoryQueue.

Callers type the queue as `QueueBackend` and must not care which one they hold; this is where that is
checked. Time comes from a FrozenClock, so lease expiry and delayed release never sleep.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from tests.support.server import require_service

from nodeloom.clock import FrozenClock
from nodeloom.queue.base import Claim, QueueBackend, Room
from nodeloom.queue.celery import CeleryQueue, make_celery
from nodeloom.queue.memory import MemoryQueue
from nodeloom.queue.sql import SqlQueue
from nodeloom.storage.db import Database
from nodeloom.storage.migrate import upgrade
from nodeloom.storage.models import Job

LEASE = 10.0
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_DB = 15  # tests/scale uses 8–14, the rate-limit tests 0

BACKENDS = ["sql-sqlite", "sql-postgres", "celery-redis", "memory"]


# --- databases, once per run -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path_factory.mktemp('queue-contract') / 'jobs.db'}"
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[Database]:
    """A fresh database for this run, migrated, dropped at the end (as tests/platform/test_postgres.py)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"nodeloom_contract_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        db = Database(url)
        yield db
        db.dispose()
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- what every backend is built with ----------------------------------------------------------------------

class Caps:
    """The cap filter the queue is built with: per test, accounts to hold back and how many more others may
    start in one claim (the runtime's Room comes from LimitsService.claim_room)."""

    def __init__(self) -> None:
        self.blocked: set[str] = set()
        self.allowance: dict[str, int] = {}

    def room(self, session: Session) -> Room:
        assert isinstance(session, Session)  # read in the claim's transaction
        return _Room(set(self.blocked), dict(self.allowance))


@dataclass
class _Room:
    blocked: set[str]
    allowance: dict[str, int]

    def take(self, account_id: str) -> bool:
        if account_id in self.blocked:
            return False
        if account_id in self.allowance:
            if self.allowance[account_id] <= 0:
                return False
            self.allowance[account_id] -= 1
        return True


@dataclass
class Backend:
    name: str
    queue: QueueBackend
    #: the caller's database: enqueue / remove / position / ack run in its transactions
    db: Database
    clock: FrozenClock
    caps: Caps
    #: broker messages published so far (Celery only), as (queue, execution_id)
    published: Callable[[], list[tuple[str, str]]] | None = None
    seen: list[str] = field(default_factory=list)

    def enqueue(self, execution_id: str, *, account_id: str = "acct_a", queue: str = "cpu") -> str:
        with self.db.write() as s:
            self.queue.enqueue(s, execution_id=execution_id, account_id=account_id, queue=queue)
        return execution_id

    def position(self, execution_id: str) -> int | None:
        with self.db.read() as s:
            return self.queue.position(s, execution_id)


def _clear_jobs(db: Database) -> None:
    with db.write() as s:
        s.execute(sa.delete(Job))


@contextmanager
def build(name: str, request: pytest.FixtureRequest, sqlite_db: Database) -> Iterator[Backend]:
    clock, caps = FrozenClock(), Caps()
    if name == "memory":
        # no database of its own: its hooks get an unbound session; the caller's transactions are SQLite's
        yield Backend(name, MemoryQueue(clock=clock, lease_seconds=LEASE, cap_filter=caps.room), sqlite_db, clock,
                      caps)
        return
    db: Database = request.getfixturevalue("postgres_db") if name == "sql-postgres" else sqlite_db
    _clear_jobs(db)
    sql = SqlQueue(db, clock=clock, lease_seconds=LEASE, cap_filter=caps.room)
    if name != "celery-redis":
        yield Backend(name, sql, db, clock, caps)
        return
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    broker = redis.Redis.from_url(url)
    broker.flushdb()
    app = make_celery(url)

    def published() -> list[tuple[str, str]]:
        out = []
        for q in ("cpu", "io", "gpu"):
            for raw in reversed(broker.lrange(q, 0, -1)):  # LPUSHed: the oldest is last
                out.append((q, json.loads(raw)["headers"]["argsrepr"].strip("[]'")))
        return out

    try:
        yield Backend(name, CeleryQueue(sql, app), db, clock, caps, published)
    finally:
        app.close()
        broker.flushdb()
        broker.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, sqlite_db: Database) -> Iterator[Backend]:
    with build(request.param, request, sqlite_db) as b:
        yield b


def new_id() -> str:
    return "exec_" + secrets.token_hex(6)


def ids(claims: list[tuple[Claim, Any]]) -> list[str]:
    return [c.execution_id for c, _ in claims]


class Boom(Exception):
    pass


# --- the contract -------------------------------------------------------------------------------------------

def test_enqueue_claim_heartbeat_ack(backend: Backend) -> None:
    q = backend.queue
    eid = backend.enqueue(new_id(), account_id="acct_a", queue="cpu")
    assert q.depth() == {"cpu:queued": 1}
    assert q.is_waiting(eid)

    claim = q.claim(worker_id="w1")
    assert claim == Claim(execution_id=eid, account_id="acct_a", attempt=1, worker_id="w1")
    assert q.depth() == {"cpu:claimed": 1}
    assert not q.is_waiting(eid)
    assert q.claim(worker_id="w2") is None  # leased

    assert q.heartbeat(claim)
    q.ack(claim)
    assert q.depth() == {}
    assert not q.heartbeat(claim)
    assert q.claim(worker_id="w1") is None


def test_claims_are_oldest_first_and_only_from_the_queues_asked_for(backend: Backend) -> None:
    q = backend.queue
    a, b, c, d = (backend.enqueue(new_id(), queue=name) for name in ("cpu", "io", "cpu", "cpu"))
    assert q.claim_many(worker_id="w", limit=0) == []
    assert ids(q.claim_many(worker_id="w", queues=("cpu",), limit=2)) == [a, c]
    assert ids(q.claim_many(worker_id="w", queues=("gpu",), limit=5)) == []
    assert ids(q.claim_many(worker_id="w", limit=5)) == [b, d]  # every queue by default
    assert q.depth() == {"cpu:claimed": 3, "io:claimed": 1}


def test_an_expired_lease_is_claimable_again_and_fences_the_stale_claim(backend: Backend) -> None:
    q, clock = backend.queue, backend.clock
    eid = backend.enqueue(new_id())
    stale = q.claim(worker_id="w1")
    assert stale is not None

    # heartbeats keep it leased past the first lease period
    clock.advance(LEASE * 0.75)
    assert q.heartbeat(stale)
    clock.advance(LEASE * 0.75)
    assert q.claim(worker_id="w2") is None

    clock.advance(LEASE + 1)  # w1 died
    fresh = q.claim(worker_id="w2")
    assert fresh == Claim(execution_id=eid, account_id="acct_a", attempt=2, worker_id="w2")

    # the stale claim can neither extend, finish nor hand back what w2 holds now
    assert not q.heartbeat(stale)
    q.ack(stale)
    q.release(stale)
    assert q.depth() == {"cpu:claimed": 1}
    assert not q.is_waiting(eid)
    with backend.db.write() as s:
        q.ack(stale, s)
    assert q.depth() == {"cpu:claimed": 1}

    assert q.heartbeat(fresh)
    q.ack(fresh)
    assert q.depth() == {}


def test_release_hands_the_job_back_after_its_delay(backend: Backend) -> None:
    q, clock = backend.queue, backend.clock
    eid = backend.enqueue(new_id())
    first = q.claim(worker_id="w1")
    assert first is not None
    q.release(first, delay_s=30)
    assert q.is_waiting(eid) and backend.position(eid) == 0
    assert not q.heartbeat(first)  # handed back: no longer its lease
    assert q.claim(worker_id="w2") is None
    clock.advance(29)
    assert q.claim(worker_id="w2") is None
    clock.advance(2)
    second = q.claim(worker_id="w2")
    assert second is not None and second.attempt == 2

    q.release(second)  # no delay: claimable at once
    third = q.claim(worker_id="w3")
    assert third is not None and third.attempt == 3


def test_the_cap_filter_holds_back_capped_accounts_while_others_pass(backend: Backend) -> None:
    q, caps = backend.queue, backend.caps
    caps.blocked = {"acct_capped"}
    caps.allowance = {"acct_one": 1}
    capped = backend.enqueue(new_id(), account_id="acct_capped")
    one_a = backend.enqueue(new_id(), account_id="acct_one")
    one_b = backend.enqueue(new_id(), account_id="acct_one")
    free = backend.enqueue(new_id(), account_id="acct_free")

    assert ids(q.claim_many(worker_id="w", limit=10)) == [one_a, free]
    assert q.is_waiting(capped) and q.is_waiting(one_b)
    assert q.claim_execution(execution_id=capped, worker_id="w") is None  # capped: the task retries later
    assert q.is_waiting(capped)

    caps.blocked, caps.allowance = set(), {}
    assert ids(q.claim_many(worker_id="w", limit=10)) == [capped, one_b]


def test_claim_execution_takes_the_named_job(backend: Backend) -> None:
    q, clock = backend.queue, backend.clock
    a = backend.enqueue(new_id())
    b = backend.enqueue(new_id(), account_id="acct_b")
    claimed = q.claim_execution(execution_id=b, worker_id="w1")
    assert claimed == (Claim(execution_id=b, account_id="acct_b", attempt=1, worker_id="w1"), None)
    assert q.claim_execution(execution_id=b, worker_id="w2") is None  # a live worker holds it
    assert q.claim_execution(execution_id="exec_missing", worker_id="w2") is None
    [(other, _)] = q.claim_many(worker_id="w2", limit=5)
    assert other.execution_id == a
    q.ack(other)

    clock.advance(LEASE + 1)
    again = q.claim_execution(execution_id=b, worker_id="w2")
    assert again is not None and again[0].attempt == 2

    # the broker's countdown did the waiting: a named claim does not wait for a released job's delay
    q.release(again[0], delay_s=60)
    assert q.claim(worker_id="w3") is None
    third = q.claim_execution(execution_id=b, worker_id="w3")
    assert third is not None and third[0].attempt == 3


def test_is_waiting(backend: Backend) -> None:
    q, clock = backend.queue, backend.clock
    assert not q.is_waiting("exec_missing")
    eid = backend.enqueue(new_id())
    assert q.is_waiting(eid)
    claim = q.claim(worker_id="w")
    assert claim is not None and not q.is_waiting(eid)
    clock.advance(LEASE + 1)
    assert q.sweep(stale_after=3600) == 1  # the dead worker's job is waiting again, and says so
    assert q.is_waiting(eid)
    q.ack(claim)  # the attempt still matches: its worker finished after all
    assert not q.is_waiting(eid)


def test_sweep_hands_back_expired_leases_only(backend: Backend) -> None:
    q, clock = backend.queue, backend.clock
    dead, alive, queued = (backend.enqueue(new_id()) for _ in range(3))
    d = q.claim_execution(execution_id=dead, worker_id="w1")
    assert d is not None
    clock.advance(LEASE / 2)
    a = q.claim_execution(execution_id=alive, worker_id="w2")
    assert a is not None
    clock.advance(LEASE / 2 + 1)  # dead's lease ran out; alive's did not
    assert q.sweep(stale_after=3600) == 1
    assert q.depth() == {"cpu:queued": 2, "cpu:claimed": 1}
    assert not q.heartbeat(d[0])  # fenced at once
    assert q.heartbeat(a[0])
    assert q.sweep(stale_after=3600) == 0
    assert [q.is_waiting(e) for e in (dead, alive, queued)] == [True, False, True]
    retry = q.claim(worker_id="w3")
    assert retry is not None and (retry.execution_id, retry.attempt) == (dead, 2)


def test_position_counts_queued_jobs_ahead_in_the_same_queue(backend: Backend) -> None:
    q = backend.queue
    a, b, c = (backend.enqueue(new_id()) for _ in range(3))
    io = backend.enqueue(new_id(), queue="io")
    assert [backend.position(e) for e in (a, b, c, io)] == [0, 1, 2, 0]
    assert backend.position("exec_missing") is None
    claim = q.claim(worker_id="w")
    assert claim is not None and claim.execution_id == a
    assert [backend.position(e) for e in (a, b, c)] == [None, 0, 1]


def test_remove_happens_with_the_callers_transaction(backend: Backend) -> None:
    q = backend.queue
    a, b = backend.enqueue(new_id()), backend.enqueue(new_id())
    with pytest.raises(Boom), backend.db.write() as s:
        q.remove(s, a)
        raise Boom
    assert q.is_waiting(a)
    with backend.db.write() as s:
        q.remove(s, a)
    assert not q.is_waiting(a)
    assert q.depth() == {"cpu:queued": 1}
    assert ids(q.claim_many(worker_id="w", limit=5)) == [b]


def test_a_rolled_back_enqueue_leaves_no_job(backend: Backend) -> None:
    q = backend.queue
    eid = new_id()
    with pytest.raises(Boom), backend.db.write() as s:
        q.enqueue(s, execution_id=eid, account_id="acct_a", queue="cpu")
        raise Boom
    assert q.depth() == {}
    assert not q.is_waiting(eid) and backend.position(eid) is None
    assert q.claim(worker_id="w") is None
    assert q.claim_execution(execution_id=eid, worker_id="w") is None
    backend.enqueue(eid)  # the execution can still be queued for real
    assert q.is_waiting(eid)


def test_the_start_hook_runs_in_the_claim_and_its_result_travels_with_it(backend: Backend) -> None:
    q = backend.queue
    a, b, c = (backend.enqueue(new_id()) for _ in range(3))

    def start(s: Session, claim: Claim) -> str:
        assert isinstance(s, Session)
        backend.seen.append(claim.execution_id)
        return f"started {claim.execution_id} #{claim.attempt}"

    claims = q.claim_many(worker_id="w", limit=2, start=start)
    assert [(cl.execution_id, result) for cl, result in claims] == [(a, f"started {a} #1"), (b, f"started {b} #1")]
    named = q.claim_execution(execution_id=c, worker_id="w", start=start)
    assert named is not None and named[1] == f"started {c} #1"
    assert backend.seen == [a, b, c]


def test_a_start_hook_that_acks_finishes_the_job_with_the_claim(backend: Backend) -> None:
    """The runner acks inside the claim's transaction when there is nothing to run (cancelled, gone)."""
    q = backend.queue
    done, run = backend.enqueue(new_id()), backend.enqueue(new_id())

    def start(s: Session, claim: Claim) -> str:
        if claim.execution_id == done:
            q.ack(claim, s)
            return "nothing to run"
        return "run"

    assert [(cl.execution_id, r) for cl, r in q.claim_many(worker_id="w", limit=5, start=start)] == [
        (done, "nothing to run"), (run, "run")]
    assert q.depth() == {"cpu:claimed": 1}
    assert not q.is_waiting(done) and q.claim_execution(execution_id=done, worker_id="w2") is None


def test_an_ack_in_a_rolled_back_transaction_keeps_the_job(backend: Backend) -> None:
    q = backend.queue
    eid = backend.enqueue(new_id())
    claim = q.claim(worker_id="w")
    assert claim is not None
    with pytest.raises(Boom), backend.db.write() as s:
        q.ack(claim, s)
        raise Boom
    assert q.depth() == {"cpu:claimed": 1} and q.heartbeat(claim)
    with backend.db.write() as s:
        q.ack(claim, s)
    assert q.depth() == {} and not q.is_waiting(eid)


def test_a_failing_start_hook_falls_back_to_claiming_without_it(backend: Backend,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    q = backend.queue
    first, second = backend.enqueue(new_id()), backend.enqueue(new_id())
    third = backend.enqueue(new_id())

    def start(s: Session, claim: Claim) -> str:
        if claim.execution_id in (second, third):
            raise RuntimeError("boom")
        return "started"

    with caplog.at_level(logging.ERROR, logger="nodeloom.queue"):
        claims = q.claim_many(worker_id="w", limit=2, start=start)
        # the failed attempt left nothing behind: the same jobs, claimed once, attempt 1, no results
        assert [(c.execution_id, c.attempt, r) for c, r in claims] == [(first, 1, None), (second, 1, None)]
        named = q.claim_execution(execution_id=third, worker_id="w", start=start)
        assert named is not None and (named[0].attempt, named[1]) == (1, None)
    assert q.depth() == {"cpu:claimed": 3}
    assert "claiming them without it" in caplog.text


def test_check_passes_when_the_backend_is_reachable(backend: Backend) -> None:
    backend.queue.check()


# --- what only one backend promises ---------------------------------------------------------------------------

@pytest.fixture
def celery(request: pytest.FixtureRequest, sqlite_db: Database) -> Iterator[Backend]:
    with build("celery-redis", request, sqlite_db) as b:
        yield b


def test_celery_publishes_only_what_committed(celery: Backend) -> None:
    assert celery.published is not None
    q = celery.queue
    lost = new_id()
    with pytest.raises(Boom), celery.db.write() as s:
        q.enqueue(s, execution_id=lost, account_id="acct_a", queue="cpu")
        raise Boom
    kept = new_id()
    with celery.db.write() as s:
        q.enqueue(s, execution_id=kept, account_id="acct_a", queue="io")
        assert celery.published() == []  # not before the row is there for the worker to claim
    assert celery.published() == [("io", kept)]


def test_celery_publishes_again_what_is_handed_back(celery: Backend) -> None:
    assert celery.published is not None
    q, clock = celery.queue, celery.clock
    a, b = celery.enqueue(new_id()), celery.enqueue(new_id())
    ca, cb = q.claim_execution(execution_id=a, worker_id="w"), q.claim_execution(execution_id=b, worker_id="w")
    assert ca is not None and cb is not None
    q.release(ca[0], delay_s=5)  # republished with a countdown
    clock.advance(LEASE + 1)
    assert q.sweep(stale_after=3600) == 1  # b's worker died: b is republished
    assert celery.published() == [("cpu", a), ("cpu", b), ("cpu", a), ("cpu", b)]


@pytest.fixture
def scratch(sqlite_db: Database) -> Iterator[Database]:
    with sqlite_db.write() as s:
        s.execute(sa.text("CREATE TABLE IF NOT EXISTS contract_scratch (execution_id TEXT)"))
        s.execute(sa.text("DELETE FROM contract_scratch"))
    yield sqlite_db


def _scratch_rows(db: Database) -> list[str]:
    with db.read() as s:
        return list(s.scalars(sa.text("SELECT execution_id FROM contract_scratch ORDER BY execution_id")))


def test_memory_queue_claims_in_the_databases_transaction_when_given_one(scratch: Database) -> None:
    """With a Database, the hooks' writes and the claim stand or fall together, as on the SQL queue."""
    q = MemoryQueue(clock=FrozenClock(), lease_seconds=LEASE, db=scratch)
    first, second = "exec_1", "exec_2"
    with scratch.write() as s:
        q.enqueue(s, execution_id=first, account_id="acct_a")
        q.enqueue(s, execution_id=second, account_id="acct_a")

    def start(s: Session, claim: Claim) -> str:
        s.execute(sa.text("INSERT INTO contract_scratch VALUES (:e)"), {"e": claim.execution_id})
        if claim.execution_id == second:
            raise RuntimeError("boom")  # the first hook's insert rolls back with this claim
        return "started"

    claims = q.claim_many(worker_id="w", limit=2, start=start)
    assert [(c.execution_id, c.attempt, r) for c, r in claims] == [(first, 1, None), (second, 1, None)]
    assert _scratch_rows(scratch) == []

    q2 = MemoryQueue(clock=FrozenClock(), lease_seconds=LEASE, db=scratch)
    with scratch.write() as s:
        q2.enqueue(s, execution_id="exec_3", account_id="acct_a")
    [(claim, result)] = q2.claim_many(worker_id="w", limit=2, start=start)
    assert (claim.execution_id, result) == ("exec_3", "started")
    assert _scratch_rows(scratch) == ["exec_3"]


def test_memory_queue_refuses_a_job_it_already_holds(sqlite_db: Database) -> None:
    q = MemoryQueue(clock=FrozenClock(), lease_seconds=LEASE)
    with sqlite_db.write() as s:
        q.enqueue(s, execution_id="exec_1", account_id="acct_a")
    with pytest.raises(ValueError), sqlite_db.write() as s:
        q.enqueue(s, execution_id="exec_1", account_id="acct_a")
    assert q.depth() == {"cpu:queued": 1}
