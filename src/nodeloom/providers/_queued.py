"""What fal's and Replicate's adapters share: a keyed HTTP client and `run` built from submit/status/result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from nodeloom.providers._http import VendorHTTP
from nodeloom.providers.base import (
    DEFAULT_POLLING,
    Clock,
    JobStatus,
    OnProgress,
    OnSubmitted,
    Polling,
    ProviderResult,
    Sleep,
    run_job,
)
from nodeloom.providers.errors import ProviderUnavailable


class QueuedVendor:
    """Base of the job-queue adapters. Subclasses name the vendor, how its key is sent and described, and
    implement `submit`, `status`, `result` and `cancel` (the `JobProvider` protocol)."""

    name: str  # set by each subclass, on the class
    key_setting: ClassVar[str]
    key_description: ClassVar[str]  # e.g. "a fal.ai API key"
    account_key_label: ClassVar[str]  # e.g. "fal"

    def __init__(
        self,
        *,
        api_key: str | None,
        http: httpx.AsyncClient,
        base_url: str,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        polling: Polling = DEFAULT_POLLING,
        request_timeout: float = 60.0,
    ):
        self._api_key = api_key
        self._clock = clock
        self._sleep = sleep
        self._polling = polling
        self._http = VendorHTTP(
            provider=self.name,
            base_url=base_url,
            headers=self.auth_headers(api_key) if api_key else {},
            http=http,
            describe=self.describe_error,
            clock=clock,
            timeout=request_timeout,
        )

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        raise NotImplementedError

    @staticmethod
    def describe_error(response: httpx.Response) -> str:
        raise NotImplementedError

    # the JobProvider protocol, which each subclass implements for its vendor
    async def submit(self, model: str, arguments: Mapping[str, Any], *, deadline: float | None = None) -> str:
        raise NotImplementedError

    async def status(self, model: str, request_id: str, *, deadline: float | None = None) -> JobStatus:
        raise NotImplementedError

    async def result(self, model: str, request_id: str, *, deadline: float | None = None) -> ProviderResult:
        raise NotImplementedError

    async def cancel(self, model: str, request_id: str) -> None:
        raise NotImplementedError

    @property
    def unavailable_reason(self) -> str | None:
        if self._api_key:
            return None
        return f"set {self.key_setting} ({self.key_description}) or store the account's own {self.account_key_label} key"

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
        self._require_key()
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

    def _require_key(self) -> None:
        if reason := self.unavailable_reason:
            raise ProviderUnavailable(reason, provider=self.name)
