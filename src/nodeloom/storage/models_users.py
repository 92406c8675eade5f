"""People who sign in to the dashboard, and their sessions (API.md "Authentication": dashboard sessions).

A user belongs to one account and acts for it with every scope. Passwords are stored only as argon2
hashes. A session's cookie value is a random token that is never stored: the row keeps its HMAC
digest, so a copy of the database cannot be replayed as a cookie.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from nodeloom.storage.base import Base


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="owner")
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)


class UserSession(Base):
    __tablename__ = "user_sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # not secret: names the session's budget
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[float] = mapped_column(Float)  # unix seconds of the service's clock
    __table_args__ = (Index("ix_user_sessions_expires", "expires_at"),)


__all__ = ["User", "UserSession"]
