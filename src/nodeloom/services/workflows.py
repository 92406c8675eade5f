"""Workflows: drafts, validation, immutable published versions."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, func, select

from nodeloom.clock import Clock, iso
from nodeloom.engine.errors import GraphError
from nodeloom.engine.graph import Graph, Limits, validate
from nodeloom.engine.registry import Registry
from nodeloom.errors import Conflict, NotFound, ValidationFailed
from nodeloom.services.ids import new_id, new_webhook_id
from nodeloom.services.pagination import newest_first, page
from nodeloom.storage.db import Database
from nodeloom.storage.models import Workflow, WorkflowVersion

#: what execute reads of a workflow (built once: every execute asks)
_RUN_COLUMNS = (Workflow.id, Workflow.account_id, Workflow.published_version, Workflow.webhook_settings)
_RUN_PUBLISHED = select(*_RUN_COLUMNS).where(Workflow.id == bindparam("workflow_id"))
_RUN_DRAFT = select(*_RUN_COLUMNS, Workflow.graph).where(Workflow.id == bindparam("workflow_id"))


class WorkflowService:
    def __init__(self, db: Database, registry: Registry, *, clock: Clock, limits: Limits,
                 pin: Callable[[Any], Any] | None = None, unpin: Callable[[Any], Any] | None = None):
        self.db = db
        self.registry = registry
        self.clock = clock
        self.limits = limits
        #: publishing pins what the graph's remote node types were (a snapshot of ComfyUI's `/object_info` entries)
        #: into the version; a draft never carries a pin of its own (a client could forge one)
        self.pin: Callable[[Any], Any] = pin or (lambda raw: raw)
        self.unpin: Callable[[Any], Any] = unpin or (lambda raw: raw)
        #: published versions never change: their checked graphs are kept (LRU) so execute skips the
        #: version's row and its validation; a workflow's own row is still read (ownership, latest version)
        self._versions: OrderedDict[tuple[str, int], tuple[Any, Graph]] = OrderedDict()
        self._versions_lock = threading.Lock()
        self._versions_max = 512

    def check_graph(self, graph: Any) -> Graph:
        try:
            return validate(graph, self.registry.for_graph(graph), limits=self.limits)
        except GraphError as exc:
            raise ValidationFailed("the graph is invalid", exc.details, code="invalid_graph") from exc

    def validate_only(self, graph: Any) -> dict[str, Any]:
        try:
            validate(graph, self.registry.for_graph(graph), limits=self.limits)
        except GraphError as exc:
            return {"valid": False, "errors": exc.details}
        return {"valid": True, "errors": []}

    def public(self, wf: Workflow, graph: Graph | None = None) -> dict[str, Any]:
        g = graph or self.check_graph_lenient(wf.graph)
        return {
            "id": wf.id, "name": wf.name, "description": wf.description, "graph": wf.graph,
            "inputs": g.inputs_schema() if g else [], "outputs": g.outputs_schema() if g else [],
            "publishedVersion": wf.published_version, "webhookId": wf.webhook_id,
            "webhookEnabled": wf.webhook_enabled and wf.published_version is not None,
            "createdAt": iso(wf.created_at), "updatedAt": iso(wf.updated_at),
        }

    def check_graph_lenient(self, raw: Any) -> Graph | None:
        try:
            return validate(raw, self.registry.for_graph(raw), limits=self.limits, check_availability=False)
        except GraphError:
            return None

    def create(self, *, account_id: str, name: str, description: str, graph: Any) -> dict[str, Any]:
        graph = self.unpin(graph)
        g = self.check_graph(graph)
        now = self.clock.now()
        wf = Workflow(id=new_id("wf"), account_id=account_id, name=name, description=description or "",
                      graph=graph, webhook_id=new_webhook_id(), webhook_enabled=True, webhook_settings={},
                      created_at=now, updated_at=now)
        with self.db.write() as s:
            s.add(wf)
        return self.public(wf, g)

    def _get(self, s: Any, account_id: str, workflow_id: str) -> Workflow:
        wf = s.get(Workflow, workflow_id)
        if wf is None or wf.account_id != account_id:
            raise NotFound("workflow not found")
        return wf

    def get(self, *, account_id: str, workflow_id: str) -> Workflow:
        with self.db.read() as s:
            return self._get(s, account_id, workflow_id)

    def get_public(self, *, account_id: str, workflow_id: str) -> dict[str, Any]:
        return self.public(self.get(account_id=account_id, workflow_id=workflow_id))

    def update(self, *, account_id: str, workflow_id: str, name: str | None, description: str | None,
               graph: Any | None) -> dict[str, Any]:
        graph = self.unpin(graph) if graph is not None else None
        g = self.check_graph(graph) if graph is not None else None
        with self.db.write() as s:
            wf = self._get(s, account_id, workflow_id)
            if name is not None:
                wf.name = name
            if description is not None:
                wf.description = description
            if graph is not None:
                wf.graph = graph
            wf.updated_at = self.clock.now()
        return self.public(wf, g)

    def delete(self, *, account_id: str, workflow_id: str) -> None:
        with self.db.write() as s:
            s.delete(self._get(s, account_id, workflow_id))

    def list(self, *, account_id: str, q: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        stmt = select(Workflow).where(Workflow.account_id == account_id)
        if q:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(func.lower(Workflow.name).like(f"%{escaped.lower()}%", escape="\\"))
        with self.db.read() as s:
            rows = s.scalars(newest_first(stmt, Workflow, limit=limit, cursor=cursor)).all()
        return page(rows, limit=limit, public=self.public)

    def publish(self, *, account_id: str, workflow_id: str) -> dict[str, Any]:
        with self.db.write() as s:
            wf = self._get(s, account_id, workflow_id)
            g = self.check_graph(wf.graph)
            last = s.scalar(select(func.max(WorkflowVersion.version)).where(WorkflowVersion.workflow_id == wf.id))
            version = (last or 0) + 1
            node_versions = {nid: node.type.version for nid, node in g.nodes.items()}
            now = self.clock.now()
            s.add(WorkflowVersion(workflow_id=wf.id, version=version, graph=self.pin(wf.graph),
                                  node_versions=node_versions, published_at=now))
            wf.published_version = version
            wf.updated_at = now
        return {"workflowId": workflow_id, "version": version, "publishedAt": iso(now)}

    @staticmethod
    def version_public(v: WorkflowVersion) -> dict[str, Any]:
        return {"workflowId": v.workflow_id, "version": v.version, "graph": v.graph,
                "nodeVersions": v.node_versions, "publishedAt": iso(v.published_at)}

    def versions(self, *, account_id: str, workflow_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            self._get(s, account_id, workflow_id)
            rows = s.scalars(select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id)
                             .order_by(WorkflowVersion.version.desc())).all()
            return {"data": [self.version_public(v) for v in rows]}

    def version(self, *, account_id: str, workflow_id: str, version: int) -> dict[str, Any]:
        with self.db.read() as s:
            self._get(s, account_id, workflow_id)
            v = s.get(WorkflowVersion, (workflow_id, version))
            if v is None:
                raise NotFound(f"version {version} not found")
            return self.version_public(v)

    def graph_for_run(self, *, account_id: str, workflow_id: str,
                      version: int | str | None) -> tuple[Any, Any, int | None, Graph]:
        """What an execution runs: the workflow (id, webhook settings), the graph's JSON, the version
        (None for the draft) and the checked graph — the latest published version, a named one, or the draft."""
        with self.db.read() as s:
            # the draft's graph comes with the row; a published one from its version
            wf = s.connection().execute(_RUN_DRAFT if version == "draft" else _RUN_PUBLISHED,
                                        {"workflow_id": workflow_id}).first()
            if wf is None or wf.account_id != account_id:
                raise NotFound("workflow not found")
            if version == "draft":
                return wf, wf.graph, None, self.check_graph(wf.graph)
            if version is None:
                if wf.published_version is None:
                    raise Conflict("this workflow has no published version; publish it or run the draft",
                                   code="workflow_not_published")
                version = wf.published_version
            key = (workflow_id, int(version))
            with self._versions_lock:
                hit = self._versions.get(key)
                if hit is not None:
                    self._versions.move_to_end(key)
            if hit is None:
                graph_json = s.scalar(select(WorkflowVersion.graph).where(WorkflowVersion.workflow_id == workflow_id,
                                                                          WorkflowVersion.version == key[1]))
                if graph_json is None:
                    raise NotFound(f"version {version} not found")
                hit = (graph_json, self.check_graph(graph_json))
                with self._versions_lock:
                    self._versions[key] = hit
                    while len(self._versions) > self._versions_max:
                        self._versions.popitem(last=False)
            return wf, hit[0], key[1], hit[1]


