"""Keyset pagination, newest first: opaque cursors over (created_at, id) shared by every list endpoint."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select

from nodeloom.errors import ValidationFailed

T = TypeVar("T")


def encode_cursor(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), row_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """A cursor this server handed out, or 422: anything else (even valid base64 JSON) is refused."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(created, str) or not isinstance(row_id, str):
            raise ValueError
        return datetime.fromisoformat(created), row_id
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("invalid cursor", [{"path": "cursor", "message": "malformed cursor"}]) from exc


def newest_first(stmt: Select[Any], model: Any, *, limit: int, cursor: str | None) -> Select[Any]:
    """`stmt` ordered newest first, after the cursor's row, one row more than a page (to see if more follow)."""
    if cursor:
        created, row_id = decode_cursor(cursor)
        stmt = stmt.where((model.created_at < created) | ((model.created_at == created) & (model.id < row_id)))
    return stmt.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)


def page(rows: Sequence[Any], *, limit: int, public: Callable[[Any], T]) -> dict[str, Any]:
    """`{data, nextCursor}` from the rows `newest_first` selected."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": [public(r) for r in rows],
            "nextCursor": encode_cursor(rows[-1].created_at, rows[-1].id) if more else None}
