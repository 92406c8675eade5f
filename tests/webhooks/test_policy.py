"""The retry schedule and Retry-After, as values (no network, no sleeping)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from nodeloom.services.deliveries import Outcome, RetryPolicy, parse_retry_after, subscribed
from nodeloom.settings import Settings

STANDARD = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


def test_the_default_schedule_is_standard_webhooks() -> None:
    settings = Settings(environment="test")
    assert tuple(settings.webhook_retry_schedule) == STANDARD
    assert settings.webhook_timeout_seconds == 15


def test_the_schedule_is_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODELOOM_WEBHOOK_RETRY_SCHEDULE", "0.5, 1, 2")
    assert Settings(environment="test").webhook_retry_schedule == [0.5, 1.0, 2.0]
    monkeypatch.setenv("NODELOOM_WEBHOOK_RETRY_SCHEDULE", "[3, 4]")
    assert Settings(environment="test").webhook_retry_schedule == [3.0, 4.0]
    with pytest.raises(ValueError):
        Settings(environment="test", webhook_retry_schedule=[-1])


def test_each_delay_follows_the_schedule_with_jitter_then_gives_up() -> None:
    policy = RetryPolicy(STANDARD, jitter=0.1)
    rng = random.Random(7)
    failure = Outcome(status_code=500)
    for done, base in enumerate(STANDARD, start=1):
        delay = policy.delay(done, failure, rng)
        assert delay is not None and base * 0.9 <= delay <= base * 1.1
    assert policy.delay(len(STANDARD) + 1, failure, rng) is None
    delays = {policy.delay(1, failure, rng) for _ in range(20)}
    assert len(delays) > 1  # jittered, so a crowd of failed deliveries does not retry in lockstep


def test_timeouts_are_retried_410_is_not() -> None:
    policy = RetryPolicy((1.0,), jitter=0)
    rng = random.Random(0)
    assert policy.delay(1, Outcome(error="no answer within 15 s"), rng) == 1.0
    assert policy.delay(1, Outcome(status_code=410), rng) is None


@pytest.mark.parametrize("status", [429, 502, 504])
def test_retry_after_replaces_the_delay_for_some_statuses(status: int) -> None:
    policy = RetryPolicy((1.0, 1.0), jitter=0)
    assert policy.delay(1, Outcome(status_code=status, retry_after=120), random.Random(0)) == 120
    assert policy.delay(1, Outcome(status_code=status, retry_after=10 ** 9), random.Random(0)) == 24 * 3600
    assert policy.delay(2, Outcome(status_code=status, retry_after=120), random.Random(0)) == 120
    assert policy.delay(3, Outcome(status_code=status, retry_after=120), random.Random(0)) is None


@pytest.mark.parametrize("status", [500, 503, 404])
def test_retry_after_is_ignored_for_other_statuses(status: int) -> None:
    policy = RetryPolicy((1.0,), jitter=0)
    assert policy.delay(1, Outcome(status_code=status, retry_after=120), random.Random(0)) == 1.0


def test_parse_retry_after() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("30", now=now) == 30
    assert parse_retry_after(None, now=now) is None
    assert parse_retry_after("soon", now=now) is None
    date = format_datetime(datetime.fromtimestamp(now + 90, UTC), usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(90)
    past = format_datetime(datetime.fromtimestamp(now - 90, UTC), usegmt=True)
    assert parse_retry_after(past, now=now) == 0


def test_default_subscription_is_the_terminal_events() -> None:
    assert subscribed(None, "execution.completed") and subscribed(None, "execution.failed")
    assert subscribed(None, "execution.cancelled")
    assert not subscribed(None, "execution.started") and not subscribed(None, "node.completed")
    assert subscribed(["started"], "execution.started") and not subscribed(["started"], "execution.failed")
    assert subscribed(["node.completed"], "node.completed")
    assert not subscribed([], "execution.completed")
