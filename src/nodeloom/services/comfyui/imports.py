"""Importing a ComfyUI workflow as a nodeloom workflow (API.md "ComfyUI workflows": import and re-import).

The shape is told apart (`formats`), the UI format converted as ComfyUI's frontend converts it (`convert`), the
graph built with its exposed inputs and outputs (`expose`) against the pool's last `/object_info` — then the
draft is created (or, on re-import, replaced) like any other workflow, validated by the same registry.
"""

from __future__ import annotations

from typing import Any

from nodeloom.services.comfyui.expose import import_workflow
from nodeloom.services.comfyui.formats import parse_upload
from nodeloom.services.comfyui.pool import ComfyPool
from nodeloom.services.workflows import WorkflowService


class ComfyImportService:
    def __init__(self, *, pool: ComfyPool, workflows: WorkflowService):
        self.pool = pool
        self.workflows = workflows

    def _convert(self, *, workflow: Any, data: bytes | None, inputs: dict[str, Any] | None,
                 outputs: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
        parsed = parse_upload(workflow, data=data)
        result = import_workflow(parsed, self.pool.object_info(), inputs=inputs, outputs=outputs)
        return result.graph, list(result.import_notes)

    def create(self, *, account_id: str, name: str, description: str, workflow: Any = None,
               data: bytes | None = None, inputs: dict[str, Any] | None = None,
               outputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new draft workflow from a ComfyUI export (JSON in either format, or the bytes of a saved PNG)."""
        graph, notes = self._convert(workflow=workflow, data=data, inputs=inputs, outputs=outputs)
        created = self.workflows.create(account_id=account_id, name=name, description=description, graph=graph)
        return {**created, "importNotes": notes}

    def reimport(self, *, account_id: str, workflow_id: str, workflow: Any = None, data: bytes | None = None,
                 inputs: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None,
                 name: str | None = None, description: str | None = None) -> dict[str, Any]:
        """A new export into an existing workflow's draft: its id, versions and webhook stay."""
        self.workflows.get_public(account_id=account_id, workflow_id=workflow_id)  # 404 before any conversion
        graph, notes = self._convert(workflow=workflow, data=data, inputs=inputs, outputs=outputs)
        updated = self.workflows.update(account_id=account_id, workflow_id=workflow_id, name=name,
                                        description=description, graph=graph)
        return {**updated, "importNotes": notes}
