"""The `sql` queue backend: a durable jobs table with leases and heartbeats.

Claiming is one transaction that only one worker can win: `BEGIN IMMEDIATE` on SQLite,
`FOR UPDATE SKIP LOCKED` on PostgreSQL. A job whose lease expired (its worker died) is claimable
again, and the attempt number fences the stale worker's late writes.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import Select, Table, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.queue.base import QUEUES, CapFilter, Claim, Room, ServedLedger, StartHook, fair_order, with_start_fallback
from nodeloom.storage.db import Database
from nodeloom.storage.models import Job

# Room, CapFilter and StartHook moved to queue.base (they are the protocol's); importable from here as before
__all__ = ["CapFilter", "Claim", "Room", "SqlQueue", "StartHook"]

T = TypeVar("T")

# statements built once (building and keying one costs more than SQLite takes to answer it)
_CLAIMABLE = (Job.queue.in_(bindparam("queues", expanding=True)), Job.available_at <= bindparam("now"),
              or_(Job.state == "queued", Job.lease_expires_at < bindparam("now")))


def _candidates(*, blocked: bool) -> Select[Any]:
    """Each account's oldest claimable jobs, at most `depth` of each (with `blocked`: not those accounts')."""
    rn = func.row_number().over(partition_by=Job.account_id, order_by=Job.seq).label("rn")
    ranked = select(Job.execution_id, Job.account_id, Job.seq, rn).where(*_CLAIMABLE)
    if blocked:
        ranked = ranked.where(Job.account_id.not_in(bindparam("blocked", expanding=True)))
    per_account = ranked.subquery()
    return (select(per_account.c.execution_id, per_account.c.account_id, per_account.c.seq)
            .where(per_account.c.rn <= bindparam("depth")))


_CANDIDATES = {False: _candidates(blocked=False), True: _candidates(blocked=True)}
_RUNNING = (select(Job.account_id, func.count()).where(Job.state == "claimed", Job.lease_expires_at >= bindparam("now"))
            .group_by(Job.account_id))


def live_claims(session: Session, now: float) -> dict[str, int]:
    """Jobs claimed under a lease still running, per account (read in the caller's transaction)."""
    return {account_id: int(n) for account_id, n in session.connection().execute(_RUNNING, {"now": now}).all()}
_JOBS = select(Job).where(Job.execution_id.in_(bindparam("wanted", expanding=True)), *_CLAIMABLE)
_JOBS_SKIP_LOCKED = _JOBS.with_for_update(skip_locked=True)
_JOB_PLACE = select(Job.state, Job.queue, Job.seq).where(Job.execution_id == bindparam("execution_id"))
_AHEAD = select(func.count()).select_from(Job).where(Job.state == "queued", Job.queue == bindparam("queue"),
                                                     Job.seq < bindparam("seq"))
_JOBS_TABLE = cast(Table, Job.__table__)
_INSERT_JOB = insert(_JOBS_TABLE)
# (no session synchronisation: matching a DELETE's criteria against every object the session holds — hundreds of node
# rows in a run's last batch — costs more than the statement)
_ACK = (delete(Job).where(Job.execution_id == bindparam("execution_id"), Job.attempts == bindparam("attempt"))
        .execution_options(synchronize_session=False))


class SqlQueue:
    """QueueBackend on the jobs table: the source of truth for every deployment (Celery only adds messages)."""

    def __init__(self, db: Database, *, clock: Clock, lease_seconds: float, cap_filter: CapFilter | None = None):
        self.db = db
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.cap_filter = cap_filter
        self.served = ServedLedger()  # whom this process's claims served last: fair turns on a tie

    def enqueue(self, session: Session, *, execution_id: str, account_id: str, queue: str = "cpu") -> None:
        session.connection().execute(_INSERT_JOB, dict(
            execution_id=execution_id, account_id=account_id, queue=queue, state="queued", attempts=0,
            available_at=self.clock.time(), created_at=self.clock.now(), lease_owner=None, lease_expires_at=None))

    def claim(self, *, worker_id: str, queues: tuple[str, ...] = QUEUES) -> Claim | None:
        claims = self.claim_many(worker_id=worker_id, queues=queues, limit=1)
        return claims[0][0] if claims else None

    def claim_many(self, *, worker_id: str, queues: tuple[str, ...] = QUEUES, limit: int = 1,
                   start: StartHook[T] | None = None) -> list[tuple[Claim, T | None]]:
        """Claim up to `limit` jobs, oldest first, in one transaction, never letting an account pass its
        concurrency cap; `start` runs for each inside that transaction. Returns (claim, start's result).

        If `start` fails, that transaction is rolled back and the jobs are claimed again without it (the
        runner then starts each on its own), so a poisoned execution uses up its attempts instead of
        blocking the queue."""
        if limit < 1:
            return []
        return with_start_fallback(lambda hook: self._claim(worker_id, queues, limit, hook), start)

    def _claim(self, worker_id: str, queues: tuple[str, ...], limit: int,
               start: StartHook[T] | None) -> list[tuple[Claim, T | None]]:
        now = self.clock.time()
        with self.db.write() as s:
            room = self.cap_filter(s) if self.cap_filter else None
            blocked = room.blocked if room is not None else set()
            # the room read the live claims per account already (limits' room does): the same counts order the turns
            counted: dict[str, int] | None = getattr(room, "running", None)
            running = dict(counted) if counted is not None else None
            # each account's oldest claimable jobs (as many as one claim could take of them — more on PostgreSQL, where
            # rows other claimers hold are skipped, not waited for), then their turns
            depth = limit if self.db.is_sqlite else limit * 4 + 16
            params: dict[str, Any] = {"queues": list(queues), "now": now, "depth": depth}
            if blocked:
                params["blocked"] = list(blocked)
            # plain statements on the transaction's connection (no ORM pass, nothing pending to flush)
            candidates = s.connection().execute(_CANDIDATES[bool(blocked)], params).all()
            if not candidates:
                return []
            if running is None:
                running = live_claims(s, now)
            turns = fair_order(candidates, account=lambda r: str(r[1]), seq=lambda r: int(r[2]), running=running,
                               served=self.served.view())
            wanted = [str(r[0]) for r in turns[:depth if room is None else limit * 4 + 16]]
            q = _JOBS if self.db.is_sqlite else _JOBS_SKIP_LOCKED
            jobs = {job.execution_id: job for job in s.scalars(q, {"wanted": wanted, "queues": list(queues),
                                                                   "now": now}).all()}
            chosen: list[Job] = []
            for execution_id in wanted:
                job = jobs.get(execution_id)
                if job is None:
                    continue  # another worker took it meanwhile
                if len(chosen) >= limit:
                    break
                if room is not None and not room.take(job.account_id):
                    continue
                chosen.append(job)
            out: list[tuple[Claim, T | None]] = []
            for job in sorted(chosen, key=lambda j: j.seq):  # chosen fairly, started oldest first
                self.served.mark(job.account_id)
                claim = self._take(job, worker_id, now)
                out.append((claim, start(s, claim) if start is not None else None))
            return out

    def _take(self, job: Job, worker_id: str, now: float) -> Claim:
        job.state = "claimed"
        job.lease_owner = worker_id
        job.lease_expires_at = now + self.lease_seconds
        job.attempts += 1
        return Claim(execution_id=job.execution_id, account_id=job.account_id, attempt=job.attempts,
                     worker_id=worker_id)

    def claim_execution(self, *, execution_id: str, worker_id: str,
                        start: StartHook[T] | None = None) -> tuple[Claim, T | None] | None:
        """Claim one named job (the Celery task for it arrived) and run `start` in that transaction, as
        `claim_many` does (with the same fallback when it fails). None when the job is gone, leased by a
        live worker, or its account is at its concurrency cap (the caller retries later)."""
        return with_start_fallback(lambda hook: self._claim_named(execution_id, worker_id, hook), start)

    def _claim_named(self, execution_id: str, worker_id: str,
                     start: StartHook[T] | None) -> tuple[Claim, T | None] | None:
        now = self.clock.time()
        with self.db.write() as s:
            q = select(Job).where(Job.execution_id == execution_id)
            if not self.db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            job = s.scalars(q).first()
            if job is None or (job.state == "claimed" and (job.lease_expires_at or 0) >= now):
                return None
            if self.cap_filter and not self.cap_filter(s).take(job.account_id):
                return None
            claim = self._take(job, worker_id, now)
            return claim, (start(s, claim) if start is not None else None)

    def is_waiting(self, execution_id: str) -> bool:
        """The job is still queued (e.g. held back by its account's concurrency cap)."""
        with self.db.read() as s:
            return s.scalar(select(Job.state).where(Job.execution_id == execution_id)) == "queued"

    def expired(self, *, limit: int = 500) -> list[tuple[str, str]]:
        """Jobs whose worker stopped heart-beating: (execution_id, queue), to be handed out again."""
        now = self.clock.time()
        with self.db.write() as s:
            rows = s.execute(select(Job.execution_id, Job.queue)
                             .where(Job.state == "claimed", Job.lease_expires_at < now).limit(limit)).all()
            if rows:
                s.execute(update(Job).where(Job.execution_id.in_([r[0] for r in rows]), Job.state == "claimed",
                                            Job.lease_expires_at < now)
                          .values(state="queued", lease_owner=None, lease_expires_at=None))
            return [(r[0], r[1]) for r in rows]

    def stale_queued(self, *, older_than: float, limit: int = 500) -> list[tuple[str, str]]:
        """Queued jobs not claimed for `older_than` seconds (their broker message may be lost)."""
        cutoff = self.clock.time() - older_than
        with self.db.write() as s:
            rows = s.execute(select(Job.execution_id, Job.queue)
                             .where(Job.state == "queued", Job.available_at < cutoff).limit(limit)).all()
            if rows:
                s.execute(update(Job).where(Job.execution_id.in_([r[0] for r in rows]))
                          .values(available_at=self.clock.time()))
            return [(r[0], r[1]) for r in rows]

    def heartbeat(self, claim: Claim) -> bool:
        stmt = (update(Job)
                .where(Job.execution_id == claim.execution_id, Job.lease_owner == claim.worker_id,
                       Job.attempts == claim.attempt)
                .values(lease_expires_at=self.clock.time() + self.lease_seconds))
        with self.db.write() as s:
            # Core, on the session's connection: a CursorResult, whose rowcount says whether the fence held
            return s.connection().execute(stmt).rowcount > 0

    def ack(self, claim: Claim, session: Session | None = None) -> None:
        params = {"execution_id": claim.execution_id, "attempt": claim.attempt}
        if session is not None:
            session.execute(_ACK, params)  # (flushes first: the claim's own change to the row may be pending)
            return
        with self.db.write() as s:
            s.execute(_ACK, params)

    def release(self, claim: Claim, *, delay_s: float = 0.0) -> None:
        with self.db.write() as s:
            s.execute(update(Job).where(Job.execution_id == claim.execution_id, Job.attempts == claim.attempt)
                      .values(state="queued", lease_owner=None, lease_expires_at=None,
                              available_at=self.clock.time() + delay_s))

    def position(self, session: Session, execution_id: str) -> int | None:
        job = session.execute(_JOB_PLACE, {"execution_id": execution_id}).first()
        if job is None or job.state != "queued":
            return None
        ahead = session.scalar(_AHEAD, {"queue": job.queue, "seq": job.seq})
        return int(ahead or 0)

    def remove(self, session: Session, execution_id: str) -> None:
        session.execute(delete(Job).where(Job.execution_id == execution_id))

    def depth(self) -> dict[str, int]:
        with self.db.read() as s:
            rows = s.execute(select(Job.queue, Job.state, func.count()).group_by(Job.queue, Job.state)).all()
        return {f"{q}:{state}": int(n) for q, state, n in rows}

    def sweep(self, *, stale_after: float) -> int:
        """Put jobs whose lease expired back to `queued`; returns how many.

        Not needed for correctness here: `claim_many` already takes a job whose lease expired. Resetting
        them keeps what the queue reports honest (`depth`, `is_waiting` and `position` count a dead worker's
        job as waiting, which it is) and fences the dead worker's heartbeat at once, the same as the Celery
        backend's sweep does. `stale_after` is for lost broker messages; the SQL queue has none."""
        return len(self.expired())

    def check(self) -> None:
        """A cheap round trip to the database (readiness); raises when it is unreachable."""
        with self.db.read() as s:
            s.execute(text("SELECT 1"))
