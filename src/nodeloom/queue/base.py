"""The QueueBackend protocol: the one contract the runner, the worker loop, the API and Celery tasks rely on.

Every backend (`SqlQueue`, `CeleryQueue`, `MemoryQueue`) implements all of it with the same semantics, and
tests/contracts runs one set of cases over each, so callers type the queue as `QueueBackend` and never
reach for `getattr` or `Any`. The types a claim's transaction hands around (`Room`, `CapFilter`,
`StartHook`) live here too, because they are part of that contract rather than of one backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
        """Claim up to `limit` jobs, oldest first, in one transaction, never letting an account pass its
        concurrency cap; `start(session, claim)` runs for each inside that transaction and its result
        travels with the claim. If `start` raises, that transaction rolls back and the jobs are claimed
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
