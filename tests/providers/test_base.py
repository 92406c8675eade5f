from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from nodeloom.providers import (
    JobStatus,
    Media,
    MockProvider,
    Polling,
    ProviderError,
    ProviderResult,
    fetch_media,
)
from nodeloom.providers._http import decode_data_uri, retry_after
from nodeloom.providers.base import progress_from_logs, run_job


def ok(model: str, arguments: Mapping[str, Any]) -> ProviderResult:
    return ProviderResult(provider="mock", model=model, data=dict(arguments), text="done")


class Flaky(MockProvider):
    """Status polls fail `failures` times with a transient error before answering."""

    def __init__(self, failures: int, **options: Any):
        super().__init__("flaky", ok, polls=1, **options)
        self.failures = failures

    async def status(self, model: str, request_id: str, *, deadline: float | None = None) -> JobStatus:
        if self.failures:
            self.failures -= 1
            raise ProviderError("bad gateway", provider=self.name, status=502, retryable=True)
        return await super().status(model, request_id, deadline=deadline)


async def test_a_few_transient_poll_failures_do_not_lose_the_job(fake_time):
    provider = Flaky(2, clock=fake_time.clock, sleep=fake_time.sleep)

    result = await run_job(
        provider,
        "m",
        {"a": 1},
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        polling=Polling(interval=1.0, max_failures=3),
    )

    assert result.text == "done" and len(provider.submissions) == 1 and provider.cancelled == []


async def test_persistent_poll_failures_give_up_and_cancel_the_job(fake_time):
    provider = Flaky(10, clock=fake_time.clock, sleep=fake_time.sleep)

    with pytest.raises(ProviderError, match="bad gateway"):
        await run_job(
            provider,
            "m",
            {},
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            polling=Polling(interval=1.0, max_failures=3),
        )

    assert provider.cancelled == ["flaky-1"] and fake_time.sleeps == [1.0, 1.5, 2.25]


async def test_if_the_id_cannot_be_persisted_the_job_is_cancelled():
    provider = MockProvider("mock", ok, polls=3)

    async def on_submitted(request_id: str) -> None:
        raise RuntimeError("database is locked")

    with pytest.raises(RuntimeError, match="database is locked"):
        await provider.run("m", {}, on_submitted=on_submitted)
    assert provider.cancelled == ["mock-1"]


def test_progress_comes_from_the_last_tqdm_line():
    assert progress_from_logs(["  10%|█         | 1/10", "some text", " 60%|██████    | 6/10"]) == 0.6
    assert progress_from_logs(["loading weights"]) is None


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after("120") == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == 10.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_data_uris_decode():
    assert decode_data_uri("data:image/png;base64,aGk=") == (b"hi", "image/png")
    assert decode_data_uri("data:text/plain,a%20b") == (b"a b", "text/plain")


async def test_fetch_media_refuses_hosts_other_than_the_vendors(http):
    assert await fetch_media(http, Media(data=b"x")) == b"x"
    with pytest.raises(ValueError, match="guarded fetcher"):
        await fetch_media(http, Media(url="https://cdn.example.com/a.png"))
