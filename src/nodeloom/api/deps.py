"""Dependencies as Annotated aliases, so a handler's signature reads like a sentence."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from nodeloom.errors import Forbidden, Unauthorized
from nodeloom.services.accounts import Principal
from nodeloom.worker import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def authenticate(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    runtime: Runtime = request.app.state.runtime
    session_auth = getattr(request.app.state, "session_auth", None)
    header = request.headers.get("authorization")
    if header is None and session_auth is not None:
        principal = session_auth(request)
        if principal is not None:
            request.state.principal = principal
            return principal
    if not header:
        raise Unauthorized("missing 'Authorization: Bearer sk-...' header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer sk-...'")
    principal = runtime.accounts.authenticate(token.strip())
    request.state.principal = principal
    return principal


def require(scope: str) -> Any:
    def check(request: Request) -> Principal:
        principal = authenticate(request)
        if scope not in principal.scopes:
            raise Forbidden(f"this API key needs scope '{scope}'")
        return principal

    return Depends(check)


ExecuteScope = Annotated[Principal, require("execute")]
ReadScope = Annotated[Principal, require("read")]
UsageScope = Annotated[Principal, require("usage")]
ManageScope = Annotated[Principal, require("manage")]


def base_url(request: Request) -> str:
    runtime: Runtime = request.app.state.runtime
    if runtime.settings.public_url:
        return runtime.settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


BaseUrl = Annotated[str, Depends(base_url)]
