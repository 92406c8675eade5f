from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from nodeloom.providers import (
    MockProvider,
    Polling,
    ProviderError,
    ProviderResult,
    ProviderTimeout,
    ProviderUnavailable,
    RetryPolicy,
    Route,
    Router,
    Submission,
)

from .conftest import FakeTime


def answers(*outcomes: ProviderError | str):
    """A handler answering each run with the next outcome: an error to raise, or text to return."""
    queue = list(outcomes)

    def handler(model: str, arguments: Mapping[str, Any]) -> ProviderResult:
        outcome = queue.pop(0) if queue else "ok"
        if isinstance(outcome, ProviderError):
            raise outcome
        return ProviderResult(provider="mock", model=model, data={}, text=outcome)

    return handler


def outage(provider: str, status: int = 503, retry_after: float | None = None) -> ProviderError:
    return ProviderError(
        "down",
        provider=provider,
        status=status,
        retryable=status >= 500 or status == 429,
        retry_after=retry_after,
    )


def router(time: FakeTime, **options: Any) -> Router:
    return Router(clock=time.clock, sleep=time.sleep, **options)


async def test_transient_errors_are_retried_with_full_jitter_then_fall_back(fake_time):
    first = MockProvider("fal", answers(outage("fal"), outage("fal"), outage("fal")))
    second = MockProvider("replicate", answers("from replicate"))
    draws = iter([1.0, 0.25])

    result = await router(
        fake_time, retry=RetryPolicy(max_attempts=3, base_delay=2.0), rand=lambda: next(draws)
    ).run([Route(first, "a", {"p": 1}), Route(second, "b", {"q": 2})])

    assert result.text == "from replicate"
    assert fake_time.sleeps == [2.0, 1.0]  # 1.0 * 2 s, then 0.25 * 4 s
    assert len(first.submissions) == 3 and second.submissions == [("b", {"q": 2})]


async def test_backoff_is_capped(fake_time):
    provider = MockProvider("fal", answers(*[outage("fal")] * 4))

    await router(
        fake_time, retry=RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=3.0), rand=lambda: 1.0
    ).run([Route(provider, "a", {})])

    assert fake_time.sleeps == [1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize("status", [400, 401, 403, 422])
async def test_a_final_error_is_raised_without_fallback(fake_time, status):
    first = MockProvider("fal", answers(outage("fal", status)))
    second = MockProvider("replicate", answers("never"))

    with pytest.raises(ProviderError) as caught:
        await router(fake_time).run([Route(first, "a", {}), Route(second, "b", {})])

    assert caught.value.status == status
    assert second.submissions == [] and fake_time.sleeps == []


async def test_retry_after_is_honoured_exactly(fake_time):
    provider = MockProvider("fal", answers(outage("fal", 429, retry_after=9.0), "ok"))

    result = await router(fake_time, rand=lambda: 0.0).run([Route(provider, "a", {})])

    assert result.text == "ok" and fake_time.sleeps == [9.0]


async def test_a_retry_after_too_long_moves_on_to_the_next_provider(fake_time):
    first = MockProvider("fal", answers(outage("fal", 429, retry_after=3600)))
    second = MockProvider("replicate", answers("ok"))

    result = await router(fake_time, retry=RetryPolicy(max_retry_after=60)).run(
        [Route(first, "a", {}), Route(second, "b", {})]
    )

    assert result.text == "ok" and fake_time.sleeps == []


async def test_a_retry_after_past_the_deadline_moves_on(fake_time):
    first = MockProvider("fal", answers(outage("fal", 429, retry_after=30)))
    second = MockProvider("replicate", answers("ok"))

    result = await router(fake_time).run(
        [Route(first, "a", {}), Route(second, "b", {})], deadline=fake_time.now + 20
    )

    assert result.text == "ok" and fake_time.sleeps == []


async def test_the_deadline_cancels_the_job_and_ends_the_call(fake_time):
    slow = MockProvider(
        "fal",
        answers("late"),
        polls=1000,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        polling=Polling(interval=1.0),
    )
    spare = MockProvider("replicate", answers("never"))

    with pytest.raises(ProviderTimeout):
        await router(fake_time).run([Route(slow, "a", {}), Route(spare, "b", {})], deadline=fake_time.now + 5)

    assert slow.cancelled == ["fal-1"] and spare.submissions == []


async def test_an_attempt_timeout_falls_back_within_the_deadline(fake_time):
    slow = MockProvider(
        "fal",
        answers("late"),
        polls=1000,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        polling=Polling(interval=1.0),
    )
    quick = MockProvider("replicate", answers("on time"))

    result = await router(fake_time, attempt_timeout=5, retry=RetryPolicy(max_attempts=1)).run(
        [Route(slow, "a", {}), Route(quick, "b", {})], deadline=fake_time.now + 60
    )

    assert result.text == "on time" and slow.cancelled == ["fal-1"]


async def test_unconfigured_providers_are_skipped_and_named_when_none_is_left(fake_time):
    unset = MockProvider("fal", answers("never"), unavailable_reason="set FAL_KEY")
    ready = MockProvider("replicate", answers("ok"))

    assert (await router(fake_time).run([Route(unset, "a", {}), Route(ready, "b", {})])).text == "ok"

    with pytest.raises(ProviderUnavailable, match="fal: set FAL_KEY"):
        await router(fake_time).run([Route(unset, "a", {})])


async def test_submissions_are_announced_with_their_provider(fake_time):
    first = MockProvider("fal", answers(outage("fal")))
    second = MockProvider("replicate", answers("ok"))
    announced: list[Submission] = []

    async def on_submitted(submission: Submission) -> None:
        announced.append(submission)

    await router(fake_time, retry=RetryPolicy(max_attempts=1)).run(
        [Route(first, "a", {}), Route(second, "b", {})], on_submitted=on_submitted
    )

    assert announced == [Submission("fal", "a", "fal-1"), Submission("replicate", "b", "replicate-1")]


async def test_the_last_error_carries_the_earlier_ones(fake_time):
    first = MockProvider("fal", answers(outage("fal", 502)))
    second = MockProvider("replicate", answers(outage("replicate", 500)))

    with pytest.raises(ProviderError) as caught:
        await router(fake_time, retry=RetryPolicy(max_attempts=1)).run(
            [Route(first, "a", {}), Route(second, "b", {})]
        )

    assert caught.value.provider == "replicate"
    assert caught.value.__notes__ == ["earlier: fal: down (HTTP 502)"]


async def test_the_resumed_job_is_polled_before_the_route_order(fake_time):
    first = MockProvider("fal", answers("resumed"))
    request_id = await first.submit("a", {})
    second = MockProvider("replicate", answers("fresh"))

    result = await router(fake_time).run(
        [Route(second, "b", {}), Route(first, "a", {})], resume=Submission("fal", "a", request_id)
    )

    assert result.text == "resumed"
    assert len(first.submissions) == 1 and second.submissions == []


async def test_cancellation_propagates_and_cancels_the_job(fake_time):
    gate = asyncio.Event()

    async def held(model: str, arguments: Mapping[str, Any]) -> ProviderResult:
        await gate.wait()
        raise AssertionError("unreachable")

    async def park(seconds: float) -> None:
        await gate.wait()

    provider = MockProvider("fal", held, polls=1, sleep=park)
    task = asyncio.create_task(router(fake_time).run([Route(provider, "a", {})]))
    while not provider.submissions:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert provider.cancelled == ["fal-1"]
