"""Runs segments of `comfyui.*` nodes on the pool: the engine's SegmentRunner for kind "comfyui".

One segment, one ComfyUI prompt (`prompts.build_job`), on one server:
1. a lease on a server that has every node type and file the prompt names (`ComfyPool.acquire`: healthy, least
   loaded, at most one running and one queued segment of ours per server); a segment waiting for one holds no lease;
2. the inputs uploaded under names unique to the execution; the prompt id chosen by us and stored (the node's
   durable memory, with the server and the client id of this process's socket to it) BEFORE the prompt is posted;
3. ComfyUI's socket events → `node.started`, `node.progress {value, max}`, `node.completed` of our nodes. One socket
   per server serves every prompt this process posts there (`ComfyPool.events`), its frames dispatched by prompt id;
   the prompt's end and outputs come from its frames, so the history is read only when the socket missed some;
4. the values that leave the segment fetched (`/view`) and turned into ours (images, masks, text, animated images,
   video, audio);
5. the run charged by the second, from ComfyUI's `execution_start` to its end, capped at the segment's hold — also
   when it failed or was cancelled; a refused prompt (400) and an attempt lost with its server are free.

After a crash of ours the stored prompt id is looked up on its server (`/queue`, then `/history`): a prompt the server
knows is re-attached to, never posted again — through our socket when this process posted it, else by looking it up
every `reattach_poll_s` (its events go to the socket of the process that posted it, which may still be alive and
serving its other prompts: a socket of ours with its client id would silence that one). A server that dies under a segment (`ComfyUnavailable`) is marked
unhealthy and the segment runs again on another, up to `max_attempts`. Cancel ends the segment at once; taking the
prompt off the server's queue, or interrupting it until the server shows it gone, goes on in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from nodeloom.engine.errors import NodeError, NodeTimeout
from nodeloom.engine.graph import Graph
from nodeloom.engine.node import Node
from nodeloom.engine.segments import Segment, SegmentContext
from nodeloom.media.images import decode_image, encode_image
from nodeloom.media.values import MediaFile
from nodeloom.providers.comfyui import (
    Cached,
    ComfyClient,
    ComfyError,
    ComfyEvent,
    ComfyUnavailable,
    ExecutionStart,
    Failed,
    HistoryEntry,
    Interrupted,
    NodeStarted,
    OutputFile,
    OutputText,
    Progress,
    PromptLost,
    PromptRejected,
    SharedEvents,
    Succeeded,
    node_outputs,
)
from nodeloom.services.comfyui.nodes import ComfyPolicy
from nodeloom.services.comfyui.pool import ComfyPool, NoServer
from nodeloom.services.comfyui.prompts import TEXT_TYPES, Job, Pickup, build_job

log = logging.getLogger("nodeloom.comfyui")

MEMORY_KEY = "comfyui"
#: (execution id, first node id, seconds, node type of the first node, note) → what was charged
Charge = Callable[[str, str, float, type[Node], str], Decimal]


class _ServerLost(Exception):
    def __init__(self, url: str, reason: str, *, unhealthy: bool = True):
        super().__init__(reason)
        self.url = url
        self.reason = reason
        self.unhealthy = unhealthy


class _Run:
    """One attempt's clock: when ComfyUI began executing the prompt, by our monotonic clock and by the server's."""

    def __init__(self) -> None:
        self.started: float | None = None

    def seconds(self, entry: HistoryEntry | None = None) -> float:
        if entry is not None and entry.started_at is not None and entry.ended_at is not None:
            return max(0.0, entry.ended_at - entry.started_at)
        return 0.0 if self.started is None else max(0.0, time.monotonic() - self.started)


class ComfySegmentRunner:
    def __init__(self, pool: ComfyPool, *, charge: Charge, policy: ComfyPolicy, max_attempts: int = 3,
                 lease_ttl_s: float = 30.0, wait_poll_s: float = 0.5, cancel_deadline_s: float = 120.0,
                 unhealthy_wait_s: float | None = None, cancel_requested: Callable[[str], bool] | None = None,
                 reattach_poll_s: float = 0.5):
        self.pool = pool
        self.charge = charge
        self.policy = policy
        self.max_attempts = max_attempts
        self.lease_ttl_s = lease_ttl_s
        self.wait_poll_s = wait_poll_s
        self.cancel_deadline_s = cancel_deadline_s
        #: how often a prompt re-attached to without a socket (another process posted it) is looked up
        self.reattach_poll_s = reattach_poll_s
        #: how long a segment waits for some server that could run it to be healthy again
        self.unhealthy_wait_s = policy.max_seconds if unhealthy_wait_s is None else unhealthy_wait_s
        #: whether a caller asked to cancel the execution: only then is its prompt taken off the server. A segment
        #: stopped for another reason (a lost lease, a worker shutting down) leaves its prompt running, for the next
        #: attempt to re-attach to.
        self.cancel_requested: Callable[[str], bool] = cancel_requested or (lambda _eid: True)
        #: cancels still going on ComfyUI after their segments ended (kept so they are not garbage-collected)
        self._background: set[asyncio.Task[None]] = set()
        #: segments of this process waiting for a server slot: woken when one of ours is released (other processes'
        #: releases are seen at the next poll)
        self._waiters: set[asyncio.Future[None]] = set()

    def _wake(self) -> None:
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(None)

    async def _release(self, holder: str) -> None:
        await asyncio.shield(asyncio.to_thread(self.pool.release, holder))
        self._wake()

    async def _wait_for_room(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, self.wait_poll_s)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    async def aclose(self) -> None:
        """Wait (briefly) for the background cancels, so that a stopping worker leaves no prompt running."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=10)

    # the SegmentRunner ----------------------------------------------------------------------------------------
    async def __call__(self, ctx: SegmentContext, segment: Segment, graph: Graph,
                       values: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        build = partial(build_job, segment, graph, values, execution_id=ctx.execution_id, policy=self.policy,
                        encode=lambda image: encode_image(image, "png")[0])
        # pure, but encodes the images and reads the files it uploads: then off the event loop
        job = await asyncio.to_thread(build) if _has_media(values) else build()
        if not job.runs_anything:
            return {}
        first_type = graph.nodes[segment.first].type
        holder = f"{ctx.execution_id}/{segment.first}"[:200]
        # the worker only waits (for a server, on a socket): the execution lends its worker slot back meanwhile
        try:
            with _lend_slot(ctx):
                return await self._attempts(ctx, segment, graph, job, holder, first_type)
        except NoServer as exc:
            raise NodeError(str(exc), code="comfyui_unavailable", node_id=segment.first) from None

    async def _attempts(self, ctx: SegmentContext, segment: Segment, graph: Graph, job: Job, holder: str,
                        first_type: type[Node]) -> dict[str, dict[str, Any]]:
        """Attempts until one ends (a server lost under one is marked unhealthy and another is tried)."""
        memory = dict(ctx.recalled(MEMORY_KEY) or {})
        attempts = int(memory.get("attempts") or 0)
        lost: set[str] = set()
        while True:
            try:
                return await self._attempt(ctx, segment, graph, job, holder, memory, lost, first_type)
            except _ServerLost as exc:
                attempts += 1
                log.warning("ComfyUI server %s lost segment %s (%s); attempt %d of %d", exc.url, holder,
                            exc.reason, attempts, self.max_attempts)
                if exc.unhealthy:
                    await asyncio.to_thread(self.pool.mark_unhealthy, exc.url, exc.reason)
                    lost.add(exc.url)
                await self._release(holder)
                memory = {"attempts": attempts}
                await ctx.remember(MEMORY_KEY, memory)
                if attempts >= self.max_attempts:
                    raise NodeError(f"the ComfyUI servers running node '{segment.first}' failed {attempts} times; "
                                    f"last: {exc.reason}", code="comfyui_unavailable",
                                    node_id=segment.first) from None

    # one attempt ------------------------------------------------------------------------------------------------
    async def _attempt(self, ctx: SegmentContext, segment: Segment, graph: Graph, job: Job, holder: str,
                       memory: dict[str, Any], lost: set[str], first_type: type[Node]) -> dict[str, dict[str, Any]]:
        known_url = memory.get("server") if isinstance(memory.get("server"), str) else None
        url = await self._lease(holder, job, lost, url=known_url if known_url in self.pool.urls else None)
        renew = asyncio.create_task(self._renew(holder))
        handed_off = False
        run = _Run()
        prompt_id: str | None = None
        try:
            async with self.pool.client(url) as client:
                shared = self.pool.events(url)
                events: AsyncIterator[ComfyEvent] | None = None
                if url == known_url and memory.get("promptId"):
                    prompt_id = str(memory["promptId"])
                    try:
                        located = await client.locate(prompt_id)
                    except ComfyUnavailable as exc:
                        raise _ServerLost(url, str(exc)) from None
                    if located is not None:  # it knows the prompt: re-attach, never post it again
                        log.info("re-attaching to prompt %s on %s (%s)", prompt_id, url, located.state)
                        if memory.get("clientId") == shared.client_id:  # posted through our own socket
                            events = shared.reattach(prompt_id)
                        else:  # another process's socket (maybe alive, serving its other prompts): never take it
                            events = client.await_events(prompt_id, poll_interval=self.reattach_poll_s)
                if events is None:
                    await self._upload(client, job, url)
                    prompt_id = str(uuid.uuid4())
                    memory.update(server=url, promptId=prompt_id, clientId=shared.client_id)
                    await ctx.remember(MEMORY_KEY, dict(memory))  # stored before it is posted
                    events = self._submit(client, shared, job, graph, prompt_id, segment)
                try:
                    entry = await self._follow(ctx, segment, graph, job, events, run, url)
                except TimeoutError:
                    seconds = self.policy.max_seconds
                    self._cancel_in_background(url, prompt_id, holder)
                    handed_off = True
                    await self._charge(ctx, segment, first_type, seconds, "interrupted at the time limit")
                    raise NodeTimeout(f"the ComfyUI segment of node '{segment.first}' ran past "
                                      f"{self.policy.max_seconds:g} s and was interrupted",
                                      node_id=segment.first) from None
                except asyncio.CancelledError:
                    handed_off = True  # the lease goes with the prompt: to the cancel below, or to the next attempt
                    if ctx.cancelled() and await asyncio.shield(asyncio.to_thread(self.cancel_requested,
                                                                                  ctx.execution_id)):
                        self._cancel_in_background(url, prompt_id, holder)
                        if run.started is not None:
                            await self._charge(ctx, segment, first_type, run.seconds(), "cancelled")
                    raise
                # the prompt has ended on the server: its slot is free for the next segment while we collect
                handed_off = True
                released = asyncio.create_task(self._release(holder))
                try:
                    outcome = entry.outcome
                    if not isinstance(outcome, Succeeded):
                        await self._charge(ctx, segment, first_type, run.seconds(entry), "failed")
                        raise _failure(outcome, job, graph, segment)
                    out = await self._collect(client, job, entry, ctx)
                finally:
                    await asyncio.shield(released)
            seconds = run.seconds(entry)
            for nid in segment.members:
                if nid in ctx.reported:
                    continue
                extra: dict[str, Any] = {}
                if nid == segment.first:  # billing charges the run-seconds as this completion is recorded
                    extra = {"runSeconds": round(seconds, 3), "segment": list(segment.members), "server": url}
                ctx.completed(nid, out.get(nid, {}), **extra)
            return out
        except (ComfyUnavailable, PromptLost) as exc:
            raise _ServerLost(url, str(exc), unhealthy=isinstance(exc, ComfyUnavailable)) from None
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            if not handed_off:
                await self._release(holder)

    async def _lease(self, holder: str, job: Job, lost: set[str], *, url: str | None) -> str:
        """Wait for a server slot (no lease is held while waiting). Busy servers are waited for as long as it takes;
        when no healthy server could run the segment for `unhealthy_wait_s`, it fails `comfyui_unavailable`."""
        down_since: float | None = None
        while True:
            exclude = lost if len(lost) < len(self.pool.urls) else set()
            got = await asyncio.to_thread(self.pool.acquire, holder, job.need, ttl_s=self.lease_ttl_s,
                                          exclude=exclude, url=url)
            if got is not None:
                return got
            if await asyncio.to_thread(self.pool.any_healthy_fits, job.need, exclude=exclude):
                down_since = None
            else:
                now = time.monotonic()
                down_since = down_since if down_since is not None else now
                if now - down_since > self.unhealthy_wait_s:
                    raise NodeError(f"no healthy ComfyUI server could run this segment for {self.unhealthy_wait_s:g} s",
                                    code="comfyui_unavailable")
            await self._wait_for_room()

    async def _renew(self, holder: str) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            await asyncio.to_thread(self.pool.renew, holder, ttl_s=self.lease_ttl_s)

    async def _upload(self, client: ComfyClient, job: Job, url: str) -> None:
        for upload in job.uploads:
            try:
                stored = await client.upload_image(upload.data, upload.name, overwrite=True)
            except ComfyUnavailable:
                raise
            except ComfyError as exc:
                raise NodeError(f"ComfyUI at {url} refused the file for input '{upload.input}' of node "
                                f"'{upload.node}': {exc}", code="comfyui_upload_failed", node_id=upload.node) from None
            if stored != upload.name:  # pragma: no cover - overwrite keeps the name
                raise NodeError(f"ComfyUI stored {upload.name} as {stored}", code="comfyui_upload_failed",
                                node_id=upload.node)

    async def _submit(self, client: ComfyClient, shared: SharedEvents, job: Job, graph: Graph, prompt_id: str,
                      segment: Segment) -> AsyncIterator[ComfyEvent]:
        async with shared.watch(prompt_id) as stream:  # the socket is open (and listening for it) before the post
            try:
                submitted = await client.submit(job.prompt, prompt_id=prompt_id, client_id=shared.client_id)
            except PromptRejected as exc:
                raise _rejection(exc, job, graph, segment) from None
            if submitted.node_errors:  # ComfyUI dropped some output nodes and runs the rest: not what was asked
                await client.cancel(prompt_id, deadline=time.monotonic() + self.cancel_deadline_s)
                raise _rejection(PromptRejected("some outputs failed validation", server=client.base_url,
                                                error_type="prompt_outputs_failed_validation", details="",
                                                extra_info={}, node_errors=submitted.node_errors),
                                 job, graph, segment)
            async for event in stream.follow():
                yield event

    async def _follow(self, ctx: SegmentContext, segment: Segment, graph: Graph, job: Job,
                      events: AsyncIterator[ComfyEvent], run: _Run, url: str) -> HistoryEntry:
        members = set(segment.members)
        carries = {p.member for p in job.pickups} | {segment.first}
        current: str | None = None
        began = time.monotonic()
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(None) as limit, contextlib.aclosing(events) as stream:  # type: ignore[type-var]
            async for event in stream:
                if isinstance(event, ExecutionStart):
                    run.started = time.monotonic()
                    limit.reschedule(loop.time() + self.policy.max_seconds)
                elif isinstance(event, Cached):
                    for nid in event.nodes:
                        if nid in members and nid not in carries and nid not in ctx.reported:
                            ctx.completed(nid, {}, cached=True)
                elif isinstance(event, NodeStarted):
                    if current is not None and current not in carries and current not in ctx.reported:
                        ctx.completed(current, {}, duration_ms=round((time.monotonic() - began) * 1000, 3))
                    current = None
                    if event.node in members:
                        current, began = event.node, time.monotonic()
                        ctx.started(event.node, graph.nodes[event.node].type.type)
                elif isinstance(event, Progress):
                    owner = job.owner.get(event.node or "", current or "")
                    if owner in members:
                        ctx.node_progress(owner, event.value, event.max)
                elif isinstance(event, (Succeeded, Failed, Interrupted)):
                    return event.entry
        raise ComfyUnavailable("the server's events ended without an outcome", server=url)

    async def _collect(self, client: ComfyClient, job: Job, entry: HistoryEntry,
                       ctx: SegmentContext) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        workdir = _workdir(ctx)
        for pickup in job.pickups:
            found = node_outputs(pickup.node, entry.outputs.get(pickup.node) or {})
            out.setdefault(pickup.member, {})[pickup.port] = await self._value(client, pickup, found, workdir, ctx)
        return out

    async def _value(self, client: ComfyClient, pickup: Pickup, found: list[Any], workdir: Path,
                     ctx: SegmentContext) -> Any:
        if pickup.kind == "text":
            texts = [o.text for o in found if isinstance(o, OutputText)]
            if not texts:
                return None
            parse = TEXT_TYPES.get(pickup.parse, str)
            try:
                return parse(texts[0])
            except ValueError:
                return texts[0]
        files = [o for o in found if isinstance(o, OutputFile)]
        if pickup.kind in ("images", "masks"):
            images: list[Any] = []
            for f in files:
                viewed = await client.view(f.filename, subfolder=f.subfolder, type=f.type)
                if pickup.raw and viewed.data[:8] == b"\x89PNG\r\n\x1a\n":
                    images.append(await asyncio.to_thread(_png_file, workdir, f.filename, viewed.data))
                    continue
                image = await asyncio.to_thread(decode_image, viewed.data)
                images.append(image.convert("L") if pickup.kind == "masks" else image)
            return images
        if not files:
            return None
        f = files[0]
        viewed = await client.view(f.filename, subfolder=f.subfolder, type=f.type)
        path = workdir / f"{uuid.uuid4().hex}-{Path(f.filename).name}"
        await asyncio.to_thread(path.write_bytes, viewed.data)
        content_type = viewed.content_type if "/" in viewed.content_type else "application/octet-stream"
        if content_type == "application/octet-stream":
            content_type = {"animated": "image/webp", "video": "video/mp4", "audio": "audio/flac"}.get(
                pickup.kind, content_type)
        return MediaFile.from_path(path, content_type)

    async def _charge(self, ctx: SegmentContext, segment: Segment, node_type: type[Node], seconds: float,
                      note: str | None) -> Decimal:
        return await asyncio.shield(asyncio.to_thread(
            self.charge, ctx.execution_id, segment.first, seconds, node_type,
            f"ComfyUI: {seconds:.3f} s" + (f" ({note})" if note else "")))

    def _cancel_in_background(self, url: str, prompt_id: str | None, holder: str) -> None:
        task = asyncio.create_task(self._cancel_remote(url, prompt_id, holder), name=f"comfyui-cancel:{prompt_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cancel_remote(self, url: str, prompt_id: str | None, holder: str) -> None:
        try:
            if prompt_id is not None:
                async with self.pool.client(url) as client:
                    await client.cancel(prompt_id, deadline=time.monotonic() + self.cancel_deadline_s)
        except ComfyError as exc:
            log.warning("could not confirm that prompt %s left %s: %s", prompt_id, url, exc)
        finally:
            await self._release(holder)


def _has_media(values: Mapping[str, dict[str, Any]]) -> bool:
    """Whether a segment's values hold anything but literals (images, files: building its job encodes or reads them)."""
    return any(not isinstance(v, (str, int, float, bool)) and v is not None
               for given in values.values() for v in given.values())


def _png_file(workdir: Path, filename: str, data: bytes) -> MediaFile:
    """A PNG ComfyUI wrote, kept as its bytes (its size read from the header, nothing decoded)."""
    path = workdir / f"{uuid.uuid4().hex}-{Path(filename).name}"
    path.write_bytes(data)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return MediaFile(path=path, content_type="image/png", meta={"width": width, "height": height})


def _lend_slot(ctx: SegmentContext) -> contextlib.AbstractContextManager[Any]:
    """The worker's `sleeping` capability (its slot lent back while the execution only waits), where there is one."""
    try:
        slots = ctx.service("sleeping")
    except LookupError:
        return contextlib.nullcontext()
    return slots.asleep(ctx.execution_id)


def _workdir(ctx: SegmentContext) -> Path:
    try:
        found = ctx.service("workdir")
    except LookupError:
        found = None
    path = Path(found) if found is not None else Path.cwd()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _our_node(job: Job, comfy_id: str | None, segment: Segment) -> str:
    return job.owner.get(comfy_id or "", segment.first)


def _failure(outcome: Failed | Interrupted, job: Job, graph: Graph, segment: Segment) -> NodeError:
    nid = _our_node(job, outcome.node_id, segment)
    if isinstance(outcome, Interrupted):
        return NodeError(f"ComfyUI interrupted node '{nid}'", code="comfyui_interrupted", node_id=nid,
                         extra={"comfyui": {"nodeId": outcome.node_id, "classType": outcome.node_type}})
    return NodeError(
        f"ComfyUI node '{outcome.node_id}' ({outcome.node_type}) failed: {outcome.exception_type}: "
        f"{outcome.exception_message}".strip(),
        code="comfyui_execution_error", node_id=nid,
        extra={"comfyui": {"nodeId": outcome.node_id, "classType": outcome.node_type,
                           "exceptionType": outcome.exception_type,
                           "exceptionMessage": outcome.exception_message[:2000]}})


def _rejection(exc: PromptRejected, job: Job, graph: Graph, segment: Segment) -> NodeError:
    details: list[dict[str, str]] = []
    first: str | None = None
    for comfy_id, problem in exc.node_errors.items():
        nid = _our_node(job, comfy_id, segment)
        first = first or nid
        index = graph.nodes[nid].index if nid in graph.nodes else 0
        for reason in problem.errors:
            path = f"nodes[{index}]" + (f".inputs.{reason.input_name}" if reason.input_name else "")
            details.append({"path": path, "message": f"{reason.message}: {reason.details}".strip(": ")})
    nid = first or _our_node(job, exc.node_id, segment)
    message = details[0]["message"] if details else str(exc)
    return NodeError(f"ComfyUI refused the prompt of node '{nid}': {message}", code="comfyui_prompt_rejected",
                     node_id=nid, extra={"details": details, "comfyui": {"type": exc.error_type}})
