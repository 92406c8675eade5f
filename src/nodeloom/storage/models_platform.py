"""Platform tables: the credit ledger, daily usage counters and idempotency keys.

The ledger is append-only. `accounts.credits` is the spendable balance; every entry says how it moved:

| kind    | balance | written when                                                        |
|---------|---------|---------------------------------------------------------------------|
| grant   | +amount | an operator grants credits                                          |
| hold    | -amount | an execution is accepted (its estimate), or a fan-out needs more    |
| charge  | 0       | a node that ran is settled from the execution's hold                |
| release | +amount | the execution ended: whatever it held and did not spend goes back   |

`(execution_id, node_id, kind)` is unique, so a node is charged once however often it is retried, an
execution is released once, and a fan-out admission is held once. Execution-wide entries use node id `*`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nodeloom.storage.base import Base, Credits

#: the node id of ledger entries that concern a whole execution (its hold and its release)
EXECUTION_WIDE = "*"
LEDGER_KINDS = ("grant", "hold", "charge", "release")


class CreditEntry(Base):
    __tablename__ = "credit_ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Credits)  # always >= 0; `kind` says which way the balance moved
    execution_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("execution_id", "node_id", "kind", name="uq_credit_ledger_entry"),
        Index("ix_credit_ledger_account_created", "account_id", "created_at"),
    )


class UsageDay(Base):
    """Executions accepted and credits charged per account and UTC day (the daily quota counts here)."""

    __tablename__ = "usage_daily"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD (UTC)
    executions: Mapped[int] = mapped_column(Integer, default=0)
    credits: Mapped[Decimal] = mapped_column(Credits, default=Decimal(0))


class IdempotencyKey(Base):
    """A claimed `Idempotency-Key`: committed before the work starts, answered when it ends."""

    __tablename__ = "idempotency_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the account id, or `anon` for requests without credentials (e.g. webhook triggers)
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(2048))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of the endpoint and the body
    state: Mapped[str] = mapped_column(String(16), default="processing")  # processing | completed
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)


__all__ = ["EXECUTION_WIDE", "LEDGER_KINDS", "CreditEntry", "IdempotencyKey", "UsageDay"]
