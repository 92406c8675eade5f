"""/api/v1/workflows: CRUD, validate, publish, versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Response

from nodeloom.api.deps import ManageScope, ReadScope, WorkflowsDep
from nodeloom.api.schemas import GraphBody, WorkflowCreate, WorkflowUpdate

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


@router.post("", status_code=201)
def create_workflow(body: WorkflowCreate, workflows: WorkflowsDep, p: ManageScope) -> dict[str, Any]:
    return workflows.create(account_id=p.account_id, name=body.name, description=body.description,
                               graph=body.graph)


@router.get("")
def list_workflows(workflows: WorkflowsDep, p: ReadScope, q: str | None = Query(default=None, max_length=200),
                   limit: int = Query(default=20, ge=1, le=100), cursor: str | None = None) -> dict[str, Any]:
    return workflows.list(account_id=p.account_id, q=q, limit=limit, cursor=cursor)


@router.post("/validate")
def validate_graph(body: GraphBody, workflows: WorkflowsDep, p: ReadScope) -> dict[str, Any]:
    return workflows.validate_only(body.graph)


@router.get("/{workflow_id}")
def get_workflow(workflow_id: str, workflows: WorkflowsDep, p: ReadScope) -> dict[str, Any]:
    return workflows.get_public(account_id=p.account_id, workflow_id=workflow_id)


@router.put("/{workflow_id}")
def update_workflow(workflow_id: str, body: WorkflowUpdate, workflows: WorkflowsDep, p: ManageScope) -> dict[str, Any]:
    return workflows.update(account_id=p.account_id, workflow_id=workflow_id, name=body.name,
                               description=body.description, graph=body.graph)


@router.delete("/{workflow_id}", status_code=204)
def delete_workflow(workflow_id: str, workflows: WorkflowsDep, p: ManageScope) -> Response:
    workflows.delete(account_id=p.account_id, workflow_id=workflow_id)
    return Response(status_code=204)


@router.post("/{workflow_id}/publish", status_code=201)
def publish_workflow(workflow_id: str, workflows: WorkflowsDep, p: ManageScope) -> dict[str, Any]:
    return workflows.publish(account_id=p.account_id, workflow_id=workflow_id)


@router.get("/{workflow_id}/versions")
def list_versions(workflow_id: str, workflows: WorkflowsDep, p: ReadScope) -> dict[str, Any]:
    return workflows.versions(account_id=p.account_id, workflow_id=workflow_id)


@router.get("/{workflow_id}/versions/{version}")
def get_version(workflow_id: str, workflows: WorkflowsDep, p: ReadScope,
                version: int = Path(ge=1, le=2**31 - 1)) -> dict[str, Any]:
    return workflows.version(account_id=p.account_id, workflow_id=workflow_id, version=version)
