"""The provider seam: what a hosted model call looks like to the rest of nodeloom.

Two protocols, as small as the vendors allow:

- `Provider` — anything that can `run(model, arguments)` and say whether it is configured.
  Synchronous vendors (OpenAI-compatible servers, Gemini) are only this: their answer comes back on
  the request itself, there is no job to poll, cancel or resume.
- `JobProvider` — a vendor with a job queue (fal, Replicate): `submit`, `status`, `result`,
  `cancel`, and `run` built from them by `run_job`, which persists the job id through
  `on_submitted` before polling, resumes an existing id instead of paying twice, honours a
  deadline, and sends the vendor's cancel when the awaiting task is cancelled.

`MockProvider` in `mock.py` is the test double, as httpx's `MockTransport` is for transports.
Deadlines are absolute readings of the injected monotonic `Clock` (default `time.monotonic`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nodeloom.providers.errors import ProviderCancelled, ProviderError, ProviderTimeout

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class JobState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    queue_position: int | None = None
    progress: float | None = None
    """0..1 when the vendor's logs show it (tqdm-style "45%|███  | 9/20"), else None."""
    logs: tuple[str, ...] = ()
    error: str | None = None

    @property
    def message(self) -> str | None:
        return self.logs[-1] if self.logs else None


@dataclass(frozen=True)
class Media:
    """One produced file: inline `data`, or a `url` still to fetch.

    `same_host` says the URL is on the configured vendor base URL's host, which API.md trusts for a
    direct fetch (`fetch_media`); any other URL must go through the media layer's guarded fetcher.
    """

    url: str | None = None
    data: bytes | None = field(default=None, repr=False)
    content_type: str | None = None
    same_host: bool = False


@dataclass(frozen=True)
class ProviderResult:
    provider: str
    model: str
    data: Any
    """The vendor's JSON answer, as it came."""
    media: tuple[Media, ...] = ()
    text: str | None = None
    request_id: str | None = None


OnProgress = Callable[[JobStatus], Awaitable[None]]
OnSubmitted = Callable[[str], Awaitable[None]]


class Provider(Protocol):
    name: str

    @property
    def unavailable_reason(self) -> str | None:
        """None when usable; otherwise a sentence telling the operator what to set."""
        ...

    async def run(
        self,
        model: str,
        arguments: Mapping[str, Any],
        *,
        on_progress: OnProgress | None = None,
        on_submitted: OnSubmitted | None = None,
        resume_request_id: str | None = None,
        deadline: float | None = None,
    ) -> ProviderResult: ...


class JobProvider(Provider, Protocol):
    async def submit(self, model: str, arguments: Mapping[str, Any], *, deadline: float | None = None) -> str:
        """Queue a job and return the vendor's request id."""
        ...

    async def status(self, model: str, request_id: str, *, deadline: float | None = None) -> JobStatus: ...

    async def result(
        self, model: str, request_id: str, *, deadline: float | None = None
    ) -> ProviderResult: ...

    async def cancel(self, model: str, request_id: str) -> None: ...


@dataclass(frozen=True)
class Polling:
    """How `run_job` waits: the interval grows by `factor` up to `max_interval`."""

    interval: float = 0.5
    max_interval: float = 5.0
    factor: float = 1.5
    max_failures: int = 3
    """Consecutive transient failures of status polls tolerated before giving up on the job."""
    cancel_timeout: float = 10.0


DEFAULT_POLLING = Polling()


async def run_job(
    provider: JobProvider,
    model: str,
    arguments: Mapping[str, Any],
    *,
    on_progress: OnProgress | None = None,
    on_submitted: OnSubmitted | None = None,
    resume_request_id: str | None = None,
    deadline: float | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    polling: Polling = DEFAULT_POLLING,
) -> ProviderResult:
    """Submit (or resume), poll until the job ends, fetch its result.

    Once a job exists, leaving early for any reason but its own end — the task cancelled, the
    deadline passed, polling failing, `on_submitted` failing — sends the vendor's cancel first, so
    nothing keeps billing for an answer nobody will read.
    """
    if resume_request_id is None:
        request_id = await provider.submit(model, arguments, deadline=deadline)
    else:
        request_id = resume_request_id
    try:
        if resume_request_id is None and on_submitted is not None:
            await on_submitted(request_id)
        await _poll_until_done(
            provider,
            model,
            request_id,
            on_progress=on_progress,
            deadline=deadline,
            clock=clock,
            sleep=sleep,
            polling=polling,
        )
    except ProviderError as exc:
        if exc.retryable:  # a timeout, or polling gave up, while the job may still be running
            await _cancel_quietly(provider, model, request_id, timeout=polling.cancel_timeout)
        raise
    except (asyncio.CancelledError, Exception):
        await _cancel_quietly(provider, model, request_id, timeout=polling.cancel_timeout)
        raise
    return await provider.result(model, request_id, deadline=deadline)


async def _poll_until_done(
    provider: JobProvider,
    model: str,
    request_id: str,
    *,
    on_progress: OnProgress | None,
    deadline: float | None,
    clock: Clock,
    sleep: Sleep,
    polling: Polling,
) -> None:
    interval = polling.interval
    failures = 0
    last_reported: JobStatus | None = None
    while True:
        try:
            status = await provider.status(model, request_id, deadline=deadline)
            failures = 0
        except ProviderError as exc:
            failures += 1
            if not exc.retryable or failures > polling.max_failures:
                raise
            status = None
        if status is not None:
            if on_progress is not None and status != last_reported:
                await on_progress(status)
                last_reported = status
            if status.state is JobState.COMPLETED:
                return
            if status.state is JobState.FAILED:
                raise ProviderError(
                    status.error or "the job failed without saying why",
                    provider=provider.name,
                    request_id=request_id,
                )
            if status.state is JobState.CANCELLED:
                raise ProviderCancelled(
                    status.error or "the job was cancelled at the vendor",
                    provider=provider.name,
                    request_id=request_id,
                )
        wait = interval
        if deadline is not None:
            remaining = deadline - clock()
            if remaining <= 0:
                raise ProviderTimeout(
                    f"job {request_id} did not finish before the deadline",
                    provider=provider.name,
                    request_id=request_id,
                )
            wait = min(wait, remaining)
        await sleep(wait)
        interval = min(interval * polling.factor, polling.max_interval)


async def _cancel_quietly(provider: JobProvider, model: str, request_id: str, *, timeout: float) -> None:
    # Best effort: the caller is already leaving with its own error or cancellation.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(provider.cancel(model, request_id), timeout)


_PROGRESS_LINE = re.compile(r"^\s*(?P<percentage>\d+)%\s*\|.+?\|\s*(?P<current>\d+)/(?P<total>\d+)")


def progress_from_logs(lines: Sequence[str]) -> float | None:
    """The last tqdm-style progress bar in the logs as 0..1 (the rule Replicate's client uses)."""
    for line in reversed(lines):
        match = _PROGRESS_LINE.match(line)
        if match:
            return min(int(match["percentage"]) / 100.0, 1.0)
    return None
