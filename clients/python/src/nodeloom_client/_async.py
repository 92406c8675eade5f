"""`AsyncNodeloom`: the client's one implementation (`Nodeloom` drives it from synchronous code)."""

from __future__ import annotations

import asyncio
import inspect
import json as jsonlib
import mimetypes
import os
import random
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import aclosing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from nodeloom_client._errors import (
    APIError,
    Conflict,
    ExecutionFailed,
    Forbidden,
    NodeloomError,
    RateLimited,
    ServerError,
    StreamError,
    error_for,
    parse_retry_after,
)
from nodeloom_client._sse import parse_events
from nodeloom_client._types import (
    TERMINAL_STATUSES,
    BatchResult,
    Event,
    Execution,
    Media,
    Progress,
    Submitted,
    UploadedFile,
)

__version__ = "0.1.0"

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
API = "/api/v1"

ProgressCallback = Callable[[Progress], Any]
"""``on_progress(progress)``; a coroutine function is awaited."""

Output = Media | Mapping[str, Any] | str


class AsyncNodeloom:
    """An asyncio client for one nodeloom server and one API key.

        async with AsyncNodeloom(api_key="sk-...", base_url="http://127.0.0.1:8000") as nl:
            result = await nl.run("wf_...", {"prompt": "a red fox"}, on_progress=print)
            await nl.download(result.outputs["image"], "fox.png")

    ``api_key`` and ``base_url`` default to ``NODELOOM_API_KEY`` and ``NODELOOM_URL``. Every POST carries an
    ``Idempotency-Key`` (a retried submission never runs twice); 429, 502, 503 and 504 answers and dropped
    connections are retried up to ``max_retries`` times, after the answer's ``Retry-After`` when it gives
    one — but never when it asks for more than ``max_retry_wait`` seconds (a spent daily quota raises
    `RateLimited` at once). Other error answers raise their typed error (`NotFound`, `ValidationFailed`, …).
    """

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None, timeout: float = 60.0,
                 max_retries: int = 4, max_retry_wait: float = 120.0, stream_read_timeout: float = 45.0,
                 stream_reconnects: int = 5,
                 transport: httpx.AsyncBaseTransport | None = None, headers: Mapping[str, str] | None = None):
        key = api_key if api_key is not None else os.environ.get("NODELOOM_API_KEY")
        if not key:
            raise NodeloomError("no API key: pass api_key=… or set NODELOOM_API_KEY")
        self.base_url = (base_url or os.environ.get("NODELOOM_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.timeout = timeout
        #: the server sends a keep-alive every 15 s on an idle stream: longer silence means a dead connection
        self.stream_read_timeout = stream_read_timeout
        #: how often in a row a dropped event stream is reopened before `run` falls back to polling
        self.stream_reconnects = stream_reconnects
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {key}", "User-Agent": f"nodeloom-client-python/{__version__}",
                     **(headers or {})})

    async def __aenter__(self) -> AsyncNodeloom:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # the one request path ------------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                      headers: Mapping[str, str] | None = None, files: Any = None, data: Any = None,
                      idempotency_key: str | None = None, retries: int | None = None) -> Any:
        """One API call: the decoded JSON answer (None for 204). Raises the typed error of an error answer."""
        response = await self._send(method, path, json=json, params=params, headers=headers, files=files,
                                    data=data, idempotency_key=idempotency_key, retries=retries)
        if response.status_code == 204 or not response.content:
            return None
        return _json(response)

    async def _send(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                    headers: Mapping[str, str] | None = None, files: Any = None, data: Any = None,
                    idempotency_key: str | None = None, retries: int | None = None) -> httpx.Response:
        method = method.upper()
        hdrs = dict(headers or {})
        if method == "POST":  # the same key on every retry: the server replays instead of running twice
            hdrs.setdefault("Idempotency-Key", idempotency_key or new_idempotency_key())
        query = {k: v for k, v in (params or {}).items() if v is not None}
        budget = self.max_retries if retries is None else retries
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, json=json, params=query or None, headers=hdrs,
                                                    files=files, data=data)
            except httpx.TransportError:
                if attempt >= budget:
                    raise
                await asyncio.sleep(backoff(attempt))
                attempt += 1
                continue
            if response.status_code < 400:
                return response
            error = error_for(response.status_code, _json(response), response.headers, response.text)
            delay = self._retry_delay(error, attempt, budget)
            if delay is None:
                raise error
            await asyncio.sleep(delay)
            attempt += 1

    def _retry_delay(self, error: APIError, attempt: int, budget: int) -> float | None:
        """How long to wait before retrying after `error`, or None to raise it."""
        if attempt >= budget:
            return None
        if isinstance(error, RateLimited):
            wait = error.retry_after if error.retry_after is not None else backoff(attempt)
            return wait + random.uniform(0, 0.25) if wait <= self.max_retry_wait else None
        if isinstance(error, ServerError) and error.status in (502, 503, 504):
            asked = parse_retry_after(error.headers.get("retry-after"))
            wait = backoff(attempt) if asked is None else asked
            return wait if wait <= self.max_retry_wait else None
        if isinstance(error, Conflict) and error.code == "idempotency_key_in_use":
            return backoff(attempt)  # the first request with this key is still being processed
        return None

    # workflows -----------------------------------------------------------------------------------------
    async def workflows(self, q: str | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The account's workflows (newest first), every page followed; ``q`` searches names."""
        return await self._pages(f"{API}/workflows", {"q": q}, limit)

    async def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"{API}/workflows/{workflow_id}"))

    async def create_workflow(self, name: str, graph: Mapping[str, Any], description: str = "") -> dict[str, Any]:
        return dict(await self.request("POST", f"{API}/workflows",
                                       json={"name": name, "graph": graph, "description": description}))

    async def update_workflow(self, workflow_id: str, **fields: Any) -> dict[str, Any]:
        """Edit the draft: ``name=``, ``description=``, ``graph=``."""
        return dict(await self.request("PUT", f"{API}/workflows/{workflow_id}", json=fields))

    async def delete_workflow(self, workflow_id: str) -> None:
        await self.request("DELETE", f"{API}/workflows/{workflow_id}")

    async def publish(self, workflow_id: str) -> dict[str, Any]:
        """Snapshot the draft as the next immutable version: ``{workflowId, version, publishedAt}``."""
        return dict(await self.request("POST", f"{API}/workflows/{workflow_id}/publish"))

    async def validate(self, graph: Mapping[str, Any]) -> dict[str, Any]:
        return dict(await self.request("POST", f"{API}/workflows/validate", json={"graph": graph}))

    async def estimate(self, workflow_id: str, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return dict(await self.request("POST", f"{API}/workflows/{workflow_id}/estimate",
                                       json={"inputs": dict(inputs or {})}))

    async def import_comfyui(self, source: str | os.PathLike[str] | Mapping[str, Any], *, name: str | None = None,
                             description: str | None = None, inputs: Mapping[str, Any] | None = None,
                             outputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Import a ComfyUI workflow as a draft: a ``.json`` file (API or UI format), a ``.png`` ComfyUI saved,
        or the workflow itself as a dict. Answers the workflow plus ``importNotes``."""
        path = f"{API}/workflows/import/comfyui"
        if isinstance(source, Mapping):
            body = _drop_none({"name": name or "ComfyUI workflow", "description": description,
                               "workflow": dict(source), "inputs": inputs, "outputs": outputs})
            return dict(await self.request("POST", path, json=body))
        file = Path(source)
        content = file.read_bytes()
        if content[:8] == b"\x89PNG\r\n\x1a\n":
            fields = _drop_none({"name": name or file.stem, "description": description,
                                 "inputs": _dumps(inputs), "outputs": _dumps(outputs)})
            return dict(await self.request("POST", path, data=fields,
                                           files={"file": (file.name, content, "image/png")}))
        body = _drop_none({"name": name or file.stem, "description": description,
                           "workflow": jsonlib.loads(content), "inputs": inputs, "outputs": outputs})
        return dict(await self.request("POST", path, json=body))

    # executions ----------------------------------------------------------------------------------------
    async def execute(self, workflow_id: str, inputs: Mapping[str, Any] | None = None, *,
                      version: int | str | None = None, webhook_url: str | None = None,
                      webhook_events: Iterable[str] | None = None, idempotency_key: str | None = None,
                      wait: float | None = None, retries: int | None = None) -> Submitted:
        """Submit a run (202). Values that are paths (`pathlib.Path`) are uploaded first and sent as file ids.
        ``wait`` (seconds, ≤ 60) asks the server to hold the answer until the run ends (``Prefer: wait=N``)."""
        body: dict[str, Any] = {"inputs": await self._prepare_inputs(inputs)}
        if version is not None:
            body["version"] = version
        if webhook_url:
            body["webhookUrl"] = webhook_url
        if webhook_events is not None:
            body["webhookEvents"] = list(webhook_events)
        headers = {"Prefer": f"wait={int(wait)}"} if wait else None
        response = await self._send("POST", f"{API}/workflows/{workflow_id}/execute", json=body, headers=headers,
                                    idempotency_key=idempotency_key, retries=retries)
        res = _json(response)
        return Submitted(execution_id=res["executionId"], status=res["status"], poll_url=res.get("pollUrl"),
                         replayed=response.headers.get("idempotent-replayed") == "true")

    async def poll(self, execution_id: str) -> Execution:
        return Execution.from_json(await self.request("GET", f"{API}/workflows/executions/{execution_id}/poll"))

    async def wait(self, execution_id: str, *, timeout: float = 600.0, interval: float = 0.25,
                   max_interval: float = 5.0, on_progress: ProgressCallback | None = None) -> Execution:
        """Poll with back-off (×1.5 up to ``max_interval``) until the execution ends; `TimeoutError` after
        ``timeout`` seconds."""
        return await self._wait(execution_id, _Tracker(execution_id, on_progress), timeout=timeout,
                                interval=interval, max_interval=max_interval)

    async def _wait(self, execution_id: str, tracker: _Tracker, *, timeout: float, interval: float = 0.25,
                    max_interval: float = 5.0) -> Execution:
        deadline = time.monotonic() + timeout
        delay = interval
        while True:
            execution = await self.poll(execution_id)
            await tracker.polled(execution)
            if execution.done:
                return execution
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"execution {execution_id} still {execution.status} after {timeout:g} s")
            await asyncio.sleep(delay)
            delay = min(max_interval, delay * 1.5)

    async def run(self, workflow_id: str, inputs: Mapping[str, Any] | None = None, *,
                  on_progress: ProgressCallback | None = None, version: int | str | None = None,
                  webhook_url: str | None = None, webhook_events: Iterable[str] | None = None,
                  idempotency_key: str | None = None, timeout: float = 600.0, stream: bool = True,
                  raise_on_failure: bool = True) -> Execution:
        """Submit a run and follow it to its end; the final `Execution` (its ``outputs`` typed: media as
        `Media`). Progress comes from the event stream — resumed with ``Last-Event-ID`` when the connection
        drops, and replaced by polling with back-off when it cannot be reopened. A FAILED or CANCELLED run
        raises `ExecutionFailed` unless ``raise_on_failure=False``."""
        submitted = await self.execute(workflow_id, inputs, version=version, webhook_url=webhook_url,
                                       webhook_events=webhook_events, idempotency_key=idempotency_key)
        return await self.follow(submitted.execution_id, on_progress=on_progress, timeout=timeout, stream=stream,
                                 raise_on_failure=raise_on_failure)

    async def follow(self, execution_id: str, *, on_progress: ProgressCallback | None = None,
                     timeout: float = 600.0, stream: bool = True, raise_on_failure: bool = True) -> Execution:
        """Follow an execution already submitted to its end (what `run` does after submitting)."""
        try:
            execution = await asyncio.wait_for(self._follow(execution_id, on_progress, stream, timeout), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"execution {execution_id} did not end within {timeout:g} s") from None
        if raise_on_failure and not execution.ok:
            raise ExecutionFailed(execution)
        return execution

    async def _follow(self, execution_id: str, on_progress: ProgressCallback | None, stream: bool,
                      timeout: float) -> Execution:
        tracker = _Tracker(execution_id, on_progress)
        first = await self.poll(execution_id)  # every node, so progress knows the whole graph from the start
        await tracker.polled(first, announce=False)
        if first.done:
            await tracker.polled(first)
            return first
        if stream:
            try:
                async with aclosing(self.events(execution_id)) as events:
                    async for event in events:
                        await tracker.event(event)
                        if event.terminal:
                            break
            except StreamError:
                pass  # the stream cannot be had (a proxy that buffers, a dropped network): poll instead
        return await self._wait(execution_id, tracker, timeout=timeout)  # after the stream: one poll

    async def events(self, execution_id: str, *, last_event_id: int | None = None, reconnect: bool = True,
                     max_reconnects: int | None = None) -> AsyncGenerator[Event, None]:
        """The execution's server-sent events, from the first (or after ``last_event_id``) until the terminal
        one. A dropped connection is reopened with ``Last-Event-ID`` (so no event is lost or repeated), with
        back-off, up to ``max_reconnects`` times in a row without a new event (default: the client's
        ``stream_reconnects``); then `StreamError`."""
        last = last_event_id
        failures = 0
        max_reconnects = self.stream_reconnects if max_reconnects is None else max_reconnects
        while True:
            received = 0
            try:
                async with aclosing(self._stream_once(execution_id, last)) as stream:
                    async for event in stream:
                        received += 1
                        failures = 0
                        if event.id is not None:
                            last = event.id
                        yield event
                        if event.terminal:
                            return
                if received == 0:
                    return  # a clean end with nothing new: the execution had ended and we saw it all
                # a clean end without the terminal event: reconnect and ask for what follows
            except (httpx.TransportError, RateLimited, ServerError) as exc:
                if isinstance(exc, ServerError) and exc.status not in (502, 503, 504):
                    raise
                delay = exc.retry_after if isinstance(exc, RateLimited) and exc.retry_after else backoff(failures)
                if not reconnect or failures >= max_reconnects or delay > self.max_retry_wait:
                    raise StreamError(f"event stream of {execution_id} lost: {exc}") from exc
                await asyncio.sleep(delay)
                failures += 1

    async def _stream_once(self, execution_id: str, last: int | None) -> AsyncGenerator[Event, None]:
        headers = {"Accept": "text/event-stream"}
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        timeout = httpx.Timeout(self.timeout, read=self.stream_read_timeout)
        async with self._http.stream("GET", f"{API}/workflows/executions/{execution_id}/events", headers=headers,
                                     timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                raise error_for(response.status_code, _json(response), response.headers, response.text)
            async for event in parse_events(response.aiter_lines()):
                yield event

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        return dict(await self.request("POST", f"{API}/workflows/executions/{execution_id}/cancel") or {})

    async def executions(self, *, workflow_id: str | None = None, status: str | None = None,
                         limit: int | None = 20) -> list[dict[str, Any]]:
        """The account's executions, newest first (``limit=None`` follows every page)."""
        return await self._pages(f"{API}/workflows/executions", {"workflowId": workflow_id, "status": status},
                                 limit)

    async def delete_execution(self, execution_id: str) -> None:
        await self.request("DELETE", f"{API}/workflows/executions/{execution_id}")

    async def batch(self, workflow_id: str, inputs: Iterable[Mapping[str, Any]], *, concurrency: int | None = None,
                    version: int | str | None = None, on_progress: ProgressCallback | None = None,
                    timeout: float = 600.0, max_submit_retries: int = 30) -> AsyncGenerator[BatchResult, None]:
        """Run the workflow once per inputs object and yield each `BatchResult` as it finishes.

        At most ``concurrency`` runs are in flight (submitted and not ended) at any moment, and never more than
        the account's own cap (``rateLimits.concurrency`` of ``GET /usage``; without the ``usage`` scope, the
        ``concurrency`` given, else 1). A submission refused with 429 waits for its Retry-After and tries again
        (up to ``max_submit_retries`` times); a run that fails is yielded with its execution, one that could not
        be submitted with its ``error``."""
        items = [dict(i) for i in inputs]
        cap = await self.concurrency_cap()
        limit = max(1, min(concurrency or cap or 1, cap or concurrency or 1))
        gate = asyncio.Semaphore(limit)
        done: asyncio.Queue[BatchResult] = asyncio.Queue()

        async def one(index: int, item: dict[str, Any]) -> None:
            key = new_idempotency_key()  # one key per item: its retries never start a second run
            try:
                async with gate:
                    submitted = await self.execute(workflow_id, item, version=version, idempotency_key=key,
                                                   retries=max_submit_retries)
                    execution = await self.follow(submitted.execution_id, on_progress=on_progress, timeout=timeout,
                                                  raise_on_failure=False)
                result = BatchResult(index=index, inputs=item, execution=execution)
            except (NodeloomError, httpx.HTTPError, TimeoutError) as exc:
                result = BatchResult(index=index, inputs=item, error=exc)
            done.put_nowait(result)

        tasks = [asyncio.create_task(one(i, item)) for i, item in enumerate(items)]
        try:
            for _ in items:
                yield await done.get()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def concurrency_cap(self) -> int | None:
        """How many of the account's executions may run at once (None when the key may not read usage)."""
        try:
            usage = await self.usage()
        except Forbidden:
            return None
        value = (usage.get("rateLimits") or {}).get("concurrency")
        return int(value) if value else None

    # files ---------------------------------------------------------------------------------------------
    async def upload(self, path: str | os.PathLike[str], content_type: str | None = None) -> UploadedFile:
        """Upload a file; pass the answer's ``file_id`` as an image/video/audio/file input."""
        file = Path(path)
        ctype = content_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        body = await self.request("POST", f"{API}/uploads", files={"file": (file.name, file.read_bytes(), ctype)})
        return UploadedFile.from_json(body)

    async def download(self, output: Output, path: str | os.PathLike[str]) -> Path:
        """Save a media output (a `Media`, its JSON, or a URL) to ``path``; a directory gets a file named
        after the link. The signed link needs no key, and the key is never sent with it. Returns the path."""
        url = output.url if isinstance(output, Media) else str(output["url"]) if isinstance(output, Mapping) \
            else str(output)
        target = Path(path)
        for attempt in range(self.max_retries + 1):
            request = self._http.build_request("GET", url)
            request.headers.pop("Authorization", None)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TransportError:
                if attempt >= self.max_retries:
                    raise
                await asyncio.sleep(backoff(attempt))
                continue
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(response.status_code, _json(response), response.headers, response.text)
                if target.is_dir() or str(path).endswith(("/", os.sep)):
                    target = target / _file_name(url, response.headers.get("content-type"))
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".part")
                with partial.open("wb") as fh:
                    async for chunk in response.aiter_bytes():
                        fh.write(chunk)
                partial.replace(target)
                return target
            finally:
                await response.aclose()
        raise AssertionError("unreachable")

    # account -------------------------------------------------------------------------------------------
    async def usage(self) -> dict[str, Any]:
        """``{plan, credits: {balance}, executions, rateLimits: {…, concurrency}, daily}``."""
        return dict(await self.request("GET", f"{API}/usage"))

    async def account(self) -> dict[str, Any]:
        """``{id, name, plan, credits, webhookSecret}`` (needs ``manage``)."""
        return dict(await self.request("GET", f"{API}/account"))

    async def nodes(self) -> list[dict[str, Any]]:
        return list((await self.request("GET", f"{API}/nodes"))["data"])

    # helpers -------------------------------------------------------------------------------------------
    async def _pages(self, path: str, params: Mapping[str, Any], limit: int | None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page_size = min(100, limit - len(found)) if limit is not None else 100
            page = await self.request("GET", path, params={**params, "limit": page_size, "cursor": cursor})
            found.extend(page.get("data") or [])
            cursor = page.get("nextCursor")
            if not cursor or (limit is not None and len(found) >= limit):
                return found[:limit] if limit is not None else found

    async def _prepare_inputs(self, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
        prepared: dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            prepared[name] = (await self.upload(value)).file_id if isinstance(value, os.PathLike) else value
        return prepared


class _Tracker:
    """Turns events (or successive polls) into `Progress` calls: every node's status, each change once."""

    def __init__(self, execution_id: str, callback: ProgressCallback | None):
        self.execution_id = execution_id
        self.callback = callback
        self.nodes: dict[str, str] = {}
        self.seen: set[tuple[str, str | None]] = set()

    async def event(self, event: Event) -> None:
        node = event.node_id
        status = {"node.started": "RUNNING", "node.completed": "COMPLETED", "node.failed": "FAILED"}.get(event.event)
        if node is not None and status is not None:
            self.nodes[node] = status
        if event.event == "node.progress":  # native nodes send a fraction, ComfyUI segments {value, max}
            value, maximum = _num(event.data.get("value")), _num(event.data.get("max"))
            if value is None and _num(event.data.get("progress")) is not None:
                value, maximum = _num(event.data.get("progress")), 1.0
            await self._emit(event.event, node, event.data, value=value, maximum=maximum)
        else:
            self.seen.add((event.event, node))
            await self._emit(event.event, node, event.data)

    async def polled(self, execution: Execution, *, announce: bool = True) -> None:
        """Announce what a poll shows that no event did (nodes whose status moved, the execution's end)."""
        for node, state in execution.nodes.items():
            previous = self.nodes.get(node)
            self.nodes[node] = state.status if previous is None or state.status != "QUEUED" else previous
            if not announce:
                continue
            name = {"RUNNING": "node.started", "COMPLETED": "node.completed", "FAILED": "node.failed"}.get(
                state.status)
            if name is not None and (name, node) not in self.seen:
                if name != "node.started" and ("node.started", node) not in self.seen:
                    self.seen.add(("node.started", node))
                    await self._emit("node.started", node, {"nodeId": node})
                self.seen.add((name, node))
                await self._emit(name, node, {"nodeId": node, "status": state.status})
        if announce and execution.done:
            name = f"execution.{execution.status.lower()}"
            if (name, None) not in self.seen:
                self.seen.add((name, None))
                await self._emit(name, None, execution.raw)

    async def _emit(self, name: str, node: str | None, data: dict[str, Any], *, value: float | None = None,
                    maximum: float | None = None) -> None:
        if self.callback is None:
            return
        ended = sum(1 for s in self.nodes.values() if s in TERMINAL_STATUSES)
        fraction = 1.0 if name.startswith("execution.") and name != "execution.started" else (
            ended / len(self.nodes) if self.nodes else 0.0)
        progress = Progress(execution_id=self.execution_id, event=name, node_id=node, nodes=dict(self.nodes),
                            fraction=fraction, value=value, max=maximum, data=data)
        outcome = self.callback(progress)
        if inspect.isawaitable(outcome):
            await outcome


def new_idempotency_key() -> str:
    return f"nlc-{uuid.uuid4()}"


def backoff(attempt: int) -> float:
    """Exponential back-off with jitter: about 0.5 s, 1 s, 2 s … capped at 30 s."""
    return min(30.0, 0.5 * 2.0 ** attempt) * (0.5 + random.random() / 2)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _dumps(value: Any) -> str | None:
    return None if value is None else jsonlib.dumps(value)


def _file_name(url: str, content_type: str | None) -> str:
    name = Path(urlsplit(url).path).name or "output"
    if not Path(name).suffix and content_type:
        name += mimetypes.guess_extension(content_type.split(";")[0].strip()) or ""
    return name

