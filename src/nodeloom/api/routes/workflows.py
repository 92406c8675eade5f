"""/api/v1/workflows: CRUD, validate, publish, versions."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from pydantic import ValidationError as BodyValidationError
from starlette.datastructures import UploadFile

from nodeloom.api import models as m
from nodeloom.api.deps import ComfyImportsDep, ManageScope, ReadScope, SettingsDep, WorkflowsDep
from nodeloom.api.openapi import answers, comfy_import_body
from nodeloom.api.schemas import ComfyImportBody, ComfyReimportBody, GraphBody, WorkflowCreate, WorkflowUpdate
from nodeloom.errors import ApiError, PayloadTooLarge, ValidationFailed

B = TypeVar("B", bound=BaseModel)

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


@router.post("", status_code=201, summary="Create a workflow (its draft)",
             responses=answers(201, m.Workflow, description="Created", errors={422: ["invalid_graph"]}))
def create_workflow(body: WorkflowCreate, workflows: WorkflowsDep, p: ManageScope) -> dict[str, Any]:
    return workflows.create(account_id=p.account_id, name=body.name, description=body.description,
                               graph=body.graph)


async def _import_request(request: Request, model: type[B], max_upload: int) -> tuple[B, bytes | None]:
    """The import's fields from JSON, or from multipart (`file`: a saved PNG or a JSON export; `inputs` and
    `outputs` as JSON text) — one model either way, so both answer the same 422s."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:  # as every other JSON body here: 400 invalid_json, also when nested too deep to parse
            raw = await request.json()
        except (UnicodeDecodeError, ValueError):
            raise ApiError("the request body is not valid JSON", code="invalid_json") from None
        except RecursionError:
            raise ApiError("the request body is nested too deeply", code="invalid_json") from None
        try:
            return model.model_validate(raw), None
        except BodyValidationError as exc:
            raise _invalid(exc) from None
    form = await request.form(max_files=1, max_fields=10, max_part_size=max_upload)
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise ValidationFailed("send the export as multipart/form-data field 'file'",
                               [{"path": "file", "message": "missing file field"}])
    data = await file.read(max_upload + 1)
    fields: dict[str, object] = {k: v for k, v in form.items() if isinstance(v, str)}
    await form.close()
    if len(data) > max_upload:
        raise PayloadTooLarge(f"uploads are limited to {max_upload} bytes")
    for key in ("inputs", "outputs"):
        if isinstance(fields.get(key), str):
            try:
                fields[key] = json.loads(str(fields[key]))
            except ValueError:
                raise ValidationFailed(f"{key} must be JSON", [{"path": key, "message": "invalid JSON"}]) from None
    try:
        return model.model_validate({**fields, "workflow": {}}), data
    except BodyValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: BodyValidationError) -> ValidationFailed:
    details = [{"path": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]
    return ValidationFailed("the request body is invalid", details)


@router.post("/import/comfyui", status_code=201, summary="Import a ComfyUI export as a new workflow",
             description="JSON `{name, description?, workflow, inputs?, outputs?}` (ComfyUI's API or UI format), or "
                         "multipart with the export (or a PNG ComfyUI saved) as `file`.",
             openapi_extra=comfy_import_body(ComfyImportBody),
             responses=answers(201, m.ComfyImport, description="Created, with `importNotes`", errors={
                 400: ["invalid_json"], 413: ["payload_too_large"],
                 422: ["invalid_graph", "comfyui_ui_unsupported", "validation_error"],
                 503: ["comfyui_unavailable"]}))
async def import_comfyui(request: Request, imports: ComfyImportsDep, settings: SettingsDep,
                         p: ManageScope) -> dict[str, Any]:
    body, data = await _import_request(request, ComfyImportBody, settings.max_upload_bytes)
    return await run_in_threadpool(imports.create, account_id=p.account_id, name=body.name,
                                   description=body.description, workflow=None if data else body.workflow,
                                   data=data, inputs=body.inputs, outputs=body.outputs)


@router.put("/{workflow_id}/import/comfyui", summary="Re-import a ComfyUI export into a workflow's draft",
            openapi_extra=comfy_import_body(ComfyReimportBody),
            responses=answers(200, m.ComfyImport, description="Updated, with `importNotes`", errors={
                400: ["invalid_json"], 404: ["not_found"], 413: ["payload_too_large"],
                422: ["invalid_graph", "comfyui_ui_unsupported", "validation_error"],
                503: ["comfyui_unavailable"]}))
async def reimport_comfyui(workflow_id: str, request: Request, imports: ComfyImportsDep, settings: SettingsDep,
                           p: ManageScope) -> dict[str, Any]:
    body, data = await _import_request(request, ComfyReimportBody, settings.max_upload_bytes)
    return await run_in_threadpool(imports.reimport, account_id=p.account_id, workflow_id=workflow_id,
                                   workflow=None if data else body.workflow, data=data, inputs=body.inputs,
                                   outputs=body.outputs, name=body.name, description=body.description)


@router.get("", summary="List workflows", description="`q` searches names; newest first.",
            responses=answers(200, m.WorkflowPage, description="A page of workflows"))
def list_workflows(workflows: WorkflowsDep, p: ReadScope, q: str | None = Query(default=None, max_length=200),
                   limit: int = Query(default=20, ge=1, le=100), cursor: str | None = None) -> dict[str, Any]:
    return workflows.list(account_id=p.account_id, q=q, limit=limit, cursor=cursor)


@router.post("/validate", summary="Validate a graph without saving it",
             responses=answers(200, m.GraphCheck, description="Whether the graph is valid, and what is wrong"))
def validate_graph(body: GraphBody, workflows: WorkflowsDep, p: ReadScope) -> dict[str, Any]:
    return workflows.validate_only(body.graph)


@router.get("/{workflow_id}", summary="Get a workflow",
            responses=answers(200, m.Workflow, description="The workflow", errors={404: ["not_found"]}))
def get_workflow(workflow_id: str, workflows: WorkflowsDep, p: ReadScope) -> dict[str, Any]:
    return workflows.get_public(account_id=p.account_id, workflow_id=workflow_id)


@router.put("/{workflow_id}", summary="Edit a workflow's draft",
            responses=answers(200, m.Workflow, description="Updated", errors={404: ["not_found"], 422: ["invalid_graph"]}))
def update_workflow(workflow_id: str, body: WorkflowUpdate, workflows: WorkflowsDep, p: ManageScope) -> dict[str, Any]:
    return workflows.update(account_id=p.account_id, workflow_id=workflow_id, name=body.name,
                               description=body.description, graph=body.graph)


@router.delete("/{workflow_id}", status_code=204, summary="Delete a workflow",
               responses=answers(204, description="Deleted", errors={404: ["not_found"]}))
def delete_workflow(workflow_id: str, workflows: WorkflowsDep, p: ManageScope) -> Response:
    workflows.delete(account_id=p.account_id, workflow_id=workflow_id)
    return Response(status_code=204)


@router.post("/{workflow_id}/publish", status_code=201, summary="Publish the draft as a new version",
             responses=answers(201, m.Published, description="Published", errors={404: ["not_found"], 422: ["invalid_graph"]}))
def publish_workflow(workflow_id: str, workflows: WorkflowsDep, p: ManageScope) -> dict[str, Any]:
    return workflows.publish(account_id=p.account_id, workflow_id=workflow_id)


@router.get("/{workflow_id}/versions", summary="List published versions",
            responses=answers(200, m.WorkflowVersionList, description="Newest first", errors={404: ["not_found"]}))
def list_versions(workflow_id: str, workflows: WorkflowsDep, p: ReadScope) -> dict[str, Any]:
    return workflows.versions(account_id=p.account_id, workflow_id=workflow_id)


@router.get("/{workflow_id}/versions/{version}", summary="Get a published version",
            responses=answers(200, m.WorkflowVersion, description="The version", errors={404: ["not_found"]}))
def get_version(workflow_id: str, workflows: WorkflowsDep, p: ReadScope,
                version: int = Path(ge=1, le=2**31 - 1)) -> dict[str, Any]:
    return workflows.version(account_id=p.account_id, workflow_id=workflow_id, version=version)
