"""Execute, poll, events (SSE), cancel, list and delete executions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from nodeloom.api import models as m
from nodeloom.api.deps import BaseUrl, ExecuteScope, ExecutionsDep, IdempotencyDep, ManageScope, ReadScope, SettingsDep
from nodeloom.api.openapi import answers
from nodeloom.api.schemas import ExecuteBody
from nodeloom.errors import Forbidden
from nodeloom.services.executions import ExecutionService
from nodeloom.types import TERMINAL_STATUSES

#: a Last-Event-ID we resume after: an event's sequence number (ASCII digits, within a 64-bit column)
EVENT_ID = re.compile(r"[0-9]{1,18}")

router = APIRouter(prefix="/api/v1/workflows", tags=["executions"])

PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+)", re.I)


def prefer_wait(header: str | None) -> float:
    if not header:
        return 0.0
    m = PREFER_WAIT.search(header)
    return min(60.0, float(m.group(1))) if m else 0.0


async def wait_for_end(executions: ExecutionService, *, account_id: str, execution_id: str, seconds: float,
                       base_url: str = "") -> dict[str, Any] | None:
    """The poll body once the run has ended within `seconds`, else None. Woken only by changes that may have ended
    it (a worker's progress batches do not wake it), and re-reads at least every second whatever it is told."""
    deadline = time.monotonic() + seconds
    # listening before the first read: no change is missed in between
    with executions.listening(execution_id, ends_only=True) as changed:
        while True:
            changed.clear()
            body = await run_in_threadpool(executions.poll_if_ended, account_id=account_id,
                                           execution_id=execution_id, base_url=base_url)
            if body is not None:
                return body
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, 1.0))


PREFER = Header(default=None, alias="Prefer", description="`wait=N` (N ≤ 60): hold the request until the run ends or N seconds "
                "pass — 200 with the poll body if it ended, else the usual 202.", examples=["wait=30"],
                json_schema_extra={"pattern": "^wait=([0-9]|[1-5][0-9]|60)$"})
SSE_EXAMPLE = ('id: 2\nevent: node.started\ndata: {"nodeId":"tpl","nodeType":"text.template"}\n\n'
               'id: 3\nevent: node.completed\ndata: {"nodeId":"tpl","cached":false,"durationMs":0.4,'
               '"outputs":{"text":"Hello nodeloom!"}}\n\n')


@router.post("/{workflow_id}/execute", status_code=202, summary="Run a workflow",
             description="Queues a run of the latest published version (or `version`; `\"draft\"` needs scope "
                         "`manage`). Checks run in order: inputs (422), publication (409), execution rate and daily "
                         "quota (429), credits (402).",
             responses={**answers(202, m.Accepted, description="Queued", errors={
                 402: ["insufficient_credits"], 403: ["forbidden"], 404: ["not_found"],
                 409: ["workflow_not_published"],
                 422: ["invalid_inputs", "invalid_webhook_url", "invalid_graph", "validation_error"],
                 429: ["execution_rate_limited", "daily_quota_exceeded"]}),
                 **answers(200, m.Execution, description="`Prefer: wait=N` and the run ended within N seconds: "
                           "the poll body")})
async def execute(workflow_id: str, body: ExecuteBody, request: Request, executions: ExecutionsDep,
                  idempotency: IdempotencyDep, p: ExecuteScope, base: BaseUrl, prefer: str | None = PREFER) -> Response:
    if body.version == "draft" and "manage" not in p.scopes:
        raise Forbidden("running the draft needs scope 'manage'")
    payload = body.model_dump(exclude_none=True)
    wait = prefer_wait(prefer)
    claim = getattr(request.state, "idempotency", None)  # an Idempotency-Key: its answer commits with the run
    answer = idempotency.store_json(claim, 202, final=wait == 0) if claim else None

    def accept() -> dict[str, Any]:  # checks and the submit transaction: one trip off the event loop
        sub = executions.prepare(account_id=p.account_id, workflow_id=workflow_id, body=payload, origin=base)
        return executions.submit(account_id=p.account_id, sub=sub, answer=answer)

    accepted = await run_in_threadpool(accept)
    if wait > 0 and (poll := await wait_for_end(executions, account_id=p.account_id,
                                                execution_id=accepted["executionId"], seconds=wait, base_url=base)):
        return JSONResponse(poll, status_code=200)
    return JSONResponse(accepted, status_code=202)


@router.get("/executions", summary="List executions", description="Newest first.",
            responses=answers(200, m.ExecutionPage, description="A page of executions", errors={
                422: ["validation_error"]}))
def list_executions(executions: ExecutionsDep, p: ReadScope, workflowId: str | None = None, status: str | None = None,
                    limit: int = Query(default=20, ge=1, le=100), cursor: str | None = None) -> dict[str, Any]:
    return executions.list(account_id=p.account_id, workflow_id=workflowId, status=status, limit=limit,
                              cursor=cursor)


@router.get("/executions/{execution_id}/poll", summary="Poll an execution",
            responses=answers(200, m.Execution, description="The poll body", errors={404: ["not_found"]}))
async def poll(execution_id: str, executions: ExecutionsDep, p: ReadScope, base: BaseUrl) -> Response:
    return await poll_body(executions, account_id=p.account_id, execution_id=execution_id, base=base)


async def poll_body(executions: ExecutionService, *, account_id: str, execution_id: str, base: str) -> Response:
    """The poll body, read off the event loop and sent as it is (it is JSON already: no pass through FastAPI's
    generic encoder, which walks every value of a 1,000-node body) — every client's hot loop."""
    body = await run_in_threadpool(executions.poll, account_id=account_id, execution_id=execution_id, base_url=base)
    return JSONResponse(body)


@router.get("/executions/{execution_id}", summary="Get an execution (the poll body)",
            responses=answers(200, m.Execution, description="The poll body", errors={404: ["not_found"]}))
async def get_execution(execution_id: str, executions: ExecutionsDep, p: ReadScope, base: BaseUrl) -> Response:
    return await poll_body(executions, account_id=p.account_id, execution_id=execution_id, base=base)


@router.post("/executions/{execution_id}/cancel", status_code=202, summary="Cancel an execution",
             responses=answers(202, m.CancelAnswer, description="Cancelled, or cancelling", errors={
                 404: ["not_found"], 409: ["execution_finished"]}))
def cancel(execution_id: str, executions: ExecutionsDep, p: ExecuteScope) -> dict[str, Any]:
    return executions.cancel(account_id=p.account_id, execution_id=execution_id)


@router.delete("/executions/{execution_id}", status_code=204, summary="Delete an execution and its files",
              responses=answers(204, description="Deleted", errors={
                  404: ["not_found"], 409: ["execution_running"]}))
def delete_execution(execution_id: str, executions: ExecutionsDep, p: ManageScope) -> Response:
    executions.delete(account_id=p.account_id, execution_id=execution_id)
    return Response(status_code=204)


@router.get("/executions/{execution_id}/events", summary="Follow an execution's events (Server-Sent Events)",
            response_class=StreamingResponse,
            description="Replays the execution's events from the first (or after `Last-Event-ID`), then follows "
                        "live; ends after the terminal event. Each message's `data:` is the JSON of an "
                        "`ExecutionEvent`'s `data` (see components); an idle stream carries `: keep-alive`.",
            responses=answers(200, description="An event stream", errors={404: ["not_found"]}, content={
                "text/event-stream": {"schema": {"type": "string", "description": "`id:`, `event:` and `data:` "
                                                 "lines per event (ExecutionEvent)"}, "example": SSE_EXAMPLE}}))
async def events(execution_id: str, request: Request, executions: ExecutionsDep,
                 settings: SettingsDep, p: ReadScope, base: BaseUrl,
                 last_event_id: str | None = Header(default=None, alias="Last-Event-ID",
                                                    description="resume after this event id"),
                 lastEventId: str | None = Query(default=None, description="the same, as a query parameter")
                 ) -> StreamingResponse:
    resume = last_event_id or lastEventId
    # an id is the event's sequence number; anything else (or absurdly large) replays from the first
    after = int(resume) if resume and EVENT_ID.fullmatch(resume) else 0
    # the first read happens before the response starts, so an unknown id is a clean 404
    first, status = await run_in_threadpool(executions.events_after, account_id=p.account_id,
                                            execution_id=execution_id, after=after)
    interval = settings.poll_interval_seconds

    async def stream() -> AsyncIterator[bytes]:
        nonlocal after
        batch, current = first, status
        idle = 0.0
        # listening from here on; each read comes after clearing, so a change that lands between a read and the
        # wait is not lost (the first read came before listening: the loop reads once more before it waits)
        with executions.listening(execution_id) as changed:
            read_since_listening = False
            while True:
                for e in batch:
                    data = executions.render(e.data, base)
                    yield (f"id: {e.seq}\nevent: {e.type}\n"
                           f"data: {json.dumps(data, separators=(',', ':'))}\n\n").encode()
                    after = e.seq
                    if e.type.startswith("execution.") and e.type != "execution.started":
                        return
                if not batch and current in TERMINAL_STATUSES:
                    return
                if batch:
                    idle = 0.0
                elif idle >= 15.0:
                    idle = 0.0
                    yield b": keep-alive\n\n"
                if await request.is_disconnected():
                    return
                if not batch and read_since_listening:
                    started = time.monotonic()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), max(interval, 1.0))
                    idle += time.monotonic() - started
                changed.clear()
                batch, current = await run_in_threadpool(executions.events_after, account_id=p.account_id,
                                                         execution_id=execution_id, after=after)
                read_since_listening = True
                await asyncio.sleep(0)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
