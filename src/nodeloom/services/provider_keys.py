"""Accounts' own vendor keys: stored encrypted (Fernet, under a key derived from the server secret),
listed without their value, decrypted only to build that account's providers.

    keys = ProviderKeyService(db, secret_key=settings.ensure_secret(), clock=clock)
    keys.put(account_id=acct, provider="fal", api_key="…")    # {provider, configured, updatedAt}
    keys.decrypted(acct)                                       # {"fal": "…"}: for build_providers only

A key stored under an earlier server secret can no longer be read: it is listed as
`configured: false` and ignored until the account stores it again.
"""

from __future__ import annotations

import base64
import builtins
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from nodeloom.clock import Clock, iso
from nodeloom.errors import NotFound, ValidationFailed
from nodeloom.providers import PROVIDER_SETTINGS
from nodeloom.storage.db import Database
from nodeloom.storage.models import Account
from nodeloom.storage.models_providers import AccountProviderKey

log = logging.getLogger("nodeloom.provider_keys")

PROVIDERS: tuple[str, ...] = tuple(PROVIDER_SETTINGS)
MAX_KEY_LENGTH = 1024


def fernet_for(secret_key: str) -> Fernet:
    """A Fernet key of its own, derived from the server secret (which also signs URLs and sessions)."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"nodeloom account provider keys v1").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


class ProviderKeyService:
    def __init__(self, db: Database, *, secret_key: str, clock: Clock):
        self.db = db
        self.clock = clock
        self._fernet = fernet_for(secret_key)

    @staticmethod
    def check_provider(provider: str) -> str:
        if provider not in PROVIDERS:
            raise NotFound(f"unknown provider '{provider}'; one of {', '.join(PROVIDERS)}")
        return provider

    def put(self, *, account_id: str, provider: str, api_key: str) -> dict[str, Any]:
        self.check_provider(provider)
        api_key = api_key.strip()
        if not api_key or len(api_key) > MAX_KEY_LENGTH or any(c.isspace() or not c.isprintable() for c in api_key):
            raise ValidationFailed("the API key is invalid", [{
                "path": "apiKey",
                "message": f"a non-empty key of at most {MAX_KEY_LENGTH} printable characters without spaces"}])
        token = self._fernet.encrypt(api_key.encode()).decode("ascii")
        now = self.clock.now()
        with self.db.write() as s:
            if s.get(Account, account_id) is None:
                raise NotFound("account not found")
            row = s.get(AccountProviderKey, (account_id, provider))
            if row is None:
                row = AccountProviderKey(account_id=account_id, provider=provider, encrypted_key=token,
                                         created_at=now, updated_at=now)
                s.add(row)
            else:
                row.encrypted_key, row.updated_at = token, now
        return {"provider": provider, "configured": True, "updatedAt": iso(now)}

    def delete(self, *, account_id: str, provider: str) -> None:
        self.check_provider(provider)
        with self.db.write() as s:
            row = s.get(AccountProviderKey, (account_id, provider))
            if row is None:
                raise NotFound(f"no {provider} key is stored for this account")
            s.delete(row)

    def list(self, account_id: str) -> list[dict[str, Any]]:
        return [{"provider": row.provider, "configured": self._decrypt(row) is not None,
                 "updatedAt": iso(row.updated_at)} for row in self._rows(account_id)]

    def stored(self, account_id: str) -> frozenset[str]:
        """The providers this account has a readable key for (no key leaves this method)."""
        return frozenset(row.provider for row in self._rows(account_id) if self._decrypt(row) is not None)

    def decrypted(self, account_id: str) -> dict[str, str]:
        """The account's own keys by provider, for building its providers; nothing else may hold them."""
        keys: dict[str, str] = {}
        for row in self._rows(account_id):
            key = self._decrypt(row)
            if key is not None:
                keys[row.provider] = key
        return keys

    def _rows(self, account_id: str) -> builtins.list[AccountProviderKey]:
        with self.db.read() as s:
            return list(s.scalars(select(AccountProviderKey).where(AccountProviderKey.account_id == account_id)
                                  .order_by(AccountProviderKey.provider)))

    def _decrypt(self, row: AccountProviderKey) -> str | None:
        try:
            return self._fernet.decrypt(row.encrypted_key.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            log.warning("the %s key of %s cannot be read under the current server secret", row.provider,
                        row.account_id)
            return None
