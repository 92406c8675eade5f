"""Every error leaves in the envelope {"error": {"code", "message", ...}} — never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from nodeloom.errors import ApiError

log = logging.getLogger("nodeloom.api")

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
              415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
              500: "internal_error", 503: "unavailable"}


def envelope(status: int, code: str, message: str, headers: dict[str, str] | None = None,
             **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


def _path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


#: the methods a 405's `Allow` may name (each one probed against the routes)
PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path — a 405's `Allow` names them all, not only the
    first matching route's. Each method is probed with the routes' own matching (included routers too)."""
    base = {"type": "http", "path": request.scope.get("path", ""), "root_path": request.scope.get("root_path", ""),
            "headers": [], "query_string": b""}
    allowed = []
    for method in PROBED_METHODS:
        probe = {**base, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                return envelope(400, "invalid_json", "the request body is not valid JSON")
            details.append({"path": _path(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))})
        return envelope(422, "validation_error", "the request is invalid", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        fallback = getattr(request.app.state, "spa_fallback", None)
        if exc.status_code == 404 and request.method == "GET" and fallback is not None:
            served = fallback(request.url.path.lstrip("/"))
            if served is not None:
                return served
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = "no such resource"
        if exc.status_code == 400 and message == "There was an error parsing the body":  # FastAPI's, e.g. too deep
            return envelope(400, "invalid_json", "the request body could not be parsed (malformed, or JSON nested "
                            "too deeply)")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return envelope(exc.status_code, code, message, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope(500, "internal_error", "something went wrong on our side; the request id identifies it")
