"""Request bodies (XCreate/XUpdate). Responses are built by the services in the API.md shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

#: a published version number: a small counter, so anything past 2^31 is malformed (422), not unknown (404)
VersionNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]


def unique(items: list[Any] | None) -> list[Any] | None:
    """A list that stands for a set (events): each item once, in the order first given."""
    return None if items is None else list(dict.fromkeys(items))


class Body(BaseModel):
    """Strict at the boundary: JSON of the wrong type is a 422, never coerced (`"version": true` is not 1,
    `"enabled": 0.0` is not false, `"name": 5` is not "5"). Timestamps are the exception: JSON has no date
    type, so they come as ISO 8601 strings (`Field(strict=False)`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


GREETER: dict[str, Any] = {"nodes": [
    {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "world"}},
    {"id": "tpl", "type": "text.template", "inputs": {"text": {"from": "prompt", "output": "text"}},
     "params": {"template": "Hello {{ text }}!"}},
    {"id": "out", "type": "output.text", "inputs": {"text": {"from": "tpl", "output": "text"}},
     "params": {"name": "greeting"}}]}


class WorkflowCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Greeter", "graph": GREETER}]})

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    graph: dict[str, Any]


class ComfyImportBody(Body):
    """`POST /api/v1/workflows/import/comfyui` as JSON (a PNG comes as multipart `file` with the same fields)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    workflow: dict[str, Any]
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None


class ComfyReimportBody(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    workflow: dict[str, Any]
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None


class WorkflowUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    graph: dict[str, Any] | None = None


class GraphBody(Body):
    graph: Any


class ExecuteBody(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"inputs": {"prompt": "a red fox"}},
        {"inputs": {"prompt": "a red fox"}, "version": 1, "webhookUrl": "https://example.com/hooks/nodeloom",
         "webhookEvents": ["completed", "failed"]}]})

    inputs: dict[str, Any] = Field(default_factory=dict)
    version: VersionNumber | Literal["draft"] | None = None
    webhookUrl: str | None = Field(default=None, max_length=2048)
    webhookEvents: Annotated[list[Literal["started", "node.completed", "completed", "failed", "cancelled"]] | None,
                             AfterValidator(unique)] = None


class EstimateBody(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"inputs": {"prompt": "a red fox"}}]})

    inputs: dict[str, Any] = Field(default_factory=dict)
    version: VersionNumber | Literal["draft"] | None = None


class KeyCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "render worker", "scopes": ["execute", "read"], "expiresAt": "2027-06-30T00:00:00Z"}]})

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    expiresAt: datetime | None = Field(default=None, strict=False)
