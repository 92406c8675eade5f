"""The three shapes a ComfyUI workflow arrives in, told apart and parsed (API.md "ComfyUI workflows").

- API format: `{"3": {"class_type": "KSampler", "inputs": {...}, "_meta": {"title": ...}}, ...}`
- UI (save) format: litegraph's `{"nodes": [...], "links": [...], ...}`
- a PNG that ComfyUI saved: its `prompt` (API format) and `workflow` (UI format) text chunks

Pure functions: no I/O beyond decoding the bytes they are given. Problems → ValidationFailed (422) with
`details[{path, message}]`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from nodeloom.errors import ValidationFailed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: a saved workflow is small; this bounds what a PNG's text chunks may make us parse
MAX_CHUNK_CHARS = 10 * 1024 * 1024

Shape = Literal["api", "ui"]


@dataclass(frozen=True)
class ParsedWorkflow:
    """What an upload held. `shape` says which of `api` / `ui` is the workflow to import; a PNG may carry both
    (its `prompt` is what ComfyUI ran, its `workflow` the editor's graph: titles and seed controls)."""

    shape: Shape
    api: dict[str, Any] | None
    ui: dict[str, Any] | None
    source: Literal["json", "png"]


def fail(path: str, message: str, *, code: str | None = None) -> ValidationFailed:
    return ValidationFailed(message, [{"path": path, "message": message}], code=code)


def is_api_format(value: Any) -> bool:
    """Every entry is a node `{class_type: str, inputs: {...}}` keyed by its id (and there is one at least)."""
    return (isinstance(value, dict) and bool(value)
            and all(isinstance(node, dict) and isinstance(node.get("class_type"), str)
                    and isinstance(node.get("inputs", {}), dict) for node in value.values()))


def is_ui_format(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("nodes"), list) and (
        isinstance(value.get("links"), list) or "links" not in value)


def detect_shape(value: Any) -> Shape | None:
    if is_ui_format(value):
        return "ui"
    if is_api_format(value):
        return "api"
    return None


def parse_workflow(value: Any, *, path: str = "workflow") -> ParsedWorkflow:
    """A JSON value (already decoded, or a JSON string) → the workflow in the shape it was given."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise fail(path, f"not JSON: {exc}") from None
    shape = detect_shape(value)
    if shape == "ui":
        check_ui(value, path)
        return ParsedWorkflow("ui", None, value, "json")
    if shape == "api":
        check_api(value, path)
        return ParsedWorkflow("api", value, None, "json")
    raise fail(path, _why_not(value))


def parse_png(data: bytes, *, path: str = "file") -> ParsedWorkflow:
    """A PNG that ComfyUI saved → its embedded workflow. The API-format `prompt` chunk is what the server ran
    and is imported as is; without it the UI-format `workflow` chunk is converted."""
    if not data.startswith(PNG_SIGNATURE):
        raise fail(path, "not a PNG image: a ComfyUI image upload must be a PNG that ComfyUI saved")
    try:
        with Image.open(io.BytesIO(data)) as image:
            chunks = dict(getattr(image, "text", None) or image.info)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise fail(path, f"not a readable PNG image: {exc}") from None
    prompt_text, workflow_text = chunks.get("prompt"), chunks.get("workflow")
    if not isinstance(prompt_text, str) and not isinstance(workflow_text, str):
        raise fail(path, "this PNG carries no ComfyUI workflow (no 'prompt' or 'workflow' text chunk); "
                         "save the image with ComfyUI's SaveImage node, or upload the workflow's JSON")
    api = _chunk_json(prompt_text, f"{path}.prompt") if isinstance(prompt_text, str) else None
    ui = _chunk_json(workflow_text, f"{path}.workflow") if isinstance(workflow_text, str) else None
    if api is not None:
        if not is_api_format(api):
            raise fail(f"{path}.prompt", "the PNG's 'prompt' chunk is not a ComfyUI API-format workflow")
        check_api(api, f"{path}.prompt")
    if ui is not None and not is_ui_format(ui):
        if api is None:
            raise fail(f"{path}.workflow", "the PNG's 'workflow' chunk is not a ComfyUI UI-format workflow")
        ui = None  # the prompt is enough; a damaged editor graph only loses titles and seed controls
    if api is not None:
        return ParsedWorkflow("api", api, ui, "png")
    assert ui is not None
    check_ui(ui, f"{path}.workflow")
    return ParsedWorkflow("ui", None, ui, "png")


def parse_upload(value: Any = None, *, data: bytes | None = None) -> ParsedWorkflow:
    """One entry point for an import request: a JSON `workflow` value, or the bytes of an uploaded `file`
    (a PNG, or a JSON file in either shape)."""
    if data is not None:
        if data.startswith(PNG_SIGNATURE):
            return parse_png(data)
        text = data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
        if text in (b"{", b"["):
            try:
                decoded = json.loads(data.decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise fail("file", f"not JSON: {exc}") from None
            return parse_workflow(decoded, path="file")
        raise fail("file", "not a PNG image or a JSON workflow: upload a PNG that ComfyUI saved or the "
                           "workflow's JSON (API or UI format)")
    if value is None:
        raise fail("workflow", "give the workflow (JSON) or upload a file")
    return parse_workflow(value)


def _chunk_json(text: str, path: str) -> Any:
    if len(text) > MAX_CHUNK_CHARS:
        raise fail(path, f"the chunk is too large ({len(text)} characters)")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise fail(path, f"the chunk is not JSON: {exc}") from None


def _why_not(value: Any) -> str:
    if not isinstance(value, dict):
        return ("a ComfyUI workflow is a JSON object: the API format {\"3\": {\"class_type\", \"inputs\"}} or the "
                "UI format {\"nodes\": [...], \"links\": [...]}")
    if not value:
        return "the workflow is empty"
    if "nodes" in value:
        return "'nodes' must be an array (UI format) and 'links' an array"
    for key, node in value.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            return (f"entry '{key}' is not a ComfyUI node ({{\"class_type\": str, \"inputs\": {{}}}}); expected the "
                    "API format (ComfyUI's 'Export (API)') or the UI format (its 'Save')")
        if not isinstance(node.get("inputs", {}), dict):
            return f"entry '{key}': inputs must be an object"
    return "not a ComfyUI workflow"


def check_api(prompt: dict[str, Any], path: str = "workflow") -> None:
    """Structural checks of an API-format prompt: ids, inputs, and links `[node_id, output_index]` that name a
    node of the prompt. Node types and values are checked against /object_info later."""
    errors: list[dict[str, str]] = []
    for nid, node in prompt.items():
        if not isinstance(nid, str) or not nid or len(nid) > 64:
            errors.append({"path": f"{path}.{nid}", "message": "a node id is a non-empty string of at most 64 characters"})
            continue
        inputs = node.get("inputs", {})
        for name, value in inputs.items():
            if is_api_link(value):
                if str(value[0]) not in prompt:
                    errors.append({"path": f"{path}.{nid}.inputs.{name}",
                                   "message": f"links to node '{value[0]}', which is not in the workflow"})
                elif str(value[0]) == nid:
                    errors.append({"path": f"{path}.{nid}.inputs.{name}", "message": "a node cannot link to itself"})
            elif isinstance(value, list):
                errors.append({"path": f"{path}.{nid}.inputs.{name}",
                               "message": "a list is a link [node_id, output_index]; wrap a list value as "
                                          "{\"__value__\": [...]}"})
    if errors:
        raise ValidationFailed(f"the ComfyUI workflow is malformed: {errors[0]['message']}", errors)


def is_api_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def check_ui(workflow: dict[str, Any], path: str = "workflow") -> None:
    errors: list[dict[str, str]] = []
    for i, node in enumerate(workflow["nodes"]):
        if not isinstance(node, dict) or "id" not in node or not isinstance(node.get("type"), str):
            errors.append({"path": f"{path}.nodes[{i}]", "message": "a node is an object with an id and a type"})
    for i, link in enumerate(workflow.get("links") or []):
        if isinstance(link, list):
            if len(link) < 5:
                errors.append({"path": f"{path}.links[{i}]",
                               "message": "a link is [id, from_node, from_slot, to_node, to_slot, type]"})
        elif not isinstance(link, dict) or not {"id", "origin_id", "origin_slot", "target_id", "target_slot"} <= set(link):
            errors.append({"path": f"{path}.links[{i}]",
                           "message": "a link is [id, from_node, from_slot, to_node, to_slot, type]"})
    if errors:
        raise ValidationFailed(f"the ComfyUI workflow is malformed: {errors[0]['message']}", errors)
