"""The ComfyUI pool's state, shared by every API process and worker (API.md "ComfyUI workflows").

One row per configured server: whether it answered its last check, its queue, and the last `/object_info`
it served — kept so that import and validation work while the pool is down.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nodeloom.storage.base import Base


class ComfyServer(Base):
    __tablename__ = "comfyui_servers"
    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    healthy: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    queue_running: Mapped[int] = mapped_column(Integer, default=0)
    queue_pending: Mapped[int] = mapped_column(Integer, default=0)
    node_types: Mapped[int] = mapped_column(Integer, default=0)
    object_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    object_info_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ComfyLease(Base):
    """A segment of ours on a server (queued or running there). A server holds at most `SLOTS` of them, so that our
    scheduler, not ComfyUI's FIFO, decides what runs next; a lease its holder stops renewing expires."""

    __tablename__ = "comfyui_leases"
    holder: Mapped[str] = mapped_column(String(200), primary_key=True)  # "<execution id>/<segment's first node>"
    url: Mapped[str] = mapped_column(String(2048), index=True)
    expires_at: Mapped[datetime] = mapped_column()
