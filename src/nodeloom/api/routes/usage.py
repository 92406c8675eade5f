"""Usage (`GET /api/v1/usage`) and pricing (`POST /api/v1/workflows/{id}/estimate`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from nodeloom.api import models as m
from nodeloom.api.deps import BillingDep, ExecutionsDep, ReadScope, UsageDep, UsageScope
from nodeloom.api.openapi import answers
from nodeloom.api.schemas import EstimateBody
from nodeloom.errors import Forbidden

router = APIRouter(prefix="/api/v1", tags=["usage"])


@router.get("/usage", summary="The account's usage, limits and balance",
            responses=answers(200, m.Usage, description="Usage"))
def usage(usage: UsageDep, p: UsageScope, days: int = Query(default=30, ge=1, le=366)) -> dict[str, Any]:
    return usage.usage(p.account_id, days=days)


@router.post("/workflows/{workflow_id}/estimate", summary="Price a run without starting it",
             description="`\"version\": \"draft\"` needs scope `manage`.",
             responses=answers(200, m.Estimate, description="The estimate", errors={
                 404: ["not_found"], 409: ["workflow_not_published"],
                 422: ["invalid_inputs", "invalid_graph", "validation_error"]}))
async def estimate(workflow_id: str, body: EstimateBody, executions: ExecutionsDep, billing: BillingDep,
                   p: ReadScope) -> dict[str, Any]:
    if body.version == "draft" and "manage" not in p.scopes:
        raise Forbidden("pricing the draft needs scope 'manage'")
    sub = await run_in_threadpool(executions.prepare, account_id=p.account_id, workflow_id=workflow_id,
                                  body=body.model_dump(exclude_none=True))
    return await run_in_threadpool(billing.quote, sub.graph, account_id=p.account_id)
