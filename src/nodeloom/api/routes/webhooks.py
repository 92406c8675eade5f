"""Webhooks: unauthenticated triggers, a workflow's webhook settings, and the callback delivery log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field

from nodeloom.api import models as m
from nodeloom.api.deps import DeliveriesDep, IdempotencyDep, ManageScope, ReadScope, TriggersDep, base_url
from nodeloom.api.openapi import answers
from nodeloom.api.schemas import Body, unique
from nodeloom.services.idempotency import IdempotencyService
from nodeloom.services.triggers import TriggerService

router = APIRouter(prefix="/api/v1", tags=["webhooks"])

CallbackEvent = Literal["started", "node.completed", "completed", "failed", "cancelled"]


class WebhookSettingsUpdate(Body):
    enabled: bool | None = None
    triggerSecret: str | None = Field(default=None, min_length=1, max_length=200)
    callbackUrl: str | None = Field(default=None, min_length=1, max_length=2048)
    callbackEvents: Annotated[list[CallbackEvent] | None, AfterValidator(unique)] = None


# triggers: no credentials; the webhookId is the capability ------------------------------------------
TRIGGER_ERRORS = {400: ["invalid_json"], 401: ["invalid_webhook_signature", "webhook_replayed"],
                  402: ["insufficient_credits"], 404: ["not_found"], 409: ["workflow_not_published"],
                  422: ["invalid_inputs", "validation_error"],
                  429: ["rate_limited", "execution_rate_limited", "daily_quota_exceeded"]}
TRIGGER_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "additionalProperties": True, "description": "the inputs object itself"},
    "example": {"prompt": "from a form"}}}}}
TRIGGER_DESCRIPTION = ("Needs no key: the webhook id is the capability. With a trigger secret set, the request must "
                       "be signed like a callback (`webhook-id`, `webhook-timestamp`, `webhook-signature`). A 402 "
                       "carries no balance or breakdown.")


async def _trigger(webhook_id: str, request: Request, triggers: TriggerService,
                   idempotency: IdempotencyService) -> JSONResponse:
    body = await request.body()
    claim = getattr(request.state, "idempotency", None)  # an Idempotency-Key: its answer commits with the run
    answer = idempotency.store_json(claim, 202) if claim else None
    accepted = await run_in_threadpool(triggers.trigger, webhook_id=webhook_id, headers=request.headers,
                                       body=body, answer=answer, origin=base_url(request))
    return JSONResponse(accepted, status_code=202)


@router.post("/webhooks/{webhook_id}", status_code=202, summary="Trigger a run (no credentials)",
             description=TRIGGER_DESCRIPTION, responses=answers(202, m.Accepted, description="Queued", errors=TRIGGER_ERRORS),
             openapi_extra=TRIGGER_BODY)
async def trigger(webhook_id: str, request: Request, triggers: TriggersDep,
                  idempotency: IdempotencyDep) -> JSONResponse:
    return await _trigger(webhook_id, request, triggers, idempotency)


@router.post("/workflow/{webhook_id}/trigger", status_code=202, summary="Trigger a run (alias)",
             description=TRIGGER_DESCRIPTION, responses=answers(202, m.Accepted, description="Queued", errors=TRIGGER_ERRORS),
             openapi_extra=TRIGGER_BODY)
async def trigger_alias(webhook_id: str, request: Request, triggers: TriggersDep,
                        idempotency: IdempotencyDep) -> JSONResponse:
    return await _trigger(webhook_id, request, triggers, idempotency)


# a workflow's webhook settings -----------------------------------------------------------------------
@router.get("/workflows/{workflow_id}/webhook", summary="A workflow's webhook settings",
            responses=answers(200, m.WebhookSettings, description="The settings", errors={404: ["not_found"]}))
def get_webhook_settings(workflow_id: str, triggers: TriggersDep, p: ReadScope) -> dict[str, Any]:
    return triggers.get_settings(account_id=p.account_id, workflow_id=workflow_id)


@router.patch("/workflows/{workflow_id}/webhook", summary="Change a workflow's webhook settings",
              responses=answers(200, m.WebhookSettings, description="The settings", errors={
                  404: ["not_found"], 422: ["invalid_webhook_url", "validation_error"]}))
def update_webhook_settings(workflow_id: str, body: WebhookSettingsUpdate, triggers: TriggersDep,
                            p: ManageScope) -> dict[str, Any]:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return triggers.update_settings(account_id=p.account_id, workflow_id=workflow_id, changes=changes)


@router.post("/workflows/{workflow_id}/webhook/rotate", summary="Issue a new webhook id (the old one stops)",
             responses=answers(200, m.WebhookSettings, description="The settings", errors={404: ["not_found"]}))
def rotate_webhook_id(workflow_id: str, triggers: TriggersDep, p: ManageScope) -> dict[str, Any]:
    return triggers.rotate(account_id=p.account_id, workflow_id=workflow_id)


# the callback delivery log ---------------------------------------------------------------------------
@router.get("/webhook-deliveries", summary="List callback deliveries", description="Newest first.",
            responses=answers(200, m.DeliveryPage, description="A page of deliveries", errors={
                404: ["not_found"]}))
def list_deliveries(deliveries: DeliveriesDep, p: ReadScope, executionId: str | None = None,
                    limit: int = Query(default=50, ge=1, le=100),
                    cursor: str | None = None) -> dict[str, Any]:
    return deliveries.list(account_id=p.account_id, execution_id=executionId, limit=limit, cursor=cursor)


@router.get("/webhook-deliveries/{delivery_id}", summary="One callback delivery and its attempts",
            responses=answers(200, m.Delivery, description="The delivery", errors={404: ["not_found"]}))
def get_delivery(delivery_id: str, deliveries: DeliveriesDep, p: ReadScope) -> dict[str, Any]:
    return deliveries.get(account_id=p.account_id, delivery_id=delivery_id)


@router.post("/webhook-deliveries/{delivery_id}/redeliver", status_code=202, summary="Send a callback again",
             responses=answers(202, m.Delivery, description="Queued for sending", errors={
                 404: ["not_found"], 409: ["delivery_in_progress"]}))
def redeliver(delivery_id: str, deliveries: DeliveriesDep, p: ManageScope) -> dict[str, Any]:
    return deliveries.redeliver(account_id=p.account_id, delivery_id=delivery_id)
