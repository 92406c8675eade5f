"""The OpenAPI document (`/openapi.json`) as the contract (docs/api.md "OpenAPI").

Routes declare what is particular to them with `answers(...)`: the success status and its model, and the error
codes only they answer. `install(app)` replaces `app.openapi` with `document(app)`, which builds FastAPI's
document and adds what every operation shares, derived from the routes themselves:

- the bearer `sk-` scheme (and the dashboard's session cookie), with the scope each operation needs — read
  from the `require(scope)` dependency it has — as the security requirement and in its description;
- the errors every operation can answer (401/403 where it needs a key, 400/413 where it takes a body, 409/422
  for `Idempotency-Key` on POSTs, 422 for parameters, 429, 500), all in our envelope (`ErrorEnvelope`), with
  their codes listed; FastAPI's `HTTPValidationError` is never published;
- the `Idempotency-Key` request header, and the `X-Request-Id`, `X-RateLimit-*` (and on 429 `Retry-After`)
  response headers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from nodeloom.api.deps import scope_of
from nodeloom.api.models import ErrorEnvelope, ExecutionEvent
from nodeloom.api.sessions import COOKIE

REF = "#/components/schemas/"
#: the extension on a response that lists its error codes (folded into its description, then removed)
CODES = "x-error-codes"
SCOPES_ALLOW = {
    "execute": "run published workflows, cancel runs, upload files",
    "read": "read workflows, versions, executions, events, nodes, deliveries; validate and estimate",
    "usage": "read the account's usage",
    "manage": "change workflows and their webhooks, run drafts, manage API keys and the account",
}
STATUS_TEXT = {400: "Bad request", 401: "Unauthorized", 402: "Insufficient credits", 403: "Forbidden",
               404: "Not found", 409: "Conflict", 413: "Payload too large", 422: "Validation failed",
               429: "Too many requests", 500: "Internal error", 503: "Unavailable"}


def answers(status: int, model: type[BaseModel] | None = None, *, description: str,
            errors: Mapping[int, Sequence[str]] | None = None,
            content: Mapping[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: its success answer (`model` as JSON, or `content` as given) and the error codes
    particular to it (the shared ones are added by `document`)."""
    ok: dict[str, Any] = {"description": description}
    if model is not None:
        ok["model"] = model
    if content is not None:
        ok["content"] = dict(content)
    out: dict[int | str, dict[str, Any]] = {status: ok}
    for code, names in (errors or {}).items():
        out[code] = {"model": ErrorEnvelope, "description": STATUS_TEXT.get(code, "Error"), CODES: list(names)}
    return out


def comfy_import_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of the ComfyUI import routes, which read their body themselves: JSON (`model`), or
    multipart with the export as `file` and the other fields as text (`inputs`, `outputs` as JSON text)."""
    schema = model.model_json_schema()
    fields = {name: {"type": "string"} for name in schema.get("properties", {}) if name != "workflow"}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema, "example": {
            "name": "Invert", "workflow": {"1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}}}}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "the export: JSON (API or UI format) or a PNG ComfyUI saved"},
                           **fields}}}}}}


def upload_body() -> dict[str, Any]:
    """`openapi_extra` of `POST /uploads`, which reads its multipart body itself."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "image, video, audio, text, JSON, PDF or octet-stream"}}}}}}}


def _header(description: str, schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


HEADERS = {
    "X-Request-Id": _header("identifies the request in the server's logs (an incoming `X-Request-Id` of up to 128 "
                            "printable characters is kept)", {"type": "string"}),
    "X-RateLimit-Limit": _header("requests allowed per window (the request-rate limit)", {"type": "integer"}),
    "X-RateLimit-Remaining": _header("requests left in the current window", {"type": "integer", "minimum": 0}),
    "X-RateLimit-Reset": _header("unix time (seconds) at which the window resets", {"type": "integer"}),
    "Retry-After": _header("seconds to wait before retrying", {"type": "integer", "minimum": 0}),
}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "1–255 printable ASCII characters. Within 24 hours, the same key from the same account on the "
                   "same endpoint with the same body replays the first answer byte for byte "
                   "(`Idempotent-Replayed: true`) and creates nothing; a different body → 422 "
                   "`idempotency_key_reused`; a duplicate still in progress → 409 `idempotency_key_in_use`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    "example": "order-1234-render",
}

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "sk-…",
                   "description": "`Authorization: Bearer sk-…`: an API key. Its scopes (`execute`, `read`, `usage`, "
                                  "`manage`) decide what it may call; each operation names the scope it needs. A "
                                  "missing, malformed, unknown, revoked or expired key → 401 `unauthorized`; a key "
                                  "without the scope → 403 `forbidden`."},
    "dashboardSession": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                         "description": "A dashboard sign-in (`POST /api/v1/auth/login`), with every scope of its "
                                        "account; its writes also need the `X-CSRF-Token` header (403 `csrf_failed`)."},
}


def _mints_secret(path: str) -> bool:
    """The POSTs that ignore `Idempotency-Key` (api/idempotency.py: their answers hold secrets)."""
    return path.rstrip("/") == "/api/v1/keys" or path.endswith("/rotate") or path.startswith("/api/v1/auth/")


def _schema_of(model: type[BaseModel], doc: dict[str, Any]) -> None:
    """Put `model` (and what it refers to) in the document's components, where it is not already."""
    schema = model.model_json_schema(ref_template=REF + "{model}")
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, sub in schema.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas.setdefault(model.__name__, schema)


def _add_codes(response: dict[str, Any], codes: Iterable[str]) -> None:
    have = response.setdefault(CODES, [])
    for code in codes:
        if code not in have:
            have.append(code)


def _error(responses: dict[str, Any], status: int, *codes: str) -> None:
    response = responses.setdefault(str(status), {"description": STATUS_TEXT.get(status, "Error")})
    content = response.setdefault("content", {}).setdefault("application/json", {})
    content["schema"] = {"$ref": REF + "ErrorEnvelope"}
    _add_codes(response, codes)


def _clean(schema: Any) -> Any:
    """FastAPI merges a `responses` model into the route's inferred `dict` schema: keep only the `$ref`."""
    if isinstance(schema, dict) and "$ref" in schema:
        return {"$ref": schema["$ref"]}
    return schema


def _operation(op: dict[str, Any], *, path: str, method: str, scope: str | None) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    has_body = "requestBody" in op
    params = op.get("parameters", [])
    if scope is not None:
        op["security"] = [{"bearerAuth": [scope]}, {"dashboardSession": [scope]}]
        note = f"**Scope:** `{scope}` ({SCOPES_ALLOW[scope]})."
        op["description"] = f"{note}\n\n{op['description']}" if op.get("description") else note
        _error(responses, 401, "unauthorized")
        _error(responses, 403, "forbidden", *(["csrf_failed"] if method != "get" else []))
    elif "security" not in op:
        op["security"] = []  # anonymous (triggers, sign-in, operations)
    if has_body:
        body_types = op["requestBody"].get("content", {})
        if "application/json" in body_types:
            _error(responses, 400, "invalid_json")
        _error(responses, 413, "payload_too_large")
    if method == "post" and path.startswith("/api/") and not _mints_secret(path):
        if not any(p.get("name") == "Idempotency-Key" for p in params):
            op["parameters"] = params = [*params, copy.deepcopy(IDEMPOTENCY_KEY)]
        _error(responses, 409, "idempotency_key_in_use")
        _error(responses, 422, "idempotency_key_reused", "validation_error")
    if params or has_body:
        _error(responses, 422, "validation_error")
    if path.startswith("/api/"):
        _error(responses, 429, "rate_limited")
    _error(responses, 500, "internal_error")
    for status, response in responses.items():
        for media in response.get("content", {}).values():
            if "schema" in media:
                media["schema"] = _clean(media["schema"])
        headers = response.setdefault("headers", {})
        for name in ("X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            headers.setdefault(name, {"$ref": f"#/components/headers/{name}"})
        if status == "429":
            headers.setdefault("Retry-After", {"$ref": "#/components/headers/Retry-After"})
        codes = response.pop(CODES, None)
        if codes:
            listed = ", ".join(f"`{c}`" for c in codes)
            base = response.get("description") or "Error"
            response["description"] = f"{base}. Error codes: {listed}."
    op["responses"] = dict(sorted(responses.items()))


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, with what every operation shares (module docstring); built once."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                      description=app.description, routes=app.routes, tags=app.openapi_tags, servers=app.servers)
    scopes: dict[tuple[str, str], str | None] = {}
    for route in iter_route_contexts(app.routes):  # included routers' routes too, with their full paths
        if isinstance(route.original_route, APIRoute):
            api_route = cast(APIRoute, route)  # a context of an APIRoute answers as one (as get_openapi reads it)
            if api_route.include_in_schema:
                scope = scope_of(api_route.dependant)
                for method in api_route.methods or ():
                    scopes[(api_route.path_format, method.lower())] = scope
    _schema_of(ErrorEnvelope, doc)
    _schema_of(ExecutionEvent, doc)
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if isinstance(op, dict) and method in ("get", "put", "post", "delete", "patch", "head", "options"):
                _operation(op, path=path, method=method, scope=scopes.get((path, method)))
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = SECURITY_SCHEMES
    components["headers"] = HEADERS
    app.openapi_schema = doc
    return doc


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        return document(app)

    app.openapi = openapi  # type: ignore[method-assign]
