"""API keys (manage scope) and the account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from nodeloom.api.deps import AccountsDep, ManageScope
from nodeloom.api.schemas import KeyCreate
from nodeloom.clock import iso

router = APIRouter(prefix="/api/v1", tags=["keys", "account"])


@router.post("/keys", status_code=201)
def create_key(body: KeyCreate, accounts: AccountsDep, p: ManageScope) -> dict[str, Any]:
    row, token = accounts.create_key(account_id=p.account_id, name=body.name, scopes=body.scopes,
                                        expires_at=body.expiresAt)
    return {"id": row.id, "name": row.name, "key": token, "prefix": row.prefix, "scopes": list(row.scopes),
            "createdAt": iso(row.created_at), "expiresAt": iso(row.expires_at)}


@router.get("/keys")
def list_keys(accounts: AccountsDep, p: ManageScope) -> dict[str, Any]:
    return {"data": accounts.list_keys(p.account_id)}


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(key_id: str, accounts: AccountsDep, p: ManageScope) -> Response:
    accounts.revoke_key(account_id=p.account_id, key_id=key_id)
    return Response(status_code=204)


@router.get("/account")
def get_account(accounts: AccountsDep, p: ManageScope) -> dict[str, Any]:
    return accounts.account_public(p.account_id)


@router.post("/account/webhook-secret/rotate")
def rotate_webhook_secret(accounts: AccountsDep, p: ManageScope) -> dict[str, Any]:
    return accounts.rotate_webhook_secret(p.account_id)
