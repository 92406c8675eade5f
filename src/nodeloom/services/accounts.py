"""Accounts and API keys. Keys are stored as HMAC-SHA256 digests under the server secret."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from nodeloom.clock import Clock, iso
from nodeloom.errors import NotFound, Unauthorized, ValidationFailed
from nodeloom.services.ids import new_id
from nodeloom.storage.db import Database
from nodeloom.storage.models import Account, ApiKey
from nodeloom.storage.models_platform import CreditEntry
from nodeloom.types import ALL_SCOPES
from nodeloom.webhooks import generate_secret

KEY_RE = re.compile(r"^sk-[A-Za-z0-9_-]{20,200}$")
PLANS = ("free", "starter", "pro", "enterprise")


@dataclass(frozen=True)
class Principal:
    account_id: str
    scopes: frozenset[str]
    key_id: str | None = None
    user_id: str | None = None


class AccountService:
    def __init__(self, db: Database, *, secret_key: str, clock: Clock, cache_seconds: float = 0.0):
        self.db = db
        self.clock = clock
        self._hmac_key = hashlib.sha256(b"nodeloom-api-keys\0" + secret_key.encode()).digest()
        self._last_used: dict[str, float] = {}
        #: digest → (principal, remembered until (clock seconds), the key's expiry): verified keys, so that a client's
        #: poll loop does not read the key's row on every request (NODELOOM_AUTH_CACHE_SECONDS; 0: never)
        self._cache_seconds = cache_seconds
        self._verified: dict[str, tuple[Principal, float, datetime | None]] = {}

    def digest(self, key: str) -> str:
        return hmac.new(self._hmac_key, key.encode(), hashlib.sha256).hexdigest()

    # accounts -----------------------------------------------------------------------------------
    def create_account(self, *, name: str, plan: str = "free", credits: float = 0) -> Account:
        if plan not in PLANS:
            raise ValidationFailed(f"unknown plan '{plan}'", [{"path": "plan", "message": f"one of {PLANS}"}])
        account = Account(id=new_id("acct"), name=name, plan=plan, credits=Decimal(str(credits)),
                          webhook_secret=generate_secret(), limits={}, created_at=self.clock.now())
        with self.db.write() as s:
            s.add(account)
            if account.credits > 0:  # the opening balance is a grant like any other, so the ledger adds up
                s.flush()
                s.add(CreditEntry(account_id=account.id, kind="grant", amount=account.credits,
                                  note="initial credits", created_at=account.created_at))
        return account

    def get_account(self, account_id: str) -> Account:
        with self.db.read() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise NotFound("account not found")
            return account

    def account_public(self, account_id: str) -> dict[str, Any]:
        a = self.get_account(account_id)
        return {"id": a.id, "name": a.name, "plan": a.plan, "credits": float(a.credits),
                "webhookSecret": a.webhook_secret, "createdAt": iso(a.created_at)}

    def rotate_webhook_secret(self, account_id: str, *, overlap: timedelta = timedelta(hours=24)) -> dict[str, Any]:
        with self.db.write() as s:
            a = s.get(Account, account_id)
            if a is None:
                raise NotFound("account not found")
            a.previous_webhook_secret = a.webhook_secret
            a.previous_secret_expires_at = self.clock.now() + overlap
            a.webhook_secret = generate_secret()
        return self.account_public(account_id)

    # keys ---------------------------------------------------------------------------------------
    def create_key(self, *, account_id: str, name: str, scopes: list[str],
                   expires_at: datetime | None = None) -> tuple[ApiKey, str]:
        bad = [s for s in scopes if s not in ALL_SCOPES]
        if bad or not scopes:
            raise ValidationFailed("invalid scopes", [{"path": "scopes",
                                                       "message": f"scopes must be a non-empty subset of {list(ALL_SCOPES)}"}])
        if expires_at is not None and _aware(expires_at) <= self.clock.now():
            raise ValidationFailed("expiresAt must be in the future",
                                   [{"path": "expiresAt", "message": "a key cannot be created already expired"}])
        token = "sk-" + secrets.token_urlsafe(32)
        row = ApiKey(id=new_id("key"), account_id=account_id, name=name, prefix=token[:11],
                     digest=self.digest(token), scopes=sorted(set(scopes), key=ALL_SCOPES.index),
                     created_at=self.clock.now(), expires_at=expires_at)
        with self.db.write() as s:
            if s.get(Account, account_id) is None:
                raise NotFound("account not found")
            s.add(row)
        return row, token

    @staticmethod
    def key_public(k: ApiKey) -> dict[str, Any]:
        return {"id": k.id, "name": k.name, "prefix": k.prefix, "scopes": list(k.scopes),
                "createdAt": iso(k.created_at), "lastUsedAt": iso(k.last_used_at), "expiresAt": iso(k.expires_at)}

    def list_keys(self, account_id: str) -> list[dict[str, Any]]:
        with self.db.read() as s:
            rows = s.scalars(select(ApiKey).where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
                             .order_by(ApiKey.created_at.desc())).all()
            return [self.key_public(k) for k in rows]

    def revoke_key(self, *, account_id: str, key_id: str) -> None:
        with self.db.write() as s:
            k = s.get(ApiKey, key_id)
            if k is None or k.account_id != account_id or k.revoked_at is not None:
                raise NotFound("API key not found")
            k.revoked_at = self.clock.now()
        self.forget_key(key_id)

    def forget_key(self, key_id: str) -> None:
        """Drop what this process remembers of a key (it was revoked)."""
        for digest, (principal, _until, _expires) in list(self._verified.items()):
            if principal.key_id == key_id:
                self._verified.pop(digest, None)

    def cached(self, token: str) -> Principal | None:
        """The principal of a key this process verified within NODELOOM_AUTH_CACHE_SECONDS (and that has not
        expired since), else None — no I/O: the request path asks here first, on the event loop."""
        if not self._verified or not KEY_RE.match(token):
            return None
        hit = self._verified.get(self.digest(token))
        if hit is None:
            return None
        principal, until, expires = hit
        now = self.clock.time()
        if now >= until or (expires is not None and _aware(expires).timestamp() <= now):
            return None
        if now - self._last_used.get(principal.key_id or "", 0) >= 60:
            return None  # lastUsedAt is due (a write): the caller takes the path that may block
        return principal

    def authenticate(self, token: str) -> Principal:
        hit = self.cached(token)
        if hit is not None:
            return hit
        if not KEY_RE.match(token):
            raise Unauthorized("malformed API key: expected 'Authorization: Bearer sk-...'")
        digest = self.digest(token)
        with self.db.read() as s:
            k = s.scalar(select(ApiKey).where(ApiKey.digest == digest))
            if k is None or k.revoked_at is not None:
                raise Unauthorized("invalid API key")
            now = self.clock.now()
            if k.expires_at is not None and _aware(k.expires_at) <= now:
                raise Unauthorized("invalid API key")
            principal = Principal(account_id=k.account_id, scopes=frozenset(k.scopes), key_id=k.id)
            expires_at = k.expires_at
        if self._cache_seconds > 0:
            if len(self._verified) >= 10_000:
                self._verified.clear()
            self._verified[digest] = (principal, self.clock.time() + self._cache_seconds, expires_at)
        self._touch(principal.key_id or "")
        return principal

    def _touch(self, key_id: str) -> None:
        """lastUsedAt is written at most once a minute per key."""
        now = self.clock.time()
        if now - self._last_used.get(key_id, 0) < 60:
            return
        self._last_used[key_id] = now
        with self.db.write() as s:
            k = s.get(ApiKey, key_id)
            if k is not None:
                k.last_used_at = self.clock.now()


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
