"""The `memory` queue backend: the whole QueueBackend contract in a dict, for tests and no-database runs.

Like httpx's MockTransport it is a real, small implementation rather than a mock: leases, heartbeats,
attempt fencing, the concurrency-cap Room, delayed release, positions and sweeping behave as `SqlQueue`
does (tests/contracts runs the same cases over both), with time from the injected Clock, so lease
expiry is a `clock.advance()` away instead of a sleep.

The SQL queue writes its row inside the caller's transaction (a transactional outbox: the execution and
its job commit together or not at all). A dict cannot join that transaction, so every change made
through the caller's session (`enqueue`, `remove`, `ack(claim, session)`) is applied by a callback in
`session.info["after_commit"]`, which `Database.write()` runs once the transaction has committed, and
never after a rollback (the convention `CeleryQueue.enqueue` uses to publish). The promise therefore holds
for sessions from `Database.write()` (the only kind callers pass); a session committed some other way
never applies them.

Claims run in a transaction too, because the hooks need one: `cap_filter(session)` and
`start(session, claim)` get a session of `db.write()` when a Database is given, else an unbound Session
(enough for hooks that do not touch a database). If that transaction fails (a start hook raised), the
claim's changes to the dict are undone, as the SQL rollback would, and the start fallback claims again.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.queue.base import QUEUES, CapFilter, Claim, ServedLedger, StartHook, fair_order, with_start_fallback
from nodeloom.storage.db import Database

__all__ = ["MemoryQueue"]

T = TypeVar("T")


@dataclass(frozen=True)
class _Job:
    """One job, as a row of the jobs table would hold it. Frozen: a change replaces it, so a claim that
    fails can put back exactly what it found."""

    seq: int
    execution_id: str
    account_id: str
    queue: str
    available_at: float
    state: str = "queued"  # queued | claimed
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: float | None = None


class MemoryQueue:
    """QueueBackend in process memory: jobs vanish with the process; one process, any number of threads."""

    def __init__(self, *, clock: Clock, lease_seconds: float, cap_filter: CapFilter | None = None,
                 db: Database | None = None):
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.cap_filter = cap_filter
        #: where the claim's hooks get their transaction; None: an unbound Session
        self.db = db
        self._jobs: dict[str, _Job] = {}
        self.served = ServedLedger()  # whom claims served last: fair turns on a tie
        self._seq = itertools.count(1)
        # re-entrant: a start hook may ack (or release) its own claim while the claim holds the lock
        self._lock = threading.RLock()

    # the caller's transaction -----------------------------------------------------------------------
    @staticmethod
    def _after_commit(session: Session, apply: Callable[[], None]) -> None:
        session.info.setdefault("after_commit", []).append(apply)

    def enqueue(self, session: Session, *, execution_id: str, account_id: str, queue: str = "cpu") -> None:
        """Queue the job once `session`'s transaction commits. Like the table's unique execution_id, a job
        that is already queued or claimed cannot be enqueued again (ValueError)."""
        with self._lock:
            if execution_id in self._jobs:
                raise ValueError(f"execution {execution_id} is already in the queue")
            # numbered now, as the row's sequence would be: claim order is enqueue order, and a rolled-back
            # enqueue leaves a gap
            job = _Job(seq=next(self._seq), execution_id=execution_id, account_id=account_id, queue=queue,
                       available_at=self.clock.time())
        self._after_commit(session, lambda: self._insert(job))

    def _insert(self, job: _Job) -> None:
        with self._lock:
            self._jobs.setdefault(job.execution_id, job)

    def remove(self, session: Session, execution_id: str) -> None:
        self._after_commit(session, lambda: self._remove(execution_id))

    def _remove(self, execution_id: str) -> None:
        with self._lock:
            self._jobs.pop(execution_id, None)

    def ack(self, claim: Claim, session: Session | None = None) -> None:
        if session is not None:
            self._after_commit(session, lambda: self._ack(claim))
        else:
            self._ack(claim)

    def _ack(self, claim: Claim) -> None:
        with self._lock:
            job = self._jobs.get(claim.execution_id)
            if job is not None and job.attempts == claim.attempt:
                del self._jobs[claim.execution_id]

    # claiming ---------------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """The claim's transaction, run like `Database.write()`: after_commit callbacks once it succeeded."""
        if self.db is not None:
            with self.db.write() as s:
                yield s
            return
        with Session() as s:
            yield s
            for callback in s.info.pop("after_commit", []):
                callback()

    def _take(self, job: _Job, worker_id: str, now: float) -> tuple[_Job, Claim]:
        taken = replace(job, state="claimed", lease_owner=worker_id, lease_expires_at=now + self.lease_seconds,
                        attempts=job.attempts + 1)
        self._jobs[job.execution_id] = taken
        return taken, Claim(execution_id=job.execution_id, account_id=job.account_id, attempt=taken.attempts,
                            worker_id=worker_id)

    def _undo(self, undo: list[tuple[_Job, _Job]]) -> None:
        """Put back what a failed claim took, unless something changed the job since."""
        with self._lock:
            for before, after in reversed(undo):
                if self._jobs.get(before.execution_id) is after:
                    self._jobs[before.execution_id] = before

    def claim(self, *, worker_id: str, queues: tuple[str, ...] = QUEUES) -> Claim | None:
        claims = self.claim_many(worker_id=worker_id, queues=queues, limit=1)
        return claims[0][0] if claims else None

    def claim_many(self, *, worker_id: str, queues: tuple[str, ...] = QUEUES, limit: int = 1,
                   start: StartHook[T] | None = None) -> list[tuple[Claim, T | None]]:
        if limit < 1:
            return []
        return with_start_fallback(lambda hook: self._claim(worker_id, queues, limit, hook), start)

    def _claim(self, worker_id: str, queues: tuple[str, ...], limit: int,
               start: StartHook[T] | None) -> list[tuple[Claim, T | None]]:
        undo: list[tuple[_Job, _Job]] = []
        try:
            with self._transaction() as s:
                room = self.cap_filter(s) if self.cap_filter else None
                blocked = room.blocked if room is not None else set()
                out: list[tuple[Claim, T | None]] = []
                with self._lock:
                    now = self.clock.time()
                    claimable = [j for j in self._jobs.values()
                                 if j.queue in queues and j.available_at <= now
                                 and j.account_id not in blocked and self._claimable(j, now)]
                    running = Counter(j.account_id for j in self._jobs.values()
                                      if j.state == "claimed" and (j.lease_expires_at or 0) >= now)
                    turns = fair_order(claimable, account=lambda j: j.account_id, seq=lambda j: j.seq,
                                       running=running, served=self.served.view())
                    # the same window the SQL query fetches, so a cap filter sees the same jobs
                    chosen: list[_Job] = []
                    for job in turns[:limit if room is None else limit * 4 + 16]:
                        if len(chosen) >= limit:
                            break
                        if room is not None and not room.take(job.account_id):
                            continue
                        chosen.append(job)
                    for job in sorted(chosen, key=lambda j: j.seq):  # chosen fairly, started oldest first
                        self.served.mark(job.account_id)
                        taken, claim = self._take(job, worker_id, now)
                        undo.append((job, taken))
                        out.append((claim, start(s, claim) if start is not None else None))
            return out
        except BaseException:
            self._undo(undo)
            raise

    @staticmethod
    def _claimable(job: _Job, now: float) -> bool:
        return job.state == "queued" or (job.lease_expires_at is not None and job.lease_expires_at < now)

    def claim_execution(self, *, execution_id: str, worker_id: str,
                        start: StartHook[T] | None = None) -> tuple[Claim, T | None] | None:
        return with_start_fallback(lambda hook: self._claim_named(execution_id, worker_id, hook), start)

    def _claim_named(self, execution_id: str, worker_id: str,
                     start: StartHook[T] | None) -> tuple[Claim, T | None] | None:
        undo: list[tuple[_Job, _Job]] = []
        try:
            with self._transaction() as s, self._lock:
                now = self.clock.time()
                job = self._jobs.get(execution_id)
                # as on SQL: a named claim ignores available_at (the broker's countdown did the waiting)
                if job is None or (job.state == "claimed" and (job.lease_expires_at or 0) >= now):
                    return None
                if self.cap_filter and not self.cap_filter(s).take(job.account_id):
                    return None
                taken, claim = self._take(job, worker_id, now)
                undo.append((job, taken))
                result = claim, (start(s, claim) if start is not None else None)
            return result
        except BaseException:
            self._undo(undo)
            raise

    # leases -----------------------------------------------------------------------------------------
    def heartbeat(self, claim: Claim) -> bool:
        with self._lock:
            job = self._jobs.get(claim.execution_id)
            if job is None or job.lease_owner != claim.worker_id or job.attempts != claim.attempt:
                return False
            self._jobs[claim.execution_id] = replace(job, lease_expires_at=self.clock.time() + self.lease_seconds)
            return True

    def release(self, claim: Claim, *, delay_s: float = 0.0) -> None:
        with self._lock:
            job = self._jobs.get(claim.execution_id)
            if job is not None and job.attempts == claim.attempt:
                self._jobs[claim.execution_id] = replace(job, state="queued", lease_owner=None,
                                                         lease_expires_at=None,
                                                         available_at=self.clock.time() + delay_s)

    def sweep(self, *, stale_after: float) -> int:
        """Put jobs whose lease expired back to `queued` (as `SqlQueue.sweep`); there are no broker messages
        to lose, so `stale_after` has nothing to do."""
        with self._lock:
            now = self.clock.time()
            expired = [j for j in self._jobs.values()
                       if j.state == "claimed" and j.lease_expires_at is not None and j.lease_expires_at < now]
            for job in expired:
                self._jobs[job.execution_id] = replace(job, state="queued", lease_owner=None, lease_expires_at=None)
            return len(expired)

    # reading ----------------------------------------------------------------------------------------
    def is_waiting(self, execution_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(execution_id)
            return job is not None and job.state == "queued"

    def position(self, session: Session, execution_id: str) -> int | None:
        """Committed jobs only: unlike the SQL query, it does not see `session`'s own pending changes."""
        with self._lock:
            job = self._jobs.get(execution_id)
            if job is None or job.state != "queued":
                return None
            return sum(1 for j in self._jobs.values() if j.state == "queued" and j.queue == job.queue and j.seq < job.seq)

    def depth(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(f"{j.queue}:{j.state}" for j in self._jobs.values()))

    def check(self) -> None:
        """Always ready: nothing to reach."""
