"""Opaque ids with a type prefix (wf_, ex_, key_, wh_, file_, acct_, dlv_)."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    # a millisecond time prefix keeps ids roughly sortable by creation; 80 random bits keep them unguessable
    return f"{prefix}_{int(time.time() * 1000):011x}{secrets.token_hex(10)}"


def new_webhook_id() -> str:
    return "wh_" + secrets.token_urlsafe(24)  # 192 bits
