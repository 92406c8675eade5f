"""API keys (manage scope) and the account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from nodeloom.api import models as m
from nodeloom.api.deps import AccountsDep, ManageScope
from nodeloom.api.openapi import answers
from nodeloom.api.schemas import KeyCreate
from nodeloom.clock import iso

router = APIRouter(prefix="/api/v1", tags=["keys", "account"])


@router.post("/keys", status_code=201, summary="Create an API key (the key is shown once)",
             description="Ignores `Idempotency-Key`: the answer holds a secret.",
             responses=answers(201, m.CreatedKey, description="Created", errors={422: ["validation_error"]}))
def create_key(body: KeyCreate, accounts: AccountsDep, p: ManageScope) -> dict[str, Any]:
    row, token = accounts.create_key(account_id=p.account_id, name=body.name, scopes=body.scopes,
                                        expires_at=body.expiresAt)
    return {"id": row.id, "name": row.name, "key": token, "prefix": row.prefix, "scopes": list(row.scopes),
            "createdAt": iso(row.created_at), "expiresAt": iso(row.expires_at)}


@router.get("/keys", summary="List API keys", responses=answers(200, m.ApiKeyList, description="The live keys"))
def list_keys(accounts: AccountsDep, p: ManageScope) -> dict[str, Any]:
    return {"data": accounts.list_keys(p.account_id)}


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke an API key",
               responses=answers(204, description="Revoked", errors={404: ["not_found"]}))
def revoke_key(key_id: str, accounts: AccountsDep, p: ManageScope) -> Response:
    accounts.revoke_key(account_id=p.account_id, key_id=key_id)
    return Response(status_code=204)


@router.get("/account", summary="Get the account", responses=answers(200, m.Account, description="The account"))
def get_account(accounts: AccountsDep, p: ManageScope) -> dict[str, Any]:
    return accounts.account_public(p.account_id)


@router.post("/account/webhook-secret/rotate", summary="Issue a new webhook secret",
             description="The previous secret also signs for 24 hours.",
             responses=answers(200, m.Account, description="The account, with its new secret"))
def rotate_webhook_secret(accounts: AccountsDep, p: ManageScope) -> dict[str, Any]:
    return accounts.rotate_webhook_secret(p.account_id)
