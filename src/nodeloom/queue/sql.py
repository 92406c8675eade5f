"""The `sql` queue backend: a durable jobs table with leases and heartbeats.

Claiming is one transaction that only one worker can win: `BEGIN IMMEDIATE` on SQLite,
`FOR UPDATE SKIP LOCKED` on PostgreSQL. A job whose lease expired (its worker died) is claimable
again, and the attempt number fences the stale worker's late writes.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.queue.base import Claim
from nodeloom.storage.db import Database
from nodeloom.storage.models import Job

#: picks which accounts may not start more work now (per-plan concurrency caps)
CapFilter = Callable[[Session], set[str]]


class SqlQueue:
    def __init__(self, db: Database, *, clock: Clock, lease_seconds: float, cap_filter: CapFilter | None = None):
        self.db = db
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.cap_filter = cap_filter

    def enqueue(self, session: Session, *, execution_id: str, account_id: str, queue: str = "cpu") -> None:
        session.add(Job(execution_id=execution_id, account_id=account_id, queue=queue, state="queued",
                        attempts=0, available_at=self.clock.time(), created_at=self.clock.now()))

    def claim(self, *, worker_id: str, queues: tuple[str, ...] = ("cpu", "io", "gpu")) -> Claim | None:
        now = self.clock.time()
        with self.db.write() as s:
            blocked = self.cap_filter(s) if self.cap_filter else set()
            q = (select(Job)
                 .where(Job.queue.in_(queues), Job.available_at <= now,
                        or_(Job.state == "queued", Job.lease_expires_at < now))
                 .order_by(Job.seq).limit(1 if not blocked else 64))
            if blocked:
                q = q.where(Job.account_id.not_in(blocked))
            if not self.db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            job = s.scalars(q).first()
            if job is None:
                return None
            job.state = "claimed"
            job.lease_owner = worker_id
            job.lease_expires_at = now + self.lease_seconds
            job.attempts += 1
            return Claim(execution_id=job.execution_id, account_id=job.account_id, attempt=job.attempts,
                         worker_id=worker_id)

    def claim_execution(self, *, execution_id: str, worker_id: str) -> Claim | None:
        """Claim one named job (the Celery task for it arrived). None when it is gone, leased by a live
        worker, or its account is at its concurrency cap (the caller retries later)."""
        now = self.clock.time()
        with self.db.write() as s:
            q = select(Job).where(Job.execution_id == execution_id)
            if not self.db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            job = s.scalars(q).first()
            if job is None or (job.state == "claimed" and (job.lease_expires_at or 0) >= now):
                return None
            if self.cap_filter and job.account_id in self.cap_filter(s):
                return None
            job.state = "claimed"
            job.lease_owner = worker_id
            job.lease_expires_at = now + self.lease_seconds
            job.attempts += 1
            return Claim(execution_id=job.execution_id, account_id=job.account_id, attempt=job.attempts,
                         worker_id=worker_id)

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
        with self.db.write() as s:
            res = s.execute(update(Job).where(Job.execution_id == claim.execution_id,
                                              Job.lease_owner == claim.worker_id,
                                              Job.attempts == claim.attempt)
                            .values(lease_expires_at=self.clock.time() + self.lease_seconds))
            return bool(res.rowcount)

    def ack(self, claim: Claim, session: Session | None = None) -> None:
        stmt = delete(Job).where(Job.execution_id == claim.execution_id, Job.attempts == claim.attempt)
        if session is not None:
            session.execute(stmt)
            return
        with self.db.write() as s:
            s.execute(stmt)

    def release(self, claim: Claim, *, delay_s: float = 0.0) -> None:
        with self.db.write() as s:
            s.execute(update(Job).where(Job.execution_id == claim.execution_id, Job.attempts == claim.attempt)
                      .values(state="queued", lease_owner=None, lease_expires_at=None,
                              available_at=self.clock.time() + delay_s))

    def position(self, session: Session, execution_id: str) -> int | None:
        job = session.scalar(select(Job).where(Job.execution_id == execution_id))
        if job is None or job.state != "queued":
            return None
        ahead = session.scalar(select(func.count()).select_from(Job)
                               .where(Job.state == "queued", Job.queue == job.queue, Job.seq < job.seq))
        return int(ahead or 0)

    def remove(self, session: Session, execution_id: str) -> None:
        session.execute(delete(Job).where(Job.execution_id == execution_id))

    def depth(self) -> dict[str, int]:
        with self.db.read() as s:
            rows = s.execute(select(Job.queue, Job.state, func.count()).group_by(Job.queue, Job.state)).all()
        return {f"{q}:{state}": int(n) for q, state, n in rows}
