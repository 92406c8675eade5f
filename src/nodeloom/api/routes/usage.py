"""Usage (`GET /api/v1/usage`) and pricing (`POST /api/v1/workflows/{id}/estimate`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from nodeloom.api.deps import BillingDep, ExecutionsDep, ReadScope, UsageDep, UsageScope
from nodeloom.api.schemas import EstimateBody
from nodeloom.errors import Forbidden

router = APIRouter(prefix="/api/v1", tags=["usage"])


@router.get("/usage")
def usage(usage: UsageDep, p: UsageScope, days: int = Query(default=30, ge=1, le=366)) -> dict[str, Any]:
    return usage.usage(p.account_id, days=days)


@router.post("/workflows/{workflow_id}/estimate")
async def estimate(workflow_id: str, body: EstimateBody, executions: ExecutionsDep, billing: BillingDep,
                   p: ReadScope) -> dict[str, Any]:
    if body.version == "draft" and "manage" not in p.scopes:
        raise Forbidden("pricing the draft needs scope 'manage'")
    sub = await run_in_threadpool(executions.prepare, account_id=p.account_id, workflow_id=workflow_id,
                                  body=body.model_dump(exclude_none=True))
    return await run_in_threadpool(billing.quote, sub.graph, account_id=p.account_id)
