"""Webhook tables: the callback outbox, its attempt log, and the ids of signed triggers already seen.

A `WebhookDelivery` row is written in the same transaction as the event it reports (the outbox),
so nothing is lost between "execution completed" and "callback sent". Senders claim rows with a
lease, like jobs; the attempt number fences a sender whose lease ran out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nodeloom.storage.base import Base

#: delivery states: waiting for its next attempt, being sent by one worker, done either way
DELIVERY_STATES = ("pending", "sending", "delivered", "failed")


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # dlv_…, also the `webhook-id` header
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(40))  # the full name: execution.completed, node.completed…
    url: Mapped[str] = mapped_column(String(2048))
    #: the poll body at the moment of the event, media still as stored-file markers (signed at send time)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: attempts since the row was created or last redelivered: the position in the retry schedule
    round_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # unix seconds
    lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_account_created", "account_id", "created_at", "id"),
    )


class WebhookAttempt(Base):
    """One try at sending a delivery; written when the try starts, completed when it ends."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)  # the first bytes, for debugging
    next_attempt_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # what this result scheduled
    __table_args__ = (
        UniqueConstraint("delivery_id", "attempt", name="uq_webhook_attempts_delivery_attempt"),
    )


class TriggerReceipt(Base):
    """A `webhook-id` a signed trigger already used (refused if seen again within the tolerance window)."""

    __tablename__ = "webhook_trigger_receipts"
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[float] = mapped_column(Float, index=True)  # unix seconds


__all__ = ["DELIVERY_STATES", "TriggerReceipt", "WebhookAttempt", "WebhookDelivery"]
