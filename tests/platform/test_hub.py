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

    def listening(self, execution_id: str):  # type: ignore[no-untyped-def]
        return self.hub.listening(execution_id)

    def status(self, *, account_id: str, execution_id: str) -> str:
        status = "RUNNING" if not self.reads else "COMPLETED"
        self.reads.append(status)
        if status == "RUNNING":
            self.hub.notify(execution_id)  # the run ended between this read and the wait
        return status


def test_prefer_wait_sees_an_end_that_lands_between_read_and_wait() -> None:
    async def main() -> list[str]:
        executions = _Executions(EventHub())
        # a lost notification would leave it waiting for its 1 s re-read: the guard is well under that
        done = await asyncio.wait_for(wait_for_end(executions, account_id="a", execution_id="ex_1",  # type: ignore[arg-type]
                                                   seconds=60), 0.9)
        assert done
        return executions.reads

    assert asyncio.run(main()) == ["RUNNING", "COMPLETED"]
