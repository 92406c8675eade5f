"""Accounts' own vendor keys (API.md "Account": `PUT /api/v1/account/providers/{provider}`).

The key is stored only as a Fernet token under a key derived from the server secret; nothing but the
worker that builds a provider for the account ever decrypts it, and no answer ever returns it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nodeloom.storage.base import Base


class AccountProviderKey(Base):
    __tablename__ = "account_provider_keys"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)  # fal, replicate, openai, gemini
    encrypted_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
