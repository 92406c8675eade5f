"""SDK implementation. The sync Client drives the async core on a private event loop (one copy of the logic)."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


class NodeloomAPIError(Exception):
    """An error answer from the API, with its envelope's code, message and extra fields."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any]):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


@dataclass(frozen=True)
class Submitted:
    execution_id: str
    status: str
    poll_url: str | None = None


@dataclass(frozen=True)
class Execution:
    execution_id: str
    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    credits_used: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Execution:
        return cls(execution_id=body["executionId"], status=body["status"], outputs=body.get("outputs") or {},
                   nodes=body.get("nodes") or {}, error=body.get("error"),
                   credits_used=float(body.get("creditsUsed") or 0), raw=body)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class AsyncClient:
    def __init__(self, *, base_url: str, api_key: str, timeout: float = 60.0, max_retries: int = 4,
                 transport: httpx.AsyncBaseTransport | None = None):
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                       headers={"Authorization": f"Bearer {api_key}",
                                                "User-Agent": "nodeloom-python/0.1"})
        self.max_retries = max_retries

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None,
                      headers: dict[str, str] | None = None) -> Any:
        headers = dict(headers or {})
        if method == "POST":
            headers.setdefault("Idempotency-Key", str(uuid.uuid4()))
        for attempt in range(self.max_retries + 1):
            try:
                r = await self._http.request(method, path, json=json_body, params=params, headers=headers)
            except httpx.TransportError:
                if attempt == self.max_retries:
                    raise
                await asyncio.sleep(_backoff(attempt))
                continue
            if r.status_code in (429, 502, 503, 504) and attempt < self.max_retries:
                await asyncio.sleep(_retry_after(r) or _backoff(attempt))
                continue
            if r.status_code == 409 and r.headers.get("content-type", "").startswith("application/json") \
                    and _code(r) == "idempotency_key_in_use" and attempt < self.max_retries:
                await asyncio.sleep(_backoff(attempt))
                continue
            if r.status_code >= 400:
                body = _json(r)
                err = body.get("error", {}) if isinstance(body, dict) else {}
                raise NodeloomAPIError(r.status_code, err.get("code", "error"), err.get("message", r.text), body)
            return None if r.status_code == 204 else _json(r)
        raise AssertionError("unreachable")

    # workflows -----------------------------------------------------------------------------------------
    async def create_workflow(self, name: str, graph: dict[str, Any], description: str = "") -> dict[str, Any]:
        return await self.request("POST", "/api/v1/workflows",
                                  json_body={"name": name, "graph": graph, "description": description})

    async def publish(self, workflow_id: str) -> dict[str, Any]:
        return await self.request("POST", f"/api/v1/workflows/{workflow_id}/publish")

    async def workflows(self, q: str | None = None) -> list[dict[str, Any]]:
        return (await self.request("GET", "/api/v1/workflows", params={"q": q} if q else None))["data"]

    # executions ----------------------------------------------------------------------------------------
    async def execute(self, workflow_id: str, inputs: dict[str, Any] | None = None, *,
                      version: int | str | None = None, webhook_url: str | None = None,
                      idempotency_key: str | None = None) -> Submitted:
        body: dict[str, Any] = {"inputs": inputs or {}}
        if version is not None:
            body["version"] = version
        if webhook_url:
            body["webhookUrl"] = webhook_url
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        res = await self.request("POST", f"/api/v1/workflows/{workflow_id}/execute", json_body=body, headers=headers)
        return Submitted(res["executionId"], res["status"], res.get("pollUrl"))

    async def poll(self, execution_id: str) -> Execution:
        return Execution.from_body(await self.request("GET", f"/api/v1/workflows/executions/{execution_id}/poll"))

    async def wait(self, execution_id: str, *, timeout: float = 600.0, interval: float = 0.25,
                   max_interval: float = 5.0) -> Execution:
        """Poll until the execution ends (with backoff); raises TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        delay = interval
        while True:
            ex = await self.poll(execution_id)
            if ex.done:
                return ex
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"execution {execution_id} still {ex.status} after {timeout:g} s")
            await asyncio.sleep(delay)
            delay = min(max_interval, delay * 1.5)

    async def run(self, workflow_id: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Execution:
        submitted = await self.execute(workflow_id, inputs, **kwargs)
        return await self.wait(submitted.execution_id)

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        return await self.request("POST", f"/api/v1/workflows/executions/{execution_id}/cancel")

    async def events(self, execution_id: str, *, last_event_id: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """Server-sent events as dicts {id, event, data}; ends after the terminal event."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id else {}
        async with self._http.stream("GET", f"/api/v1/workflows/executions/{execution_id}/events",
                                     headers=headers, timeout=None) as r:
            if r.status_code >= 400:
                await r.aread()
                body = _json(r)
                err = body.get("error", {}) if isinstance(body, dict) else {}
                raise NodeloomAPIError(r.status_code, err.get("code", "error"), err.get("message", ""), body)
            current: dict[str, Any] = {}
            async for line in r.aiter_lines():
                if line.startswith("id: "):
                    current["id"] = int(line[4:])
                elif line.startswith("event: "):
                    current["event"] = line[7:]
                elif line.startswith("data: "):
                    current["data"] = json.loads(line[6:])
                elif not line and current:
                    yield current
                    current = {}

    async def upload(self, path: str, content_type: str | None = None) -> dict[str, Any]:

        p = Path(path)
        ctype = content_type or mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        r = await self._http.post("/api/v1/uploads", files={"file": (p.name, p.read_bytes(), ctype)},
                                  headers={"Idempotency-Key": str(uuid.uuid4())})
        if r.status_code >= 400:
            body = _json(r)
            err = body.get("error", {}) if isinstance(body, dict) else {}
            raise NodeloomAPIError(r.status_code, err.get("code", "error"), err.get("message", r.text), body)
        return _json(r)


class Client:
    """Synchronous wrapper: the same methods as AsyncClient, run on a private event loop."""

    def __init__(self, *, base_url: str, api_key: str, **kwargs: Any):
        self._loop = asyncio.new_event_loop()
        self._async = AsyncClient(base_url=base_url, api_key=api_key, **kwargs)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._loop.run_until_complete(self._async.aclose())
        self._loop.close()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._async, name)
        if not callable(attr):
            return attr
        if name == "events":
            def stream(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
                agen = attr(*args, **kwargs)
                while True:
                    try:
                        yield self._loop.run_until_complete(agen.__anext__())
                    except StopAsyncIteration:
                        return
            return stream

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attr(*args, **kwargs))

        return call


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * 2 ** attempt) * (0.5 + random.random() / 2)


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return {}


def _code(r: httpx.Response) -> str | None:
    body = _json(r)
    return body.get("error", {}).get("code") if isinstance(body, dict) else None
