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

from collections.abc import Mapping
from typing import Any

import httpx

from nodeloom.providers._http import is_media_url
from nodeloom.providers._queued import QueuedVendor
from nodeloom.providers.base import (
    JobState,
    JobStatus,
    ProviderResult,
    progress_from_logs,
)
from nodeloom.providers.errors import ProviderError

DEFAULT_BASE_URL = "https://api.replicate.com"

_STATES = {
    "starting": JobState.QUEUED,
    "processing": JobState.RUNNING,
    "succeeded": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "canceled": JobState.CANCELLED,
    "aborted": JobState.CANCELLED,
}


class ReplicateProvider(QueuedVendor):
    name = "replicate"
    key_setting = "REPLICATE_API_TOKEN"
    key_description = "a Replicate API token"
    account_key_label = "Replicate"

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, **kwargs: Any):
        super().__init__(base_url=base_url, **kwargs)

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @staticmethod
    def describe_error(response: httpx.Response) -> str:
        return describe_error(response)

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
        status = prediction.get("status")
        state = _STATES.get(status) if isinstance(status, str) else None
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
        urls = [item for item in items if is_media_url(item)]
        if items and len(urls) == len(items):
            media = tuple(self._http.media_from_url(url) for url in urls)
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
