"""The worker loop: an enqueue that lands while a claim is in flight is not lost (no wait for the next poll)."""

from __future__ import annotations

import asyncio
from typing import Any

from nodeloom.queue.base import Claim
from nodeloom.worker import Worker


class FakeRunner:
    def start_in(self, s: Any, claim: Claim) -> Any:
        return None

    async def run(self, claim: Claim, started: Any = None) -> None:
        return None


class RacingQueue:
    """The first claim finds nothing, but an execution is enqueued (and the worker woken) while it runs."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.calls = 0
        self.second: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def claim_many(self, **_kw: Any) -> list[tuple[Claim, Any]]:
        self.calls += 1
        if self.calls == 1:
            assert self.worker is not None
            self.worker.wake()  # the enqueue's wake-up arrives mid-claim
            return []
        assert self.loop is not None and self.second is not None
        self.loop.call_soon_threadsafe(self.second.set)
        return []


def test_a_wake_during_a_claim_makes_the_worker_look_again_at_once() -> None:
    async def go() -> None:
        queue = RacingQueue()
        queue.loop, queue.second = asyncio.get_running_loop(), asyncio.Event()
        # a poll interval far longer than the test: only the wake-up can bring the second claim
        worker = Worker(queue=queue, runner=FakeRunner(), concurrency=4, poll_interval=3600)  # type: ignore[arg-type]
        queue.worker = worker
        stop = asyncio.Event()
        loop_task = asyncio.create_task(worker.run(stop))
        try:
            await asyncio.wait_for(queue.second.wait(), timeout=30)  # generous: catches a hang, not a speed
        finally:
            stop.set()
            worker.wake()
            await asyncio.wait_for(loop_task, timeout=30)
        assert queue.calls >= 2

    asyncio.run(go())
