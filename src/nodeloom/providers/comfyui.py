"""One ComfyUI server, spoken to as ComfyUI 0.3.64 (Comfy-Org/ComfyUI a125cd84) answers over HTTP and WebSocket.

    POST /prompt {prompt, prompt_id, client_id, extra_data?} -> {prompt_id, number, node_errors}
         400 {error: {type, message, details, extra_info}, node_errors: {id: {errors, dependent_outputs, class_type}}}
    GET  /ws?clientId=      JSON frames {type, data} for the client that submitted; binary frames are previews
    GET  /queue             {queue_running: [[number, prompt_id, prompt, extra_data, outputs]], queue_pending: [...]}
    POST /queue {delete}    GET /history/{id} -> {id: {prompt, outputs, status, meta}} | {} while unknown
    POST /interrupt {prompt_id}    GET /view?filename=&subfolder=&type=    POST /upload/image (multipart)
    GET  /object_info, /system_stats

What the protocol leaves to its clients, and this one does:
- ComfyUI does not deduplicate prompt ids: posting an id twice runs the prompt twice. The caller chooses the id
  (a lowercase UUID), stores it, then calls `submit`; after a crash it asks `locate` and posts again only when the
  server knows nothing of the id.
- Events go only to the socket of the submitting `client_id`, and a socket opened with an id in use silently takes
  its place (the other socket stays open and hears nothing). `EventStream.follow` asks `locate` whenever the socket
  has been quiet a while, and polls `/history` when the socket closes, so a lost event never hangs a caller.
  `SharedEvents` is one socket (one client id) for many prompts, its frames dispatched by prompt id.
- `execution_success` is sent before the history entry is written, `executing {node: null}` after it: terminal
  events are yielded only with the history entry (status, outputs, timestamps) in hand. A socket that told a
  prompt's `execution_start` and its terminal message told the whole entry — the same messages and the `executed`
  outputs ComfyUI builds it from — and the terminal event comes at once; otherwise it waits for the END frame and
  reads `/history`.
- A 200 from /prompt may still carry `node_errors`: the output nodes that failed validation are silently dropped
  and the rest run (`Submitted.node_errors`).
- `/interrupt {prompt_id}` acts only while that prompt is running, stops it at the next node boundary, and is lost
  if it lands just as the prompt starts: `cancel` repeats it until the server shows the prompt gone.

Base URLs are operator-configured and trusted (no address guard); redirects are never followed, neither over HTTP
nor on the socket. Deadlines are absolute times on the client's `clock` (`time.monotonic` unless given).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import mimetypes
import posixpath
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, NamedTuple

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from nodeloom.errors import NodeloomError

__all__ = [
    "Cached",
    "ComfyClient",
    "ComfyError",
    "ComfyEvent",
    "ComfyExecutionError",
    "ComfyUnavailable",
    "DeadlineExceeded",
    "EventStream",
    "ExecutionStart",
    "Failed",
    "HistoryEntry",
    "InputError",
    "Interrupted",
    "Located",
    "NodeError",
    "NodeExecuted",
    "NodeStarted",
    "Output",
    "OutputFile",
    "OutputText",
    "Progress",
    "PromptLost",
    "PromptRejected",
    "QueueState",
    "SharedEvents",
    "Submitted",
    "Succeeded",
    "ViewedFile",
    "Watch",
    "node_outputs",
    "outputs",
]

Clock = Callable[[], float]

_log = logging.getLogger("nodeloom.comfyui")


# ── errors ───────────────────────────────────────────────────────────────────────────────────────────────────────


class ComfyError(NodeloomError):
    """Root of what a ComfyUI server makes this client raise; `server` is its base URL.

    ComfyError                — an answer that makes no sense, a redirect, a 4xx/5xx other than the ones below
    ├── ComfyUnavailable      — refused connection, timeout, dropped connection, 502/503/504: the server is down
    ├── PromptRejected        — 400 from /prompt, with ComfyUI's `error` and `node_errors`
    ├── ComfyExecutionError   — `HistoryEntry.raise_for_status` on a prompt that failed or was interrupted
    ├── PromptLost            — the server knows nothing of a prompt being waited for (taken off, or restarted)
    └── DeadlineExceeded      — a wait passed its deadline; the prompt may still be queued or running
    """

    def __init__(self, message: str, *, server: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.server = server
        self.status = status

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"ComfyUI {self.server}: {self.message}{status}"


class ComfyUnavailable(ComfyError):
    pass


@dataclass(frozen=True, slots=True)
class InputError:
    """One reason ComfyUI gave for refusing a node: `input_name` names the input when the reason is about one."""

    type: str
    message: str
    details: str
    input_name: str | None
    extra_info: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NodeError:
    node_id: str
    class_type: str
    errors: tuple[InputError, ...]
    dependent_outputs: tuple[str, ...]


class PromptRejected(ComfyError):
    """ComfyUI refused the prompt (400): nothing was queued.

    `error_type` is ComfyUI's (`invalid_prompt`, `prompt_no_outputs`, `prompt_outputs_failed_validation` …);
    `node_errors` maps a node id to its reasons. `invalid_prompt` names its node only in `details`
    ("Node ID '#3'"), which `node_id` reads back.
    """

    def __init__(
        self,
        message: str,
        *,
        server: str,
        error_type: str,
        details: str,
        extra_info: Mapping[str, Any],
        node_errors: Mapping[str, NodeError],
    ):
        super().__init__(message, server=server, status=400)
        self.error_type = error_type
        self.details = details
        self.extra_info = extra_info
        self.node_errors = node_errors

    @property
    def node_id(self) -> str | None:
        prefix = "Node ID '#"
        if self.details.startswith(prefix) and self.details.endswith("'"):
            return self.details[len(prefix) : -1]
        return None


class ComfyExecutionError(ComfyError):
    def __init__(self, message: str, *, server: str, event: Failed | Interrupted):
        super().__init__(message, server=server)
        self.event = event


class PromptLost(ComfyError):
    def __init__(self, message: str, *, server: str, prompt_id: str):
        super().__init__(message, server=server)
        self.prompt_id = prompt_id


class DeadlineExceeded(ComfyError):
    def __init__(self, message: str, *, server: str, prompt_id: str):
        super().__init__(message, server=server)
        self.prompt_id = prompt_id


# ── what the server answers ─────────────────────────────────────────────────────────────────────────────────────


class QueueState(NamedTuple):
    """Prompt ids ComfyUI is running and holding, the pending ones in the order it will run them."""

    running: tuple[str, ...]
    pending: tuple[str, ...]


class ViewedFile(NamedTuple):
    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class Submitted:
    prompt_id: str
    number: float
    node_errors: Mapping[str, NodeError]
    """Output nodes that failed validation and will not run although the prompt was queued."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A finished prompt as `/history` keeps it (in memory: lost when the server restarts)."""

    prompt_id: str
    status: str | None
    """"success" or "error" (an interrupted prompt is an "error": see `outcome`)."""
    completed: bool
    outputs: Mapping[str, Mapping[str, Any]]
    """Node id → the UI output it reported (`images`, `audio`, `text` …); read it with `outputs()`."""
    messages: tuple[tuple[str, Mapping[str, Any]], ...]
    """ComfyUI's own record of the run's events (execution_start, execution_cached, the terminal one)."""
    server: str = ""
    """The base URL of the server that ran it."""

    def _message(self, *names: str) -> tuple[str, Mapping[str, Any]] | None:
        for name, data in reversed(self.messages):
            if name in names:
                return name, data
        return None

    @property
    def started_at(self) -> float | None:
        """When ComfyUI began executing the prompt, in seconds since the epoch by the server's clock."""
        found = self._message("execution_start")
        return _seconds(found[1].get("timestamp")) if found else None

    @property
    def ended_at(self) -> float | None:
        found = self._message("execution_success", "execution_error", "execution_interrupted")
        return _seconds(found[1].get("timestamp")) if found else None

    def raise_for_status(self) -> None:
        """Raise ComfyExecutionError unless the prompt succeeded."""
        outcome = self.outcome
        if isinstance(outcome, Failed):
            where = f"{outcome.node_type} (node {outcome.node_id})" if outcome.node_id else "the prompt"
            raise ComfyExecutionError(
                f"{where} failed: {outcome.exception_type}: {outcome.exception_message}",
                server=self.server,
                event=outcome,
            )
        if isinstance(outcome, Interrupted):
            raise ComfyExecutionError(f"prompt {self.prompt_id} was interrupted", server=self.server, event=outcome)

    @property
    def outcome(self) -> Succeeded | Failed | Interrupted:
        """The terminal event this entry records."""
        found = self._message("execution_success", "execution_error", "execution_interrupted")
        name, data = found if found else ("execution_success" if self.status == "success" else "execution_error", {})
        timestamp = _seconds(data.get("timestamp"))
        if name == "execution_success":
            return Succeeded(prompt_id=self.prompt_id, timestamp=timestamp, entry=self)
        if name == "execution_interrupted":
            return Interrupted(
                prompt_id=self.prompt_id,
                node_id=_opt_str(data.get("node_id")),
                node_type=_opt_str(data.get("node_type")),
                timestamp=timestamp,
                entry=self,
            )
        traceback = data.get("traceback")
        return Failed(
            prompt_id=self.prompt_id,
            node_id=_opt_str(data.get("node_id")),
            node_type=_opt_str(data.get("node_type")),
            exception_type=str(data.get("exception_type") or ""),
            exception_message=str(data.get("exception_message") or ""),
            traceback=tuple(str(line) for line in traceback) if isinstance(traceback, list) else (),
            timestamp=timestamp,
            entry=self,
        )


@dataclass(frozen=True, slots=True)
class Located:
    """Where ComfyUI knows a prompt: queued ("pending"), "running", or "done" with its history entry."""

    state: Literal["running", "pending", "done"]
    entry: HistoryEntry | None = None


# ── events ───────────────────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class ExecutionStart:
    prompt_id: str
    timestamp: float | None
    """Seconds since the epoch by the server's clock; where run-seconds are counted from."""


@dataclass(frozen=True, slots=True)
class Cached:
    prompt_id: str
    nodes: tuple[str, ...]
    """Nodes whose outputs ComfyUI reuses from an earlier prompt: they are not started again."""


@dataclass(frozen=True, slots=True)
class NodeStarted:
    prompt_id: str
    node: str
    display_node: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    prompt_id: str
    node: str | None
    value: float
    max: float


@dataclass(frozen=True, slots=True)
class NodeExecuted:
    """A node reported UI output (output nodes: SaveImage, PreviewAny …); other nodes finish silently."""

    prompt_id: str
    node: str
    output: Mapping[str, Any]
    display_node: str | None = None


@dataclass(frozen=True, slots=True)
class Succeeded:
    prompt_id: str
    timestamp: float | None
    entry: HistoryEntry = field(repr=False)


@dataclass(frozen=True, slots=True)
class Failed:
    prompt_id: str
    node_id: str | None
    node_type: str | None
    exception_type: str
    exception_message: str
    traceback: tuple[str, ...]
    timestamp: float | None
    entry: HistoryEntry = field(repr=False)


@dataclass(frozen=True, slots=True)
class Interrupted:
    prompt_id: str
    node_id: str | None
    node_type: str | None
    timestamp: float | None
    entry: HistoryEntry = field(repr=False)


ComfyEvent = ExecutionStart | Cached | NodeStarted | Progress | NodeExecuted | Succeeded | Failed | Interrupted
Terminal = Succeeded | Failed | Interrupted


# ── outputs ──────────────────────────────────────────────────────────────────────────────────────────────────────

OutputKind = Literal["image", "animated", "video", "audio", "3d", "file"]
_VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"}
_AUDIO_SUFFIXES = {".flac", ".mp3", ".opus", ".ogg", ".wav", ".m4a"}


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file a node saved: fetch it with `ComfyClient.view(filename, subfolder=…, type=…)`."""

    node: str
    kind: OutputKind
    filename: str
    subfolder: str
    type: str
    """"output", "temp" (previews) or "input"."""
    format: str | None = None
    """A MIME type where the node gave one (custom video nodes' `gifs`)."""


@dataclass(frozen=True, slots=True)
class OutputText:
    node: str
    text: str
    kind: Literal["text"] = "text"


Output = OutputFile | OutputText


def outputs(entry: HistoryEntry) -> dict[str, list[Output]]:
    """Every node's output files and texts, keyed by node id, in the order the node reported them."""
    return {node: node_outputs(node, ui) for node, ui in entry.outputs.items()}


def node_outputs(node: str, ui: Mapping[str, Any]) -> list[Output]:
    """One node's UI output (a history entry's or a `NodeExecuted.output`) as typed records.

    ComfyUI reports images under `images` (`animated: [true]` for SaveAnimatedWEBP/PNG and, with the same keys,
    for SaveVideo's file), audio under `audio`, 3D files under `3d`, PreviewAny's value under `text`; custom video
    nodes use `gifs` with a `format`. Files under other keys are kept as kind "file".
    """
    found: list[Output] = []
    animated = _flag(ui.get("animated"))
    for key, values in ui.items():
        if key == "animated" or not isinstance(values, list | tuple):
            continue
        for item in values:
            if key == "text":
                if isinstance(item, str):
                    found.append(OutputText(node=node, text=item))
                continue
            if not isinstance(item, Mapping) or not isinstance(item.get("filename"), str):
                continue
            filename: str = item["filename"]
            fmt = _opt_str(item.get("format"))
            found.append(
                OutputFile(
                    node=node,
                    kind=_kind(key, filename, fmt, animated=animated),
                    filename=filename,
                    subfolder=str(item.get("subfolder") or ""),
                    type=str(item.get("type") or "output"),
                    format=fmt,
                )
            )
    return found


def _kind(key: str, filename: str, fmt: str | None, *, animated: bool) -> OutputKind:
    suffix = posixpath.splitext(filename)[1].lower()
    if key == "audio" or suffix in _AUDIO_SUFFIXES:
        return "audio"
    if key == "3d":
        return "3d"
    if suffix in _VIDEO_SUFFIXES or (fmt or "").startswith("video/") or key in ("video", "videos"):
        return "video"
    if key == "gifs" or (key == "images" and (animated or suffix == ".gif")):
        return "animated"
    if key == "images":
        return "image"
    return "file"


def _flag(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(v is True for v in value)
    return value is True


# ── the client ───────────────────────────────────────────────────────────────────────────────────────────────────


class _ConnectWithoutRedirects(connect):
    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class ComfyClient:
    """An async client for one ComfyUI server. Holds no state but its configuration (and its own httpx client if
    none was given: close it with `aclose` or `async with`)."""

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
        transfer_timeout: float = 300.0,
        quiet_check: float = 5.0,
        max_ws_message: int = 64 * 1024 * 1024,
        clock: Clock = time.monotonic,
    ):
        """`timeout` bounds each small call and opening the socket; `transfer_timeout` bounds /object_info, uploads
        and downloads; `quiet_check` is how long `follow` listens to a silent socket before asking `locate`."""
        parsed = httpx.URL(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"a ComfyUI base URL must be http(s)://host[:port][/path], not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._timeout = timeout
        self._transfer_timeout = transfer_timeout
        self._quiet_check = quiet_check
        self._max_ws_message = max_ws_message
        self._clock = clock

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> ComfyClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ── plain calls ──

    async def system_stats(self) -> dict[str, Any]:
        return _mapping(await self._json("GET", "/system_stats"), self._fail("/system_stats"))

    async def object_info(self) -> dict[str, Any]:
        body = await self._json("GET", "/object_info", timeout=self._transfer_timeout)
        return _mapping(body, self._fail("/object_info"))

    async def queue(self) -> QueueState:
        body = _mapping(await self._json("GET", "/queue"), self._fail("/queue"))
        return QueueState(running=_queue_ids(body.get("queue_running")), pending=_queue_ids(body.get("queue_pending")))

    async def history(self, prompt_id: str) -> HistoryEntry | None:
        """The prompt's history entry, or None while ComfyUI has none (queued, running, unknown, or forgotten)."""
        body = _mapping(await self._json("GET", f"/history/{_require_uuid(prompt_id)}"), self._fail("/history"))
        raw = body.get(prompt_id)
        return _history_entry(prompt_id, raw, server=self.base_url) if isinstance(raw, Mapping) else None

    async def locate(self, prompt_id: str) -> Located | None:
        """Where ComfyUI knows the prompt, or None when it knows nothing of it: the crash-recovery lookup.

        The queue is read before the history: ComfyUI moves a prompt from one to the other atomically, so a prompt
        absent from both reads was never there (or is gone). Never post an id again while this is not None.
        """
        _require_uuid(prompt_id)
        state = await self.queue()
        if prompt_id in state.running:
            return Located("running")
        if prompt_id in state.pending:
            return Located("pending")
        entry = await self.history(prompt_id)
        return Located("done", entry) if entry is not None else None

    async def upload_image(
        self, data: bytes, name: str, *, subfolder: str = "", overwrite: bool = False, type: str = "input"
    ) -> str:
        """Store a file in the server's input folder; returns the name ComfyUI stored it under.

        Without `overwrite` ComfyUI keeps an existing file of that name: the same bytes → the same name back,
        other bytes → `name (1).ext`. A LoadImage input names the file as `subfolder/name`.
        """
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"an upload needs a plain file name, not {name!r}")
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        body = await self._json(
            "POST",
            "/upload/image",
            files={"image": (name, data, content_type)},
            data={"type": type, "subfolder": subfolder, "overwrite": "true" if overwrite else "false"},
            timeout=self._transfer_timeout,
        )
        stored = body.get("name") if isinstance(body, Mapping) else None
        if not isinstance(stored, str) or not stored:
            raise self._fail("/upload/image")
        return stored

    async def view(
        self, filename: str, *, subfolder: str = "", type: str = "output", max_bytes: int = 1024 * 1024 * 1024
    ) -> ViewedFile:
        """A file of the server's output, temp or input folder (a 404 when it is not there)."""
        params = {"filename": filename, "subfolder": subfolder, "type": type}
        chunks: list[bytes] = []
        size = 0
        try:
            async with self._http.stream(
                "GET", self._url("/view"), params=params, timeout=self._transfer_timeout, follow_redirects=False
            ) as response:
                self._check(response, "/view")
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ComfyError(f"{filename} is larger than {max_bytes} bytes", server=self.base_url)
                    chunks.append(chunk)
                content_type = response.headers.get("content-type", "application/octet-stream")
        except httpx.HTTPError as exc:
            raise self._unavailable(exc, "/view", self._transfer_timeout) from exc
        return ViewedFile(b"".join(chunks), content_type.split(";")[0].strip())

    async def interrupt(self, prompt_id: str) -> None:
        """Ask ComfyUI to stop the prompt if it is running now (never a global interrupt): it stops at the next node
        boundary or inside a node that checks (samplers); a long single node runs to its end."""
        await self._request("POST", "/interrupt", json={"prompt_id": _require_uuid(prompt_id)})

    async def delete_queued(self, prompt_ids: Iterable[str]) -> None:
        """Take prompts off the pending queue; running or unknown ids are ignored by ComfyUI."""
        ids = [_require_uuid(prompt_id) for prompt_id in prompt_ids]
        if ids:
            await self._request("POST", "/queue", json={"delete": ids})

    async def submit(
        self,
        prompt: Mapping[str, Any],
        *,
        prompt_id: str,
        client_id: str,
        extra_data: Mapping[str, Any] | None = None,
    ) -> Submitted:
        """Queue `prompt` (API format) under OUR `prompt_id`, which the caller has chosen and stored beforehand.

        Raises PromptRejected on a 400. A timeout or dropped connection (ComfyUnavailable) leaves it unknown whether
        the prompt was queued: `locate` it before posting again.
        """
        _require_uuid(prompt_id)
        body: dict[str, Any] = {"prompt": dict(prompt), "prompt_id": prompt_id, "client_id": client_id}
        if extra_data is not None:
            body["extra_data"] = dict(extra_data)
        response = await self._request("POST", "/prompt", json=body, accept=(400,))
        answer = _decode(response)
        if response.status_code == 400:
            raise _rejection(answer, response.text, server=self.base_url)
        if not isinstance(answer, Mapping):
            raise self._fail("/prompt")
        if answer.get("prompt_id") != prompt_id:
            # A ComfyUI too old to take our id queued the prompt under its own: take it back off, and refuse.
            if isinstance(answer.get("prompt_id"), str):
                await self._request("POST", "/queue", json={"delete": [answer["prompt_id"]]})
            raise ComfyError("the server did not keep our prompt_id (ComfyUI too old?)", server=self.base_url)
        number = answer.get("number")
        return Submitted(
            prompt_id=prompt_id,
            number=float(number) if isinstance(number, int | float) else 0.0,
            node_errors=_node_errors(answer.get("node_errors")),
        )

    # ── waiting ──

    async def wait_done(
        self, prompt_id: str, *, poll_interval: float = 0.5, deadline: float | None = None
    ) -> HistoryEntry:
        """Poll the queue and history until the prompt is done; its history entry (see `HistoryEntry.outcome`).

        Raises PromptLost when the server knows nothing of it, DeadlineExceeded past `deadline`.
        """
        while True:
            located = await self.locate(prompt_id)
            if located is None:
                raise PromptLost(
                    f"the server knows nothing of prompt {prompt_id}", server=self.base_url, prompt_id=prompt_id
                )
            if located.entry is not None:
                return located.entry
            await self._pause(poll_interval, deadline, prompt_id)

    async def cancel(
        self, prompt_id: str, *, poll_interval: float = 0.25, deadline: float | None = None
    ) -> HistoryEntry | None:
        """Take the prompt off the queue or interrupt it, again until the server shows it gone; its history entry
        if it ended (interrupted, or finished first), None if it never ran."""
        while True:
            located = await self.locate(prompt_id)
            if located is None or located.state == "done":
                return located.entry if located else None
            if located.state == "pending":
                await self.delete_queued([prompt_id])
            else:
                await self.interrupt(prompt_id)
            await self._pause(poll_interval, deadline, prompt_id)

    @asynccontextmanager
    async def open_events(self, *, client_id: str) -> AsyncIterator[EventStream]:
        """A socket for `client_id`'s events, open before the prompt is submitted so that none is missed:

            async with client.open_events(client_id=cid) as events:
                await client.submit(prompt, prompt_id=pid, client_id=cid)
                async for event in events.follow(pid): ...

        One socket per client id: opening another with the same id silences this one (a client id per prompt is
        simplest). The stream is ready once ComfyUI has greeted it, so a prompt submitted afterwards reaches it.
        """
        ws = await self._connect(client_id)
        try:
            yield EventStream(self, ws, client_id=client_id)
        finally:
            await ws.close()

    def shared_events(self, *, client_id: str | None = None) -> SharedEvents:
        """One socket for every prompt this client's caller submits with its `client_id` (see `SharedEvents`)."""
        return SharedEvents(self, client_id=client_id)

    async def _connect(self, client_id: str) -> ClientConnection:
        """A socket for `client_id`'s events, greeted by ComfyUI (so a prompt submitted from now on reaches it)."""
        url = httpx.URL(self._url("/ws"), params={"clientId": client_id})
        uri = str(url.copy_with(scheme="wss" if url.scheme == "https" else "ws"))
        try:
            ws = await _ConnectWithoutRedirects(
                uri,
                open_timeout=self._timeout,
                proxy=None,
                max_size=self._max_ws_message,
                close_timeout=2,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 300 <= status < 400:
                raise ComfyError(
                    "the socket answered with a redirect, which is not followed", server=self.base_url, status=status
                ) from exc
            cls = ComfyUnavailable if status in (502, 503, 504) else ComfyError
            raise cls("the socket was refused", server=self.base_url, status=status) from exc
        except (InvalidHandshake, InvalidURI) as exc:
            raise ComfyError(f"the socket failed: {exc}", server=self.base_url) from exc
        except (OSError, TimeoutError) as exc:
            raise ComfyUnavailable(
                f"could not open the socket: {exc.__class__.__name__} {exc}".strip(), server=self.base_url
            ) from exc
        try:
            await self._greeting(ws)
        except BaseException:
            await ws.close()
            raise
        return ws

    async def follow(
        self, prompt_id: str, *, client_id: str, deadline: float | None = None
    ) -> AsyncIterator[ComfyEvent]:
        """Re-attach to a submitted prompt (after a crash): open a socket for its `client_id`, then follow it.

        Events sent before the socket opened are lost; the terminal one is rebuilt from the history. Close the
        iterator (`contextlib.aclosing`) when leaving it early, so that the socket closes.
        """
        async with self.open_events(client_id=client_id) as events:
            # asked once the socket is open, so that an end after this answer reaches the socket
            located = await self.locate(prompt_id)
            if located is None:
                raise PromptLost(
                    f"the server knows nothing of prompt {prompt_id}", server=self.base_url, prompt_id=prompt_id
                )
            if located.entry is not None:
                for event in _missed(located.entry, started=False, executed=set()):
                    yield event
                return
            async for event in events.follow(prompt_id, deadline=deadline):
                yield event

    async def await_events(
        self, prompt_id: str, *, poll_interval: float = 0.5, deadline: float | None = None
    ) -> AsyncIterator[ComfyEvent]:
        """Re-attach to a submitted prompt without a socket (its client id's socket may be another process's, which
        a socket of ours would silence): `wait_done`, then the events its history entry tells (`ExecutionStart`,
        `NodeExecuted` of each output, the terminal event). Nothing is told while it runs."""
        entry = await self.wait_done(prompt_id, poll_interval=poll_interval, deadline=deadline)
        for event in _missed(entry, started=False, executed=set()):
            yield event

    # ── plumbing ──

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def _pause(self, interval: float, deadline: float | None, prompt_id: str) -> None:
        await asyncio.sleep(self._bounded(interval, deadline, prompt_id))

    def _bounded(self, interval: float, deadline: float | None, prompt_id: str) -> float:
        """`interval`, cut to what is left before `deadline`; DeadlineExceeded when nothing is."""
        if deadline is None:
            return interval
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise DeadlineExceeded(
                f"prompt {prompt_id} is not done by its deadline", server=self.base_url, prompt_id=prompt_id
            )
        return min(interval, remaining)

    async def _greeting(self, ws: ClientConnection) -> None:
        """Wait for the `status` frame ComfyUI sends once it has registered the socket under its client id."""
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    frame = await ws.recv()
                    if isinstance(frame, str) and _frame_type(frame) == "status":
                        return
        except ConnectionClosed as exc:
            raise ComfyUnavailable("the socket closed before ComfyUI greeted it", server=self.base_url) from exc
        except TimeoutError as exc:
            raise ComfyUnavailable("ComfyUI did not greet the socket", server=self.base_url) from exc

    async def _request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        accept: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        timeout = self._timeout if timeout is None else timeout
        try:
            response = await self._http.request(
                method, self._url(path), timeout=timeout, follow_redirects=False, **kwargs
            )
        except httpx.HTTPError as exc:
            raise self._unavailable(exc, path, timeout) from exc
        if response.status_code not in accept:
            self._check(response, path)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        try:
            if len(response.content) > 256 * 1024:  # /object_info is megabytes: parsed off the event loop
                return await asyncio.to_thread(response.json)
            return response.json()
        except ValueError as exc:
            raise self._fail(path) from exc

    def _check(self, response: httpx.Response, path: str) -> None:
        status = response.status_code
        if 300 <= status < 400:
            where = response.headers.get("location", "elsewhere")
            raise ComfyError(
                f"{path} redirected to {where}; redirects are not followed", server=self.base_url, status=status
            )
        if status in (502, 503, 504):
            raise ComfyUnavailable(f"{path} is unavailable", server=self.base_url, status=status)
        if response.is_error:
            raise ComfyError(f"{path} failed", server=self.base_url, status=status)

    def _unavailable(self, exc: httpx.HTTPError, path: str, timeout: float) -> ComfyError:
        if isinstance(exc, httpx.TimeoutException):
            return ComfyUnavailable(f"no answer to {path} within {timeout:.3g}s", server=self.base_url)
        if isinstance(exc, httpx.TransportError):
            return ComfyUnavailable(f"{path}: {exc.__class__.__name__} {exc}".strip(), server=self.base_url)
        return ComfyError(f"{path}: {exc.__class__.__name__} {exc}".strip(), server=self.base_url)

    def _fail(self, path: str) -> ComfyError:
        return ComfyError(f"{path} answered something this client does not understand", server=self.base_url)


class EventStream:
    """An open socket for one client id; `follow` one prompt at a time through it."""

    def __init__(self, client: ComfyClient, ws: ClientConnection, *, client_id: str):
        self._client = client
        self._ws = ws
        self.client_id = client_id

    async def follow(self, prompt_id: str, *, deadline: float | None = None) -> AsyncIterator[ComfyEvent]:
        """The prompt's events, ending with one of Succeeded, Failed or Interrupted (which carries the history entry).

        Frames of other prompts and binary preview frames are skipped. When the socket closes early, or stays quiet
        past the client's `quiet_check` and `locate` finds the prompt done, the history supplies what was missed:
        ExecutionStart if it was not seen (then just before the end), NodeExecuted for outputs not seen, and the
        terminal event. Raises PromptLost when the server knows nothing of the prompt (noticed at a quiet check),
        DeadlineExceeded past `deadline` (the prompt is left as it is), ComfyUnavailable when the server is gone.
        """
        async for event in _follow(self._client, self._recv, prompt_id, deadline):
            yield event

    async def _recv(self) -> dict[str, Any] | None:
        try:
            frame = await self._ws.recv()
        except ConnectionClosed:
            raise _SocketClosed() from None
        return _message(frame)


class SharedEvents:
    """One socket to one server for every prompt a process follows there: its own client id (every prompt is
    submitted with it), frames dispatched to the prompt's watchers by prompt id.

        events = client.shared_events()              # one per server, kept open for the process's lifetime
        async with events.watch(pid) as watch:        # opens the socket when it is not open
            await client.submit(prompt, prompt_id=pid, client_id=events.client_id)
            async for event in watch.follow(): ...

    It saves every prompt a connection and ComfyUI's greeting. When the socket closes (the server went away), the
    watchers on it fall back to the history (`follow`'s rules) and the next `watch` opens a new one, with the same
    client id. Never open another socket with `client_id`: ComfyUI would send that socket the events instead.
    """

    def __init__(self, client: ComfyClient, *, client_id: str | None = None):
        self.client = client
        self.client_id = client_id or f"nodeloom-{uuid.uuid4().hex}"
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._opening = asyncio.Lock()
        self._watches: dict[str, set[Watch]] = {}

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._reader is not None and not self._reader.done()

    async def connect(self) -> None:
        """Open the socket unless it is open; ComfyUnavailable when the server cannot be reached."""
        if self.connected:
            return
        async with self._opening:
            if self.connected:
                return
            ws = await self.client._connect(self.client_id)
            self._ws = ws
            self._reader = asyncio.create_task(self._read(ws), name=f"comfyui-events:{self.client.base_url}")

    @asynccontextmanager
    async def watch(self, prompt_id: str) -> AsyncIterator[Watch]:
        """Frames of `prompt_id` from now on (enter it before submitting the prompt)."""
        await self.connect()
        assert self._ws is not None
        watch = Watch(self, prompt_id, self._ws)
        self._watches.setdefault(prompt_id, set()).add(watch)
        try:
            yield watch
        finally:
            found = self._watches.get(prompt_id)
            if found is not None:
                found.discard(watch)
                if not found:
                    del self._watches[prompt_id]

    async def reattach(self, prompt_id: str, *, deadline: float | None = None) -> AsyncIterator[ComfyEvent]:
        """`ComfyClient.follow` through this socket, for a prompt submitted with its client id earlier."""
        async with self.watch(prompt_id) as watch:
            located = await self.client.locate(prompt_id)
            if located is None:
                raise PromptLost(
                    f"the server knows nothing of prompt {prompt_id}", server=self.client.base_url, prompt_id=prompt_id
                )
            if located.entry is not None:
                for event in _missed(located.entry, started=False, executed=set()):
                    yield event
                return
            async for event in watch.follow(deadline=deadline):
                yield event

    async def aclose(self) -> None:
        reader, ws = self._reader, self._ws
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if ws is not None:
            await ws.close()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                message = _message(frame)
                if message is None:
                    continue
                prompt_id = message["data"].get("prompt_id")
                for watch in self._watches.get(prompt_id, ()) if isinstance(prompt_id, str) else ():
                    watch._frames.put_nowait(message)
        except ConnectionClosed:
            pass
        except Exception:  # pragma: no cover - a frame this reader cannot take: the socket is given up like a closed one
            _log.exception("ComfyUI %s: the shared socket failed; its prompts turn to the history", self.client.base_url)
        finally:  # nothing more comes on this socket: its watchers turn to the history
            if self._ws is ws:
                self._ws = None
            for watches in self._watches.values():
                for watch in watches:
                    if watch._ws is ws:
                        watch._frames.put_nowait(None)
            await ws.close()


class Watch:
    """One prompt's frames on a `SharedEvents` socket."""

    def __init__(self, events: SharedEvents, prompt_id: str, ws: ClientConnection):
        self._events = events
        self._ws = ws
        self.prompt_id = prompt_id
        #: the prompt's frames (parsed); None once the socket has closed
        self._frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def follow(self, *, deadline: float | None = None) -> AsyncIterator[ComfyEvent]:
        """As `EventStream.follow`."""
        async for event in _follow(self._events.client, self._recv, self.prompt_id, deadline):
            yield event

    async def _recv(self) -> dict[str, Any] | None:
        message = await self._frames.get()
        if message is None:
            self._frames.put_nowait(None)  # stays closed
            raise _SocketClosed()
        return message


class _SocketClosed(Exception):
    pass


class _Seen:
    """What a socket told of one prompt: when it has told the start and the end, that is its whole history entry
    (ComfyUI builds the entry from the same messages and outputs), and the history need not be read."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Mapping[str, Any]]] = []
        self.outputs: dict[str, Mapping[str, Any]] = {}
        self.started = False
        self.terminal: str | None = None

    def entry(self, prompt_id: str, *, server: str) -> HistoryEntry | None:
        if not self.started or self.terminal is None:
            return None
        return HistoryEntry(
            prompt_id=prompt_id,
            status="success" if self.terminal == "execution_success" else "error",
            completed=self.terminal == "execution_success",
            outputs=dict(self.outputs),
            messages=tuple(self.messages),
            server=server,
        )


async def _follow(
    client: ComfyClient,
    recv: Callable[[], Awaitable[dict[str, Any] | None]],
    prompt_id: str,
    deadline: float | None,
) -> AsyncIterator[ComfyEvent]:
    """`EventStream.follow` over the frames `recv` gives (None: a frame to skip; `_SocketClosed` at the end)."""
    located: Located | None = None
    seen = _Seen()
    executed: set[str] = set()
    finished = False
    entry: HistoryEntry | None = None
    while not finished:
        wait = client._bounded(client._quiet_check, deadline, prompt_id)
        try:
            async with asyncio.timeout(wait):
                message = await recv()
        except TimeoutError:
            located = await client.locate(prompt_id)
            if located is None:
                raise PromptLost(
                    f"prompt {prompt_id} is gone from the server", server=client.base_url, prompt_id=prompt_id
                ) from None
            finished = located.state == "done"
            continue
        except _SocketClosed:
            break  # history polling takes over below
        if message is None:
            continue  # a preview image, or not a message of ComfyUI's
        kind, data = message.get("type"), message["data"]
        if data.get("prompt_id") != prompt_id:
            continue
        if kind in _TERMINAL:
            seen.terminal = str(kind)
            seen.messages.append((str(kind), data))
            entry = seen.entry(prompt_id, server=client.base_url)
            finished = entry is not None  # else the END frame, then the history
            continue
        event = _event_of(message, prompt_id)
        if event is _END:
            finished = True
        elif event is not None and not isinstance(event, _Sentinel):
            if isinstance(event, ExecutionStart):
                seen.started = True
                seen.messages.append(("execution_start", data))
            elif isinstance(event, Cached):
                seen.messages.append(("execution_cached", data))
            elif isinstance(event, NodeExecuted):
                executed.add(event.node)
                if event.output:
                    seen.outputs[event.node] = event.output
            yield event
    if entry is None and located is not None:
        entry = located.entry
    if entry is None and finished:  # the END frame: the history entry is written, one read brings it
        entry = await client.history(prompt_id)
    if entry is None:
        entry = await client.wait_done(prompt_id, deadline=deadline)
    for event in _missed(entry, started=seen.started, executed=executed):
        yield event


def _missed(entry: HistoryEntry, *, started: bool, executed: set[str]) -> list[ComfyEvent]:
    """What a socket that missed part of a finished prompt can still learn from its history entry."""
    found: list[ComfyEvent] = []
    if not started:
        found.append(ExecutionStart(prompt_id=entry.prompt_id, timestamp=entry.started_at))
    for node, ui in entry.outputs.items():
        if node not in executed:
            found.append(NodeExecuted(prompt_id=entry.prompt_id, node=node, output=ui))
    found.append(entry.outcome)
    return found


# ── parsing ──────────────────────────────────────────────────────────────────────────────────────────────────────


class _Sentinel:
    pass


_END = _Sentinel()  # `executing {node: null}`: the prompt is over and its history entry is written
_TERMINAL = frozenset({"execution_success", "execution_error", "execution_interrupted"})


def _frame_type(frame: str) -> str | None:
    try:
        message = json.loads(frame)
    except ValueError:
        return None
    kind = message.get("type") if isinstance(message, dict) else None
    return kind if isinstance(kind, str) else None


def _message(frame: str | bytes) -> dict[str, Any] | None:
    """A JSON frame as `{type, data: {…}}`; None for a binary frame (a preview) or anything else."""
    if not isinstance(frame, str):
        return None
    try:
        message = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
        return None
    return message


def _event_of(message: Mapping[str, Any], prompt_id: str) -> ComfyEvent | _Sentinel | None:
    """The event a message (`_message`) carries for `prompt_id`; None for messages about anything else.

    Terminal messages yield nothing here: the terminal event is built with the history entry (`_follow`).
    """
    kind, data = message.get("type"), message["data"]
    # a frame without a prompt id (the `executing` replayed to a reconnecting socket) cannot be attributed
    if data.get("prompt_id") != prompt_id or kind in _TERMINAL:
        return None
    if kind == "execution_start":
        return ExecutionStart(prompt_id=prompt_id, timestamp=_seconds(data.get("timestamp")))
    if kind == "execution_cached":
        nodes = data.get("nodes")
        return Cached(prompt_id=prompt_id, nodes=tuple(str(n) for n in nodes) if isinstance(nodes, list) else ())
    if kind == "executing":
        node = data.get("node")
        if node is None:
            return _END
        return NodeStarted(prompt_id=prompt_id, node=str(node), display_node=_opt_str(data.get("display_node")))
    if kind == "progress":
        value, maximum = data.get("value"), data.get("max")
        if not isinstance(value, int | float) or not isinstance(maximum, int | float):
            return None
        return Progress(prompt_id=prompt_id, node=_opt_str(data.get("node")), value=float(value), max=float(maximum))
    if kind == "executed" and data.get("node") is not None:
        output = data.get("output")
        return NodeExecuted(
            prompt_id=prompt_id,
            node=str(data["node"]),
            output=output if isinstance(output, dict) else {},
            display_node=_opt_str(data.get("display_node")),
        )
    return None


def _history_entry(prompt_id: str, raw: Mapping[str, Any], *, server: str) -> HistoryEntry:
    status = raw.get("status") if isinstance(raw.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    messages: list[tuple[str, Mapping[str, Any]]] = []
    for item in status.get("messages") or ():
        if (
            isinstance(item, list | tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], Mapping)
        ):
            messages.append((item[0], item[1]))
    raw_outputs = raw.get("outputs")
    node_outputs = (
        {str(node): ui for node, ui in raw_outputs.items() if isinstance(ui, Mapping)}
        if isinstance(raw_outputs, Mapping)
        else {}
    )
    return HistoryEntry(
        prompt_id=prompt_id,
        status=_opt_str(status.get("status_str")),
        completed=status.get("completed") is True,
        outputs=node_outputs,
        messages=tuple(messages),
        server=server,
    )


def _queue_ids(items: Any) -> tuple[str, ...]:
    """Prompt ids of /queue's entries `[number, prompt_id, prompt, extra_data, outputs]`, by number (run order)."""
    if not isinstance(items, list):
        return ()
    entries = [item for item in items if isinstance(item, list) and len(item) >= 2 and isinstance(item[1], str)]
    entries.sort(key=lambda item: item[0] if isinstance(item[0], int | float) else 0)
    return tuple(item[1] for item in entries)


def _node_errors(raw: Any) -> dict[str, NodeError]:
    if not isinstance(raw, Mapping):
        return {}
    found: dict[str, NodeError] = {}
    for node_id, value in raw.items():
        if not isinstance(value, Mapping):
            continue
        errors = []
        for error in value.get("errors") or ():
            if not isinstance(error, Mapping):
                continue
            extra = error.get("extra_info") if isinstance(error.get("extra_info"), Mapping) else {}
            assert isinstance(extra, Mapping)
            errors.append(
                InputError(
                    type=str(error.get("type") or ""),
                    message=str(error.get("message") or ""),
                    details=str(error.get("details") or ""),
                    input_name=_opt_str(extra.get("input_name")),
                    extra_info=extra,
                )
            )
        dependents = value.get("dependent_outputs")
        found[str(node_id)] = NodeError(
            node_id=str(node_id),
            class_type=str(value.get("class_type") or ""),
            errors=tuple(errors),
            dependent_outputs=tuple(str(d) for d in dependents) if isinstance(dependents, list) else (),
        )
    return found


def _rejection(answer: Any, text: str, *, server: str) -> PromptRejected:
    error = answer.get("error") if isinstance(answer, Mapping) else None
    if isinstance(error, Mapping):
        extra = error.get("extra_info")
        return PromptRejected(
            str(error.get("message") or "the prompt was refused"),
            server=server,
            error_type=str(error.get("type") or ""),
            details=str(error.get("details") or ""),
            extra_info=extra if isinstance(extra, Mapping) else {},
            node_errors=_node_errors(answer.get("node_errors")),
        )
    message = error if isinstance(error, str) else (text.strip()[:500] or "the prompt was refused")
    node_errors = _node_errors(answer.get("node_errors")) if isinstance(answer, Mapping) else {}
    return PromptRejected(message, server=server, error_type="", details="", extra_info={}, node_errors=node_errors)


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _mapping(body: Any, error: ComfyError) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise error
    return body


def _require_uuid(prompt_id: str) -> str:
    try:
        canonical = str(uuid.UUID(prompt_id))
    except (ValueError, TypeError, AttributeError):
        canonical = None
    if canonical != prompt_id:
        raise ValueError(f"a prompt id must be a lowercase UUID string, not {prompt_id!r}")
    return prompt_id


def _seconds(timestamp: Any) -> float | None:
    return timestamp / 1000 if isinstance(timestamp, int | float) and not isinstance(timestamp, bool) else None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
