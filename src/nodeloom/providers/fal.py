"""fal's queue API, as fal-client 1.0.x speaks it.

    POST {base}/{endpoint_id}                         -> {request_id, status_url, response_url, cancel_url}
    GET  {base}/{owner}/{alias}/requests/{id}/status?logs=1
         -> {"status": "IN_QUEUE", "queue_position": n} | {"status": "IN_PROGRESS", "logs": [...]}
          | {"status": "COMPLETED", "logs": [...], "metrics": {...}, "error"?: ..., "error_type"?: ...}
    GET  {base}/{owner}/{alias}/requests/{id}         -> the model's output, or its error status
    PUT  {base}/{owner}/{alias}/requests/{id}/cancel  -> 202 {"status": "CANCELLATION_REQUESTED"}

The request URLs drop an endpoint's sub-path (`fal-ai/flux-2-pro/edit` is polled under
`fal-ai/flux-2-pro`) and keep a `workflows/` or `comfy/` namespace, exactly as the client's
`from_request_id` builds them, so a resumed job is polled the same way as a fresh one.
Errors come as `{"detail": "..."}` or FastAPI's `{"detail": [{"loc", "msg", "type"}]}`.
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
    Media,
    ProviderResult,
    progress_from_logs,
)
from nodeloom.providers.errors import ProviderError

DEFAULT_BASE_URL = "https://queue.fal.run"
_NAMESPACES = ("workflows", "comfy")


class FalProvider(QueuedVendor):
    name = "fal"
    key_setting = "FAL_KEY"
    key_description = "a fal.ai API key"
    account_key_label = "fal"

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, **kwargs: Any):
        super().__init__(base_url=base_url, **kwargs)

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Key {api_key}"}

    @staticmethod
    def describe_error(response: httpx.Response) -> str:
        return describe_error(response)

    async def submit(self, model: str, arguments: Mapping[str, Any], *, deadline: float | None = None) -> str:
        self._require_key()
        body = await self._http.json("POST", self._http.url(model), json=dict(arguments), deadline=deadline)
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if not isinstance(request_id, str):
            raise ProviderError("the queue answered a submission without a request_id", provider=self.name)
        return request_id

    async def status(self, model: str, request_id: str, *, deadline: float | None = None) -> JobStatus:
        body = await self._http.json(
            "GET",
            self._request_url(model, request_id) + "/status",
            params={"logs": "1"},
            deadline=deadline,
            request_id=request_id,
        )
        state = body.get("status")
        logs = tuple(
            str(entry.get("message", "")) for entry in body.get("logs") or () if isinstance(entry, dict)
        )
        if state == "IN_QUEUE":
            return JobStatus(JobState.QUEUED, queue_position=body.get("queue_position"), logs=logs)
        if state == "IN_PROGRESS":
            return JobStatus(JobState.RUNNING, progress=progress_from_logs(logs), logs=logs)
        if state == "COMPLETED":
            # A failed request also ends COMPLETED, with `error`; its result answers with the error status.
            return JobStatus(JobState.COMPLETED, progress=1.0, logs=logs)
        raise ProviderError(f"unknown queue status {state!r}", provider=self.name, request_id=request_id)

    async def result(self, model: str, request_id: str, *, deadline: float | None = None) -> ProviderResult:
        body = await self._http.json(
            "GET", self._request_url(model, request_id), deadline=deadline, request_id=request_id
        )
        return ProviderResult(
            provider=self.name, model=model, data=body, media=tuple(self._media(body)), request_id=request_id
        )

    async def cancel(self, model: str, request_id: str) -> None:
        await self._http.request(
            "PUT", self._request_url(model, request_id) + "/cancel", request_id=request_id
        )

    def _request_url(self, model: str, request_id: str) -> str:
        parts = model.strip("/").split("/")
        app = parts[:3] if parts[0] in _NAMESPACES else parts[:2]
        return self._http.url("/".join(app) + f"/requests/{request_id}")

    def _media(self, value: Any) -> list[Media]:
        """Every fal File object (`{"url", "content_type", ...}`) anywhere in the output, in order."""
        found: list[Media] = []
        if isinstance(value, dict):
            url = value.get("url")
            if is_media_url(url):
                found.append(self._http.media_from_url(url, value.get("content_type")))
            else:
                for item in value.values():
                    found.extend(self._media(item))
        elif isinstance(value, list):
            for item in value:
                found.extend(self._media(item))
        return found



def describe_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                location = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{location}: {item.get('msg')}" if location else str(item.get("msg")))
        return "; ".join(parts)
    if detail:
        return str(detail)
    return response.text.strip()[:500]
