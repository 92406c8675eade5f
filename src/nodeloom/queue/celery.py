"""The `celery` backend: one Celery task per execution, routed by resources to `cpu`, `io` or `gpu`.

The broker only carries "execution X is ready"; the jobs table (leases, heartbeats, attempts) stays the
source of truth. A lost message or a dead worker is repaired by the sweeper every worker runs, within
one lease period — never by waiting for the broker's visibility timeout.

A message is a turn, not an order: the worker that receives it claims the job the fair order gives in that
queue (`claim_many`, rotating between accounts as the `sql` queue does), and sends the message again when that
was another job than the one it names and the named one still waits (`worker.run_celery_worker`). The broker's
first-in-first-out order therefore never lets one account's backlog starve another account's run.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from nodeloom.queue.base import QUEUES, Claim, StartHook
from nodeloom.queue.sql import SqlQueue
from nodeloom.storage.models import Job

__all__ = ["QUEUES", "TASK_NAME", "CeleryQueue", "make_celery"]

TASK_NAME = "nodeloom.execute"

T = TypeVar("T")


def make_celery(broker_url: str, *, result_backend: str | None = None) -> Any:
    """The Celery app. Celery is optional and ships no type information: it is imported here, on demand,
    and handled as `Any`."""
    import celery
    from kombu.entity import Queue

    app = celery.Celery("nodeloom", broker=broker_url, backend=result_backend)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue="cpu",
        task_queues=[Queue(q) for q in QUEUES],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={"visibility_timeout": 3600},
    )
    return app


class CeleryQueue:
    """QueueBackend on Celery: rows in SQL, messages on the broker, published after the commit."""

    def __init__(self, sql: SqlQueue, celery_app: Any):
        self.sql = sql
        self.celery = celery_app

    def publish(self, execution_id: str, queue: str, *, countdown: float | None = None) -> None:
        self.celery.send_task(TASK_NAME, args=[execution_id], queue=queue, countdown=countdown)

    def enqueue(self, session: Session, *, execution_id: str, account_id: str, queue: str = "cpu") -> None:
        self.sql.enqueue(session, execution_id=execution_id, account_id=account_id, queue=queue)
        session.info.setdefault("after_commit", []).append(lambda: self.publish(execution_id, queue))

    def claim(self, *, worker_id: str, queues: tuple[str, ...] = QUEUES) -> Claim | None:
        return self.sql.claim(worker_id=worker_id, queues=queues)

    def claim_many(self, *, worker_id: str, queues: tuple[str, ...] = QUEUES, limit: int = 1,
                   start: StartHook[T] | None = None) -> list[tuple[Claim, T | None]]:
        return self.sql.claim_many(worker_id=worker_id, queues=queues, limit=limit, start=start)

    def claim_execution(self, *, execution_id: str, worker_id: str,
                        start: StartHook[T] | None = None) -> tuple[Claim, T | None] | None:
        return self.sql.claim_execution(execution_id=execution_id, worker_id=worker_id, start=start)

    def is_waiting(self, execution_id: str) -> bool:
        return self.sql.is_waiting(execution_id)

    def heartbeat(self, claim: Claim) -> bool:
        return self.sql.heartbeat(claim)

    def ack(self, claim: Claim, session: Session | None = None) -> None:
        self.sql.ack(claim, session)

    def release(self, claim: Claim, *, delay_s: float = 0.0) -> None:
        self.sql.release(claim, delay_s=delay_s)
        job_queue = self._queue_of(claim.execution_id)
        if job_queue:
            self.publish(claim.execution_id, job_queue, countdown=delay_s or None)

    def _queue_of(self, execution_id: str) -> str | None:
        with self.sql.db.read() as s:
            return s.scalar(select(Job.queue).where(Job.execution_id == execution_id))

    def position(self, session: Session, execution_id: str) -> int | None:
        return self.sql.position(session, execution_id)

    def remove(self, session: Session, execution_id: str) -> None:
        self.sql.remove(session, execution_id)

    def depth(self) -> dict[str, int]:
        return self.sql.depth()

    def sweep(self, *, stale_after: float) -> int:
        """Hand out again what a dead worker held, and re-publish queued jobs whose message may be lost."""
        redo = self.sql.expired() + self.sql.stale_queued(older_than=stale_after)
        for execution_id, queue in redo:
            self.publish(execution_id, queue)
        return len(redo)

    def check(self) -> None:
        """The broker answers (the jobs table is the database's own readiness check)."""
        with self.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
