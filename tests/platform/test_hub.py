"""EventHub.listening: a change that lands between a reader's read and its wait is not lost (`Prefer: wait` and the
SSE stream listen before they read, and clear before each read)."""

from __future__ import annotations

import asyncio
import threading

from nodeloom.api.routes.executions import wait_for_end
from nodeloom.services.hub import EventHub


def test_a_notification_between_read_and_wait_is_kept() -> None:
    async def main() -> None:
        hub = EventHub()
        with hub.listening("ex_1") as changed:
            changed.clear()
            # ... the reader reads here; the change lands now, from a worker thread, before the reader waits
            t = threading.Thread(target=hub.notify, args=("ex_1",))
            t.start()
            t.join()
            await asyncio.sleep(0)  # the loop runs the thread's call_soon_threadsafe
            assert changed.is_set()
            other = hub.listening("ex_2")
            with other as unrelated:
                assert not unrelated.is_set()  # another execution's listener is not woken
        assert not hub._waiters  # nothing left registered

    asyncio.run(main())


class _Executions:
    """What `wait_for_end` needs: the status read lands the change right after reading (the race)."""

    def __init__(self, hub: EventHub):
        self.hub = hub
        self.reads: list[str] = []

    def listening(self, execution_id: str, *, ends_only: bool = False):  # type: ignore[no-untyped-def]
        return self.hub.listening(execution_id, ends_only=ends_only)

    def poll_if_ended(self, *, account_id: str, execution_id: str, base_url: str = "") -> dict[str, str] | None:
        status = "RUNNING" if not self.reads else "COMPLETED"
        self.reads.append(status)
        if status == "RUNNING":
            self.hub.notify(execution_id)  # the run ended between this read and the wait
            return None
        return {"status": status}


def test_prefer_wait_sees_an_end_that_lands_between_read_and_wait() -> None:
    async def main() -> list[str]:
        executions = _Executions(EventHub())
        # a lost notification would leave it waiting for its 1 s re-read: the guard is well under that
        done = await asyncio.wait_for(wait_for_end(executions, account_id="a", execution_id="ex_1",  # type: ignore[arg-type]
                                                   seconds=60), 0.9)
        assert done == {"status": "COMPLETED"}
        return executions.reads

    assert asyncio.run(main()) == ["RUNNING", "COMPLETED"]


def test_a_listener_for_the_end_sleeps_through_progress_and_wakes_for_what_may_end_the_run() -> None:
    async def main() -> None:
        hub = EventHub()
        with hub.listening("ex_1", ends_only=True) as ends, hub.listening("ex_1") as every:
            hub.notify("ex_1", ended=False)  # a worker's progress batch
            await asyncio.sleep(0)
            assert every.is_set() and not ends.is_set()  # the SSE stream wants it; `Prefer: wait` does not
            every.clear()
            hub.notify("ex_1")  # anything that may have ended it (the default)
            await asyncio.sleep(0)
            assert every.is_set() and ends.is_set()

    asyncio.run(main())


class _Ending:
    """`wait_for_end`'s view of a run that makes progress twice, then ends: it reads only when told of a change that
    may have ended it (and once at the start), and answers with the poll body in the same trip."""

    def __init__(self, hub: EventHub):
        self.hub = hub
        self.reads = 0
        self.ended = False

    def listening(self, execution_id: str, *, ends_only: bool = False):  # type: ignore[no-untyped-def]
        return self.hub.listening(execution_id, ends_only=ends_only)

    def poll_if_ended(self, *, account_id: str, execution_id: str, base_url: str = "") -> dict[str, str] | None:
        self.reads += 1
        return {"status": "COMPLETED", "base": base_url} if self.ended else None


def test_prefer_wait_reads_once_per_possible_end_and_returns_the_poll_body() -> None:
    async def main() -> None:
        hub = EventHub()
        executions = _Ending(hub)

        async def worker() -> None:
            await asyncio.sleep(0.01)
            for _ in range(2):
                hub.notify("ex_1", ended=False)
                await asyncio.sleep(0.01)
            executions.ended = True
            hub.notify("ex_1")

        task = asyncio.create_task(worker())
        body = await asyncio.wait_for(wait_for_end(executions, account_id="a", execution_id="ex_1",  # type: ignore[arg-type]
                                                   seconds=60, base_url="http://x"), 0.9)
        await task
        assert body == {"status": "COMPLETED", "base": "http://x"}
        assert executions.reads == 2  # the first read, then the end; never for the two progress batches

    asyncio.run(main())
