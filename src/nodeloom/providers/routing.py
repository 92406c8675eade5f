"""Resilience above the adapters: retries, fallback along a route, one deadline for the call.

    router = Router(retry=RetryPolicy(max_attempts=3), attempt_timeout=300)
    result = await router.run(
        [Route(fal, "fal-ai/flux-2-pro", fal_args), Route(replicate, "black-forest-labs/flux-2-pro", rep_args)],
        on_submitted=persist, resume=persisted_submission, deadline=clock() + 600,
    )

Rules:
- A transient failure (5xx, 429, a timeout, a lost connection: `ProviderError.retryable`) is retried
  on the same provider after a full-jitter exponential backoff — or exactly the vendor's
  Retry-After when it gave one — up to `max_attempts`; then the route moves to the next provider.
  A wait longer than `max_retry_after` or than the time left skips straight to the next provider.
- A final failure (400, 401, 403, 404, 422, a model's own refusal) is raised at once: another
  provider would be asked the same wrong thing.
- A provider without configuration (`unavailable_reason`) is skipped; if none is usable the call
  fails with `ProviderUnavailable` listing what to set.
- `resume` (a persisted `Submission`) polls that job on its provider, ahead of the route order,
  instead of submitting again; a vendor that no longer knows the id (404/410) gets a fresh submission.
- Cancelling the awaiting task cancels the vendor job (the adapters do this) and propagates.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nodeloom.providers.base import Clock, OnProgress, Provider, ProviderResult, Sleep
from nodeloom.providers.errors import ProviderError, ProviderTimeout, ProviderUnavailable


@dataclass(frozen=True)
class Route:
    provider: Provider
    model: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class Submission:
    """A vendor job to persist: enough to poll it again after a restart."""

    provider: str
    model: str
    request_id: str


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    """Tries per provider, the first included."""
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rand: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**(attempt-1))]."""
        return rand() * min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


OnRouteSubmitted = Callable[[Submission], Awaitable[None]]


class Router:
    def __init__(
        self,
        *,
        retry: RetryPolicy = RetryPolicy(),
        attempt_timeout: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ):
        """`attempt_timeout` bounds one provider attempt, so a stuck vendor leaves time for the next."""
        self._retry = retry
        self._attempt_timeout = attempt_timeout
        self._clock = clock
        self._sleep = sleep
        self._rand = rand

    async def run(
        self,
        routes: Sequence[Route],
        *,
        on_progress: OnProgress | None = None,
        on_submitted: OnRouteSubmitted | None = None,
        resume: Submission | None = None,
        deadline: float | None = None,
    ) -> ProviderResult:
        usable = [route for route in routes if route.provider.unavailable_reason is None]
        if not usable:
            reasons = "; ".join(f"{r.provider.name}: {r.provider.unavailable_reason}" for r in routes)
            raise ProviderUnavailable(
                f"no configured provider for this model ({reasons or 'no route'})",
                provider=",".join(r.provider.name for r in routes) or "none",
            )

        def resumes(route: Route) -> bool:
            return resume is not None and (resume.provider, resume.model) == (
                route.provider.name,
                route.model,
            )

        usable.sort(key=lambda route: not resumes(route))  # the job already paid for is polled first
        failures: list[ProviderError] = []
        for route in usable:
            resume_id = resume.request_id if resume is not None and resumes(route) else None
            try:
                return await self._attempts(
                    route,
                    on_progress=on_progress,
                    on_submitted=on_submitted,
                    resume_id=resume_id,
                    deadline=deadline,
                    failures=failures,
                )
            except ProviderError as exc:
                if not exc.retryable or self._expired(deadline):
                    _add_history(exc, failures)
                    raise
                failures.append(exc)
        last = failures[-1]
        _add_history(last, failures[:-1])
        raise last

    async def _attempts(
        self,
        route: Route,
        *,
        on_progress: OnProgress | None,
        on_submitted: OnRouteSubmitted | None,
        resume_id: str | None,
        deadline: float | None,
        failures: list[ProviderError],
    ) -> ProviderResult:
        provider = route.provider

        async def submitted(request_id: str) -> None:
            if on_submitted is not None:
                await on_submitted(Submission(provider.name, route.model, request_id))

        attempt = 1
        while True:
            if self._expired(deadline):
                raise ProviderTimeout("the call's deadline passed", provider=provider.name)
            try:
                return await provider.run(
                    route.model,
                    route.arguments,
                    on_progress=on_progress,
                    on_submitted=submitted,
                    resume_request_id=resume_id,
                    deadline=self._attempt_deadline(deadline),
                )
            except ProviderError as exc:
                if resume_id is not None and exc.status in (404, 410):
                    resume_id = None  # the vendor forgot the job: pay for a new one
                    continue
                if not exc.retryable or attempt >= self._retry.max_attempts:
                    raise
                wait = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else self._retry.backoff(attempt, self._rand)
                )
                if wait > self._retry.max_retry_after or (
                    deadline is not None and self._clock() + wait >= deadline
                ):
                    raise
                failures.append(exc)
                resume_id = None
                await self._sleep(wait)
                attempt += 1

    def _attempt_deadline(self, deadline: float | None) -> float | None:
        if self._attempt_timeout is None:
            return deadline
        attempt_deadline = self._clock() + self._attempt_timeout
        return attempt_deadline if deadline is None else min(deadline, attempt_deadline)

    def _expired(self, deadline: float | None) -> bool:
        return deadline is not None and self._clock() >= deadline


def _add_history(exc: ProviderError, earlier: Sequence[ProviderError]) -> None:
    for failure in earlier:
        exc.add_note(f"earlier: {failure}")
