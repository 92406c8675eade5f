"""Executions: submit (one transaction: execution + nodes + job), poll, list, events, cancel, delete."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from nodeloom.clock import Clock, iso
from nodeloom.engine.graph import Graph
from nodeloom.engine.schema import MAX_JSON_DEPTH, MEDIA_TYPES, too_deep
from nodeloom.errors import Conflict, NotFound, ValidationFailed
from nodeloom.queue.base import QueueBackend
from nodeloom.services.files import FileService
from nodeloom.services.hub import EventHub
from nodeloom.services.ids import new_id
from nodeloom.services.lifecycle import Lifecycle
from nodeloom.services.pagination import newest_first, page
from nodeloom.services.submission import Submission
from nodeloom.services.workflows import WorkflowService
from nodeloom.storage.db import Database
from nodeloom.storage.models import Execution, ExecutionEvent, ExecutionNode, Job
from nodeloom.types import TERMINAL_STATUSES

STATUSES = ("QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")

#: the tables behind the models, for plain Core INSERTs (declarative types `__table__` as any FromClause)
_EXECUTIONS = cast(Table, Execution.__table__)
_EXECUTION_NODES = cast(Table, ExecutionNode.__table__)
#: built once, values given as parameters (`.values(...)` builds and keys a statement per call)
_INSERT_EXECUTION = insert(_EXECUTIONS)
_INSERT_NODES = insert(_EXECUTION_NODES)


class _InputNodeType(Protocol):
    """What the type of an input node (role "input", the `InputNode`s of `nodes.core`) offers beyond `Node`."""

    def check_input(self, value: Any, params: dict[str, Any]) -> tuple[Any, str | None]: ...


def queue_for(graph: Graph) -> str:
    """Route by the resources the graph's nodes need: any gpu node → gpu; only io nodes → io; else cpu."""
    kinds = {node.type.resources for node in graph.nodes.values() if node.type.role == "node"}
    if "gpu" in kinds:
        return "gpu"
    if kinds and kinds <= {"io"}:
        return "io"
    return "cpu"


def check_inputs(graph: Graph, inputs: Any, *, allow_http: bool = False) -> dict[str, Any]:
    """Unknown names, wrong types and missing required inputs → 422 with paths; so is a media URL that is not
    https unless `allow_http` (the operator allows private URLs, API.md "Files")."""
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise ValidationFailed("inputs must be an object", [{"path": "inputs", "message": "expected an object"}])
    schema = {item["name"]: item for item in graph.inputs_schema()}
    errors: list[dict[str, str]] = []
    clean: dict[str, Any] = {}
    for name, value in inputs.items():
        if name not in schema:
            errors.append({"path": f"inputs.{name}", "message": f"unknown input '{name}'; this workflow takes "
                           + (", ".join(sorted(schema)) or "no inputs")})
            continue
        if too_deep(value):
            errors.append({"path": f"inputs.{name}", "message": f"nested more than {MAX_JSON_DEPTH} levels deep"})
            continue
        node = graph.nodes[schema[name]["nodeId"]]
        value, problem = cast(_InputNodeType, node.type).check_input(value, node.params)
        if problem is None and schema[name]["type"] in MEDIA_TYPES:
            ref = value.get("fileId") or value.get("url") if isinstance(value, dict) else value
            if not isinstance(ref, str) or not ref.startswith(("file_", "https://", "http://", "data:")):
                problem = "expected a fileId, an https URL or a data: URI"
            elif ref.startswith("http://") and not allow_http:
                problem = "a URL input must use https"
        if problem:
            errors.append({"path": f"inputs.{name}", "message": problem})
        clean[name] = value
    for name, item in schema.items():
        if item["required"] and name not in clean and item["default"] is None:
            errors.append({"path": f"inputs.{name}", "message": f"missing required input '{name}'"})
    if errors:
        raise ValidationFailed("the inputs do not match the workflow", errors, code="invalid_inputs")
    return clean


class ExecutionService:
    def __init__(self, db: Database, *, workflows: WorkflowService, queue: QueueBackend, files: FileService,
                 hub: EventHub, lifecycle: Lifecycle, clock: Clock, wake_workers: Callable[[], None] | None = None,
                 check_callback_url: Callable[[str], None] | None = None,
                 graph_checks: Sequence[Callable[[str, Graph], None]] = (), allow_http_inputs: bool = False):
        self.db = db
        self.workflows = workflows
        self.queue = queue
        self.files = files
        self.hub = hub
        self.clock = clock
        #: admission (limits, credits), the hold, and what a cancel implies go through it (services/lifecycle.py)
        self.lifecycle = lifecycle
        #: tells this process's workers that something was enqueued (they look now rather than at the next poll)
        self._wake_workers = wake_workers
        #: refuses a callback URL that can never be valid (422)
        self._check_callback_url = check_callback_url
        #: account-aware graph checks at execute, e.g. hosted nodes need the operator's or the account's key (422)
        self._graph_checks = tuple(graph_checks)
        #: plain-http media URLs in inputs pass validation (NODELOOM_ALLOW_PRIVATE_URLS); else they are a 422
        self._allow_http_inputs = allow_http_inputs

    def prepare(self, *, account_id: str, workflow_id: str, body: dict[str, Any],
                origin: str | None = None) -> Submission:
        version = body.get("version")
        if version is not None and version != "draft" and (isinstance(version, bool) or not isinstance(version, int)):
            raise ValidationFailed("version must be a number or \"draft\"",
                                   [{"path": "version", "message": "expected an integer or \"draft\""}])
        wf, graph_json, resolved, graph = self.workflows.graph_for_run(account_id=account_id,
                                                                       workflow_id=workflow_id, version=version)
        for check in self._graph_checks:
            check(account_id, graph)
        inputs = check_inputs(graph, body.get("inputs"), allow_http=self._allow_http_inputs)
        webhook_url, webhook_events = body.get("webhookUrl"), body.get("webhookEvents")
        if webhook_url is None:  # the workflow's webhook settings are the default (how a trigger gets a callback)
            defaults = wf.webhook_settings or {}
            webhook_url = defaults.get("callbackUrl")
            if webhook_url and webhook_events is None:
                webhook_events = defaults.get("callbackEvents")
        elif self._check_callback_url is not None:
            self._check_callback_url(webhook_url)
        return Submission(workflow_id=wf.id, version=resolved, graph_json=graph_json, graph=graph, inputs=inputs,
                          webhook_url=webhook_url, webhook_events=webhook_events, origin=origin)

    def create(self, session: Any, *, account_id: str, sub: Submission, execution_id: str | None = None) -> str:
        """Insert the execution, its node rows and its job in `session` (the caller's transaction); returns
        its id. Plain Core INSERTs on the tables: the hot path of every submit skips the ORM's machinery."""
        now = self.clock.now()
        eid = execution_id or new_id("ex")
        conn = session.connection()  # plain INSERTs on the transaction's connection: no ORM pass
        conn.execute(_INSERT_EXECUTION, dict(
            id=eid, account_id=account_id, workflow_id=sub.workflow_id, version=sub.version, graph=sub.graph_json,
            inputs=sub.inputs, status="QUEUED", progress=0.0, credits_used=0, webhook_url=sub.webhook_url,
            webhook_events=sub.webhook_events, origin=sub.origin, event_seq=0, cancel_requested=False, attempts=0,
            created_at=now, outputs=None, error=None, started_at=None, completed_at=None))
        conn.execute(_INSERT_NODES, [
            {"execution_id": eid, "node_id": nid, "node_type": node.type.type, "status": "QUEUED", "cached": False,
             "credits": 0, "resumable": False, "memory": {}} for nid, node in sub.graph.nodes.items()])
        self.queue.enqueue(session, execution_id=eid, account_id=account_id, queue=queue_for(sub.graph))
        return eid

    def submit(self, *, account_id: str, sub: Submission,
               answer: Callable[[Any, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Accept an execution: the lifecycle admits it (execution rate), then it is created and queued
        (daily quota, credit hold) in one transaction, so a refusal leaves nothing queued. `answer` stores
        the response in that same transaction (an idempotency key's answer)."""
        self.lifecycle.admit(account_id=account_id, sub=sub)
        with self.db.write() as s:
            execution_id = self.create(s, account_id=account_id, sub=sub)
            self.lifecycle.queued(s, account_id=account_id, sub=sub, execution_id=execution_id)
            accepted = self.accepted(execution_id)
            if answer is not None:
                answer(s, accepted)
        self.enqueued()
        return accepted

    def enqueued(self) -> None:
        if self._wake_workers is not None:
            self._wake_workers()

    @staticmethod
    def accepted(execution_id: str) -> dict[str, Any]:
        return {"executionId": execution_id, "status": "QUEUED",
                "pollUrl": f"/api/v1/workflows/executions/{execution_id}/poll"}

    # reading ------------------------------------------------------------------------------------------
    def _get(self, s: Any, account_id: str, execution_id: str) -> Execution:
        ex = s.get(Execution, execution_id)
        if ex is None or ex.account_id != account_id:
            raise NotFound("execution not found")
        return ex

    def status(self, *, account_id: str, execution_id: str) -> str:
        with self.db.read() as s:
            row = s.connection().execute(_STATUS, {"execution_id": execution_id}).first()
        if row is None or row.account_id != account_id:
            raise NotFound("execution not found")
        return str(row.status)

    def poll(self, *, account_id: str, execution_id: str, base_url: str = "") -> dict[str, Any]:
        # every client's hot loop: plain rows of the columns the body shows (no ORM object, and neither the
        # graph nor the inputs read and parsed)
        with self.db.read() as s:
            ex = s.connection().execute(_POLL_EXECUTION, {"execution_id": execution_id}).first()
            if ex is None or ex.account_id != account_id:
                raise NotFound("execution not found")
            body = snapshot(s, ex, queue=self.queue)
        return self.files.render(body, base_url)

    def snapshot(self, s: Session, ex: Execution) -> dict[str, Any]:
        return snapshot(s, ex, queue=self.queue)

    def summary(self, ex: Execution) -> dict[str, Any]:
        return {"executionId": ex.id, "workflowId": ex.workflow_id,
                "version": ex.version if ex.version is not None else "draft", "status": ex.status,
                "progress": round(ex.progress, 4), "createdAt": iso(ex.created_at), "startedAt": iso(ex.started_at),
                "completedAt": iso(ex.completed_at), "creditsUsed": float(ex.credits_used), "error": ex.error}

    def list(self, *, account_id: str, workflow_id: str | None, status: str | None, limit: int,
             cursor: str | None) -> dict[str, Any]:
        stmt = select(Execution).where(Execution.account_id == account_id)
        if workflow_id:
            stmt = stmt.where(Execution.workflow_id == workflow_id)
        if status:
            if status.upper() not in STATUSES:
                raise ValidationFailed("unknown status", [{"path": "status", "message": f"one of {STATUSES}"}])
            stmt = stmt.where(Execution.status == status.upper())
        with self.db.read() as s:
            rows = s.scalars(newest_first(stmt, Execution, limit=limit, cursor=cursor)).all()
        return page(rows, limit=limit, public=self.summary)

    def listening(self, execution_id: str, *, ends_only: bool = False) -> AbstractContextManager[asyncio.Event]:
        """Set on every change of the execution while the block runs (`EventHub.listening`: clear, read, wait);
        `ends_only`: only on changes that may have ended it."""
        return self.hub.listening(execution_id, ends_only=ends_only)

    def poll_if_ended(self, *, account_id: str, execution_id: str, base_url: str = "") -> dict[str, Any] | None:
        """The poll body once the run has ended, else None (one trip for `Prefer: wait`: the status, and the body
        only when it is needed)."""
        if self.status(account_id=account_id, execution_id=execution_id) not in TERMINAL_STATUSES:
            return None
        return self.poll(account_id=account_id, execution_id=execution_id, base_url=base_url)

    def render(self, value: Any, base_url: str) -> Any:
        """Stored JSON as a client sees it: media markers become signed links under `base_url`."""
        return self.files.render(value, base_url)

    def counts_by_status(self) -> dict[str, int]:
        with self.db.read() as s:
            rows = s.execute(select(Execution.status, func.count()).group_by(Execution.status)).all()
        return {status: int(n) for status, n in rows}

    def events_after(self, *, account_id: str, execution_id: str, after: int) -> tuple[builtins.list[ExecutionEvent], str]:
        with self.db.read() as s:
            ex = self._get(s, account_id, execution_id)
            rows = s.scalars(select(ExecutionEvent).where(ExecutionEvent.execution_id == execution_id,
                                                          ExecutionEvent.seq > after)
                             .order_by(ExecutionEvent.seq).limit(500)).all()
            return list(rows), ex.status

    # changing -----------------------------------------------------------------------------------------
    def cancel_was_requested(self, execution_id: str) -> bool:
        """Whether a caller asked to cancel the execution (not: whether it stopped for another reason)."""
        with self.db.read() as s:
            return bool(s.scalar(select(Execution.cancel_requested).where(Execution.id == execution_id)))

    def cancel(self, *, account_id: str, execution_id: str) -> dict[str, Any]:
        with self.db.write() as s:
            ex = self._get(s, account_id, execution_id)
            if ex.status in TERMINAL_STATUSES:
                raise Conflict(f"execution already {ex.status}", code="execution_finished")
            job = s.scalar(select(Job).where(Job.execution_id == ex.id))
            if ex.status == "QUEUED" and (job is None or job.state == "queued"):
                self.queue.remove(s, ex.id)
                self.lifecycle.ended(s, ex, status="CANCELLED")
            else:
                ex.cancel_requested = True
        self.hub.notify(execution_id)
        return {"executionId": execution_id, "status": "CANCELLING" if ex.status == "RUNNING" else ex.status}

    def delete(self, *, account_id: str, execution_id: str) -> None:
        with self.db.write() as s:
            ex = self._get(s, account_id, execution_id)
            if ex.status not in TERMINAL_STATUSES:
                raise Conflict("cancel the execution before deleting it", code="execution_running")
            self.files.delete_for_execution(s, ex.id)
            s.execute(delete(ExecutionEvent).where(ExecutionEvent.execution_id == ex.id))
            s.execute(delete(ExecutionNode).where(ExecutionNode.execution_id == ex.id))
            s.delete(ex)


def snapshot(s: Session, ex: Execution | Any, *, queue: QueueBackend) -> dict[str, Any]:
    """The poll body as stored, read in the caller's session (media still stored-file markers:
    `files.render` signs their URLs), from an Execution or a row of `_EXECUTION_COLUMNS`. Webhook callbacks
    snapshot it inside the event's transaction."""
    # plain rows of the columns the body shows (no ORM objects to build and track: this is every poll's path)
    nodes = s.execute(_POLL_NODES, {"execution_id": ex.id}).all()
    position = queue.position(s, ex.id) if ex.status == "QUEUED" else None
    body: dict[str, Any] = {
        "executionId": ex.id, "workflowId": ex.workflow_id,
        "version": ex.version if ex.version is not None else "draft",
        "status": ex.status, "progress": round(ex.progress, 4),
        "createdAt": iso(ex.created_at), "startedAt": iso(ex.started_at), "completedAt": iso(ex.completed_at),
        "creditsUsed": float(ex.credits_used),
        "outputs": ex.outputs or {},
        "nodes": {n.node_id: _node_public(n) for n in nodes},
        "error": ex.error,
    }
    if ex.status == "QUEUED":
        body["queuePosition"] = position if position is not None else 0
    return body


_EXECUTION_COLUMNS = (Execution.id, Execution.account_id, Execution.workflow_id, Execution.version, Execution.status,
                      Execution.progress, Execution.created_at, Execution.started_at, Execution.completed_at,
                      Execution.credits_used, Execution.outputs, Execution.error)
_NODE_COLUMNS = (ExecutionNode.node_id, ExecutionNode.status, ExecutionNode.node_type, ExecutionNode.started_at,
                 ExecutionNode.completed_at, ExecutionNode.cached, ExecutionNode.credits, ExecutionNode.outputs,
                 ExecutionNode.error)

#: built once: a statement object reused keeps its compiled form's cache key (building and keying a statement costs
#: more than SQLite takes to answer it)
_POLL_EXECUTION = select(*_EXECUTION_COLUMNS).where(Execution.id == bindparam("execution_id"))
_STATUS = select(Execution.account_id, Execution.status).where(Execution.id == bindparam("execution_id"))
_POLL_NODES = select(*_NODE_COLUMNS).where(ExecutionNode.execution_id == bindparam("execution_id"))


def _node_public(n: Any) -> dict[str, Any]:
    """A node's part of the poll body, from a row of `_NODE_COLUMNS` (or an ExecutionNode)."""
    out: dict[str, Any] = {"status": n.status, "nodeType": n.node_type, "startedAt": iso(n.started_at),
                           "completedAt": iso(n.completed_at), "cached": n.cached, "credits": float(n.credits)}
    if n.outputs is not None:
        out["outputs"] = n.outputs
    if n.error is not None:
        out["error"] = n.error
    return out
