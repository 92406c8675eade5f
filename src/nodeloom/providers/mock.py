"""MockProvider: an in-memory JobProvider driven by a handler, for tests of code above providers.

    async def handler(model, arguments):
        return ProviderResult(provider="mock", model=model, data={}, media=(Media(data=b"png"),))

    provider = MockProvider("fal", handler, polls=2)

The handler runs when the result is fetched; it may raise a ProviderError (to script an outage)
or wait on an event (to hold a job open). Every submission and cancel is recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nodeloom.providers.base import (
    Clock,
    JobState,
    JobStatus,
    OnProgress,
    OnSubmitted,
    Polling,
    ProviderResult,
    Sleep,
    run_job,
)
from nodeloom.providers.errors import ProviderError, ProviderUnavailable

IMMEDIATE = Polling(interval=0.0, max_interval=0.0)
"""Polls back to back: a mock job takes no time, so neither should waiting for it."""

Handler = Callable[[str, Mapping[str, Any]], ProviderResult | Awaitable[ProviderResult]]


@dataclass
class _Job:
    model: str
    arguments: dict[str, Any]
    polls_left: int


class MockProvider:
    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        polls: int = 0,
        unavailable_reason: str | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        polling: Polling = IMMEDIATE,
    ):
        """`polls` is how many status polls answer RUNNING before the job is COMPLETED."""
        self.name = name
        self._handler = handler
        self._polls = polls
        self._reason = unavailable_reason
        self._clock = clock
        self._sleep = sleep
        self._polling = polling
        self._ids = itertools.count(1)
        self.jobs: dict[str, _Job] = {}
        self.submissions: list[tuple[str, dict[str, Any]]] = []
        self.cancelled: list[str] = []

    @property
    def unavailable_reason(self) -> str | None:
        return self._reason

    async def run(
        self,
        model: str,
        arguments: Mapping[str, Any],
        *,
        on_progress: OnProgress | None = None,
        on_submitted: OnSubmitted | None = None,
        resume_request_id: str | None = None,
        deadline: float | None = None,
    ) -> ProviderResult:
        if self._reason:
            raise ProviderUnavailable(self._reason, provider=self.name)
        return await run_job(
            self,
            model,
            arguments,
            on_progress=on_progress,
            on_submitted=on_submitted,
            resume_request_id=resume_request_id,
            deadline=deadline,
            clock=self._clock,
            sleep=self._sleep,
            polling=self._polling,
        )

    async def submit(self, model: str, arguments: Mapping[str, Any], *, deadline: float | None = None) -> str:
        request_id = f"{self.name}-{next(self._ids)}"
        self.submissions.append((model, dict(arguments)))
        self.jobs[request_id] = _Job(model, dict(arguments), self._polls)
        return request_id

    async def status(self, model: str, request_id: str, *, deadline: float | None = None) -> JobStatus:
        job = self._job(request_id)
        if request_id in self.cancelled:
            return JobStatus(JobState.CANCELLED)
        if job.polls_left > 0:
            job.polls_left -= 1
            return JobStatus(JobState.RUNNING, progress=1 - (job.polls_left + 1) / (self._polls + 1))
        return JobStatus(JobState.COMPLETED, progress=1.0)

    async def result(self, model: str, request_id: str, *, deadline: float | None = None) -> ProviderResult:
        job = self._job(request_id)
        answer = self._handler(job.model, job.arguments)
        if inspect.isawaitable(answer):
            answer = await answer
        # as the HTTP providers: the result names the job it came from
        return answer if answer.request_id is not None else dataclasses.replace(answer, request_id=request_id)

    async def cancel(self, model: str, request_id: str) -> None:
        self._job(request_id)
        self.cancelled.append(request_id)

    def _job(self, request_id: str) -> _Job:
        if request_id not in self.jobs:
            raise ProviderError(
                f"no request {request_id}", provider=self.name, status=404, request_id=request_id
            )
        return self.jobs[request_id]
