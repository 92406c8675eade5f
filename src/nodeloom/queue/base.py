"""The QueueBackend protocol: enqueue, claim with a lease, heartbeat, ack, release."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Claim:
    execution_id: str
    account_id: str
    attempt: int
    worker_id: str


class QueueBackend(Protocol):
    def enqueue(self, session: Session, *, execution_id: str, account_id: str, queue: str) -> None:
        """Add a job inside the caller's transaction (the one that creates the execution)."""
        ...

    def claim(self, *, worker_id: str, queues: tuple[str, ...]) -> Claim | None: ...

    def claim_many(self, *, worker_id: str, queues: tuple[str, ...], limit: int = 1,
                   start: Callable[[Session, Claim], Any] | None = None) -> list[tuple[Claim, Any]]:
        """Claim up to `limit` jobs in one transaction; `start(session, claim)` runs inside it for each."""
        ...

    def heartbeat(self, claim: Claim) -> bool:
        """Extend the lease; False when the lease was lost (another worker owns the job now)."""
        ...

    def ack(self, claim: Claim) -> None: ...

    def release(self, claim: Claim, *, delay_s: float = 0.0) -> None:
        """Hand the job back (graceful shutdown, transient failure)."""
        ...

    def position(self, session: Session, execution_id: str) -> int | None: ...

    def remove(self, session: Session, execution_id: str) -> None: ...

    def depth(self) -> dict[str, int]: ...
