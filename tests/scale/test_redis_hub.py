"""RedisEventHub: notifications cross processes through Redis pub/sub, and a progress batch (ended=False) wakes the
SSE streams of every process but not the `Prefer: wait` requests, which only want the end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.server import make_settings

from nodeloom.compose import build
from nodeloom.services.hub import LocalBusHub, LocalBusWorkSignal, RedisEventHub


def test_progress_and_possible_ends_reach_the_right_listeners_of_another_hub(redis_url: str) -> None:
    async def main() -> None:
        publisher, listener = RedisEventHub(redis_url), RedisEventHub(redis_url)  # two processes' hubs
        try:
            await asyncio.sleep(0.3)  # the listener thread has subscribed
            with listener.listening("ex_1", ends_only=True) as ends, listener.listening("ex_1") as every:
                publisher.notify("ex_1", ended=False)
                await asyncio.wait_for(every.wait(), 5)
                await asyncio.sleep(0.1)  # (had it been woken, it would be by now: the same message)
                assert not ends.is_set()
                publisher.notify("ex_1")
                await asyncio.wait_for(ends.wait(), 5)
        finally:
            publisher.close()
            listener.close()

    asyncio.run(main())


def test_with_redis_the_sql_queue_still_wakes_workers_of_this_machine_through_the_data_dir(
        tmp_path: Path, redis_url: str) -> None:
    """Redis carries the execution events between replicas; "something was enqueued" for the sql queue's worker
    processes (`serve --workers N`) goes through the data dir's sockets either way."""
    with_redis = build(make_settings(tmp_path / "a", redis_url=redis_url), migrate=True)
    plain = build(make_settings(tmp_path / "b"), migrate=True)
    try:
        assert isinstance(with_redis.hub, RedisEventHub)
        assert isinstance(with_redis.work, LocalBusWorkSignal)
        assert isinstance(plain.hub, LocalBusHub) and isinstance(plain.work, LocalBusWorkSignal)
        assert plain.hub.bus is plain.work.bus
    finally:
        asyncio.run(with_redis.aclose())
        asyncio.run(plain.aclose())
