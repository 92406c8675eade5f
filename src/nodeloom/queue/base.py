"""The QueueBackend protocol: the one contract the runner, the worker loop, the API and Celery tasks rely on.

Every backend (`SqlQueue`, `CeleryQueue`, `MemoryQueue`) implements all of it with the same semantics, and
tests/contracts runs one set of cases over each, so callers type the queue as `QueueBackend` and never
reach for `getattr` or `Any`. The types a claim's transaction hands around (`Room`, `CapFilter`,
`StartHook`) live here too, because they are part of that contract rather than of one backend.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

log = logging.getLogger("nodeloom.queue")

#: the queues work is routed to (by the resources a graph needs); the default set a worker claims from
QUEUES: tuple[str, ...] = ("cpu", "io", "gpu")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Claim:
    """A lease on one job. `attempt` fences: a claim whose attempt is no longer the job's can neither
    extend the lease, nor finish, nor hand back the job (another worker owns it now)."""

    execution_id: str
    account_id: str
    attempt: int
    worker_id: str


class Room(Protocol):
    """How much more each account may start now (per-plan concurrency caps), read in the claim's transaction."""

    #: accounts at their cap: their jobs are not even fetched
    blocked: set[str]

    def take(self, account_id: str) -> bool:
        """Count one more start for the account in this claim; False when that would pass its cap."""
        ...


#: builds the claim's Room from the claim's transaction (`LimitsService.claim_room`)
CapFilter = Callable[[Session], Room]
#: runs inside the claim's transaction for each claimed job (the runner marks the execution RUNNING there,
#: so claiming and starting cost one transaction); its result travels with the claim
StartHook = Callable[[Session, Claim], T]


class QueueBackend(Protocol):
    """Durable jobs with leases. A job is `queued` until claimed; a claim holds a lease that heartbeats
    extend; `ack` finishes the job, `release` hands it back; a lease that runs out makes the job claimable
    again with the next attempt number."""

    def enqueue(self, session: Session, *, execution_id: str, account_id: str, queue: str = "cpu") -> None:
        """Add a job inside the caller's transaction (the one that creates the execution): it exists, and can
        be claimed, only once that transaction commits; a rollback leaves no trace of it."""
        ...

    def claim(self, *, worker_id: str, queues: tuple[str, ...] = QUEUES) -> Claim | None:
        """Claim the oldest claimable job, if any (`claim_many` with limit 1 and no start hook)."""
        ...

    def claim_many(self, *, worker_id: str, queues: tuple[str, ...] = QUEUES, limit: int = 1,
                   start: StartHook[T] | None = None) -> list[tuple[Claim, T | None]]:
        """Claim up to `limit` jobs in one transaction, fairly across accounts (`fair_order`: the account with
        the fewest jobs running goes first, oldest first within an account; the claims come back oldest
        first), never letting an account pass its concurrency cap; `start(session, claim)` runs for each
        inside that transaction and its result travels with the claim. If `start` raises, that transaction rolls back and the jobs are claimed
        again without it (results None: the runner starts each on its own)."""
        ...

    def claim_execution(self, *, execution_id: str, worker_id: str,
                        start: StartHook[T] | None = None) -> tuple[Claim, T | None] | None:
        """Claim one named job (its broker message arrived), with `start` as in `claim_many`. None when the
        job is gone, leased by a live worker, or its account is at its cap (`is_waiting` then says so)."""
        ...

    def is_waiting(self, execution_id: str) -> bool:
        """The job is queued, not claimed (e.g. held back by its account's concurrency cap)."""
        ...

    def heartbeat(self, claim: Claim) -> bool:
        """Extend the lease; False when the lease was lost (another worker owns the job now, or it was
        handed back)."""
        ...

    def ack(self, claim: Claim, session: Session | None = None) -> None:
        """Finish the job (delete it) unless a later attempt owns it now. With `session`, inside that
        transaction (it happens only if that transaction commits); without, in one of its own."""
        ...

    def release(self, claim: Claim, *, delay_s: float = 0.0) -> None:
        """Hand the job back (graceful shutdown, transient failure), claimable again after `delay_s`."""
        ...

    def position(self, session: Session, execution_id: str) -> int | None:
        """How many queued jobs are ahead of this one in its queue; None when it is not queued."""
        ...

    def remove(self, session: Session, execution_id: str) -> None:
        """Drop the job inside the caller's transaction (cancelling an execution)."""
        ...

    def depth(self) -> dict[str, int]:
        """Jobs by `"queue:state"` (state `queued` or `claimed`), for metrics."""
        ...

    def sweep(self, *, stale_after: float) -> int:
        """Periodic repair: hand out again what dead workers held (expired leases go back to `queued`) and,
        where a broker carries the jobs, re-publish queued jobs nobody claimed for `stale_after` seconds.
        Returns how many jobs it touched."""
        ...

    def check(self) -> None:
        """Raise if the backend cannot serve claims now (readiness)."""
        ...


J = TypeVar("J")


def fair_order(jobs: Iterable[J], *, account: Callable[[J], str], seq: Callable[[J], int],
               running: Mapping[str, int], served: Mapping[str, int] | None = None) -> list[J]:
    """Claimable jobs in the order claims take them: rotating between the accounts with waiting work, so one
    account's backlog never starves another's. A job's turn is its account's running jobs plus its rank among
    that account's waiting ones (1 for the oldest); the lower turn goes first. On a tie the account served
    longest ago goes first (`served`: account → a number that grows with each claim; never served: first),
    then the older job. An account with ten running and a hundred waiting is served after a newcomer's first
    job, not before it; two accounts that take turns on one free slot alternate."""
    served = served or {}
    ranked: list[tuple[int, int, int, J]] = []
    rank: dict[str, int] = {}
    for job in sorted(jobs, key=seq):
        acct = account(job)
        rank[acct] = rank.get(acct, 0) + 1
        ranked.append((running.get(acct, 0) + rank[acct], served.get(acct, -1), seq(job), job))
    ranked.sort(key=lambda r: (r[0], r[1], r[2]))
    return [job for _turn, _served, _seq, job in ranked]


class ServedLedger:
    """When each account was last served by this process's claims (for `fair_order`'s tie-break). Bounded:
    past `size` accounts the longest-served half is forgotten (they count as never served: first in line)."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._next = 0
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()

    def view(self) -> Mapping[str, int]:
        with self._lock:
            return dict(self._served)

    def mark(self, account_id: str) -> None:
        with self._lock:
            self._next += 1
            self._served[account_id] = self._next
            if len(self._served) > self.size:
                keep = sorted(self._served.items(), key=lambda kv: kv[1])[len(self._served) // 2:]
                self._served = dict(keep)


def with_start_fallback(claim: Callable[[StartHook[T] | None], R], start: StartHook[T] | None) -> R:
    """Claim with the start hook; if it fails, that transaction rolls back and the claim is made again without
    it (the runner then starts on its own), so a poisoned execution uses up its attempts instead of blocking
    the queue. Shared by the backends so that fallback is the same everywhere."""
    if start is not None:
        try:
            return claim(start)
        except Exception:
            log.exception("starting executions inside their claim failed; claiming them without it")
    return claim(None)
