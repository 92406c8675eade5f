"""The node catalogue, and operations endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from nodeloom.api.deps import ReadScope, RuntimeDep
from nodeloom.errors import NotFound

router = APIRouter(tags=["nodes"])


@router.get("/api/v1/nodes")
def list_nodes(rt: RuntimeDep, p: ReadScope) -> dict[str, Any]:
    return {"data": rt.registry.catalogue()}


@router.get("/api/v1/nodes/{node_type}")
def get_node(node_type: str, rt: RuntimeDep, p: ReadScope) -> dict[str, Any]:
    t = rt.registry.get(node_type)
    if t is None:
        raise NotFound(f"unknown node type '{node_type}'")
    return t.spec(unavailable_reason=rt.registry.unavailable_reason(node_type))


@router.get("/healthz", tags=["operations"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", tags=["operations"], include_in_schema=False)
def metrics(rt: RuntimeDep) -> Response:
    return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/readyz", tags=["operations"])
def readyz(rt: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with rt.db.read() as s:
            s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports, never raises
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        rt.queue.depth()
        checks["queue"] = "ok"
    except Exception as exc:
        checks["queue"] = f"error: {type(exc).__name__}"
    broker_check = getattr(rt.queue, "check", None)
    if broker_check is not None:
        try:
            broker_check()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"error: {type(exc).__name__}"
    try:
        rt.blobs.check()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
