"""An account's own vendor keys (manage scope): stored encrypted, listed without their value."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from nodeloom.api import models as m
from nodeloom.api.deps import ManageScope, ProviderKeysDep
from nodeloom.api.openapi import answers
from nodeloom.api.schemas import Body

router = APIRouter(prefix="/api/v1/account/providers", tags=["account"])


class ProviderKeyPut(Body):
    apiKey: str = Field(min_length=1, max_length=1024)


@router.get("", summary="Which vendor keys the account has set",
            responses=answers(200, m.ProviderKeyList, description="The account's vendor keys (never their values)"))
async def list_provider_keys(provider_keys: ProviderKeysDep, p: ManageScope) -> dict[str, Any]:
    return {"data": await run_in_threadpool(provider_keys.list, p.account_id)}


@router.put("/{provider}", summary="Set the account's own key for a vendor (fal, replicate, openai, gemini)",
            responses=answers(200, m.ProviderKey, description="Stored, encrypted", errors={
                404: ["not_found"], 422: ["validation_error"]}))
async def put_provider_key(provider: str, body: ProviderKeyPut, provider_keys: ProviderKeysDep, p: ManageScope) -> dict[str, Any]:
    return await run_in_threadpool(provider_keys.put, account_id=p.account_id, provider=provider,
                                   api_key=body.apiKey)


@router.delete("/{provider}", status_code=204, summary="Remove the account's key for a vendor",
               responses=answers(204, description="Removed", errors={404: ["not_found"]}))
async def delete_provider_key(provider: str, provider_keys: ProviderKeysDep, p: ManageScope) -> Response:
    await run_in_threadpool(provider_keys.delete, account_id=p.account_id, provider=provider)
    return Response(status_code=204)
