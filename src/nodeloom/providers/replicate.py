"""Replicate's predictions API, as the `replicate` client 1.0.x speaks it.

    POST /v1/models/{owner}/{name}/predictions  {"input": {...}}          (official models)
    POST /v1/predictions  {"version": "<id>", "input": {...}}             (`owner/name:version`)
    GET  /v1/predictions/{id}        -> {id, status, output, logs, error, metrics, urls, ...}
    POST /v1/predictions/{id}/cancel
Statuses: starting (queued or booting), processing, succeeded, failed, canceled.
`output` is a URL, a list of URLs, or for language models a list of text chunks.
Errors are RFC 7807 problem details: {"title", "detail", "status"}; 429 carries Retry-After.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx

from nodeloom.providers._http import VendorHTTP, is_media_url
from nodeloom.providers.base import (
    DEFAULT_POLLING,
    Clock,
    JobState,
    JobStatus,
    OnProgress,
    OnSubmitted,
    Polling,
    ProviderResult,
    Sleep,
    progress_from_logs,
    run_job,
)
from nodeloom.providers.errors import ProviderError, ProviderUnavailable

DEFAULT_BASE_URL = "https://api.replicate.com"

_STATES = {
    "starting": JobState.QUEUED,
    "processing": JobState.RUNNING,
    "succeeded": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "canceled": JobState.CANCELLED,
    "aborted": JobState.CANCELLED,
}


class ReplicateProvider:
    name = "replicate"
    key_setting = "REPLICATE_API_TOKEN"

    def __init__(
        self,
        *,
        api_key: str | None,
        http: httpx.AsyncClient,
        base_url: str = DEFAULT_BASE_URL,
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
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            http=http,
            describe=describe_error,
            clock=clock,
            timeout=request_timeout,
        )

    @property
    def unavailable_reason(self) -> str | None:
        if self._api_key:
            return None
        return f"set {self.key_setting} (a Replicate API token) or store the account's own Replicate key"

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

    async def submit(self, model: str, arguments: Mapping[str, Any], *, deadline: float | None = None) -> str:
        self._require_key()
        name, _, version = model.partition(":")
        if version:
            url, body = self._http.url("/v1/predictions"), {"version": version, "input": dict(arguments)}
        else:
            url, body = self._http.url(f"/v1/models/{name}/predictions"), {"input": dict(arguments)}
        prediction = await self._http.json("POST", url, json=body, deadline=deadline)
        prediction_id = prediction.get("id") if isinstance(prediction, dict) else None
        if not isinstance(prediction_id, str):
            raise ProviderError("the API answered a prediction without an id", provider=self.name)
        return prediction_id

    async def status(self, model: str, request_id: str, *, deadline: float | None = None) -> JobStatus:
        prediction = await self._get(request_id, deadline=deadline)
        state = _STATES.get(prediction.get("status"))
        if state is None:
            raise ProviderError(
                f"unknown prediction status {prediction.get('status')!r}",
                provider=self.name,
                request_id=request_id,
            )
        logs = tuple((prediction.get("logs") or "").splitlines())
        error = prediction.get("error")
        return JobStatus(
            state,
            progress=1.0 if state is JobState.COMPLETED else progress_from_logs(logs),
            logs=logs,
            error=str(error) if error else None,
        )

    async def result(self, model: str, request_id: str, *, deadline: float | None = None) -> ProviderResult:
        prediction = await self._get(request_id, deadline=deadline)
        output = prediction.get("output")
        items = output if isinstance(output, list) else [output]
        if items and all(is_media_url(item) for item in items):
            media = tuple(self._http.media_from_url(item) for item in items)
            text = None
        else:
            media = ()
            text = "".join(str(item) for item in items if item is not None) or None
        return ProviderResult(
            provider=self.name, model=model, data=prediction, media=media, text=text, request_id=request_id
        )

    async def cancel(self, model: str, request_id: str) -> None:
        await self._http.request(
            "POST", self._http.url(f"/v1/predictions/{request_id}/cancel"), request_id=request_id
        )

    async def _get(self, request_id: str, *, deadline: float | None) -> dict[str, Any]:
        prediction = await self._http.json(
            "GET", self._http.url(f"/v1/predictions/{request_id}"), deadline=deadline, request_id=request_id
        )
        if not isinstance(prediction, dict):
            raise ProviderError("the API answered a prediction that is not an object", provider=self.name)
        return prediction

    def _require_key(self) -> None:
        if reason := self.unavailable_reason:
            raise ProviderUnavailable(reason, provider=self.name)


def describe_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if not isinstance(body, dict):
        return str(body)[:500]
    detail, title = body.get("detail"), body.get("title")
    if detail and title and title not in str(detail):
        return f"{title}: {detail}"
    return str(detail or title or response.text.strip()[:500])
