"""The node catalogue, and operations endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from nodeloom.api import models as m
from nodeloom.api.deps import CatalogueDep, MetricsDep, ReadinessDep, ReadScope
from nodeloom.api.openapi import answers
from nodeloom.errors import NotFound

router = APIRouter(tags=["nodes"])


@router.get("/api/v1/nodes", summary="The node catalogue",
            responses=answers(200, m.NodeList, description="Every node type"))
def list_nodes(catalogue: CatalogueDep, p: ReadScope) -> dict[str, Any]:
    return {"data": catalogue.catalogue()}


@router.get("/api/v1/nodes/{node_type}", summary="One node type",
            responses=answers(200, m.NodeSpec, description="The node type", errors={404: ["not_found"]}))
def get_node(node_type: str, catalogue: CatalogueDep, p: ReadScope) -> dict[str, Any]:
    t = catalogue.get(node_type)
    if t is None:
        raise NotFound(f"unknown node type '{node_type}'")
    return t.spec(unavailable_reason=catalogue.unavailable_reason(node_type))


@router.get("/healthz", tags=["operations"], summary="The process is up",
            responses=answers(200, m.Health, description="Up"))
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", tags=["operations"], include_in_schema=False)
def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/readyz", tags=["operations"], summary="Database, queue and storage are reachable",
            responses={**answers(200, m.Readiness, description="Ready"),
                       503: {"model": m.Readiness, "description": "Not ready: `checks` says what is not"}})
def readyz(readiness: ReadinessDep) -> JSONResponse:
    checks = readiness.check()
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
