"""Idempotency keys (API.md "Idempotency").

A key is claimed by inserting its row in a transaction of its own, committed before the work starts:
the unique constraint on (scope, key) lets exactly one of any number of concurrent duplicates win,
and makes the claim visible to the others (409 `idempotency_key_in_use`). A row moves

    processing ──store (with the work)──▶ answered ──complete or seal──▶ completed
        └───────────────────complete (2xx, 5xx)──────────────────────────▲
        └── abandon (401, 403, 422, 429, 402, other 4xx): deleted, so a corrected retry proceeds

`answered` holds the answer written in the transaction that created an execution, while the request
may still be holding its response (`Prefer: wait`): duplicates get 409 then, and the final response
replaces it. Should the process die before that, the written answer is replayed once the request
could no longer be in flight (`in_flight_seconds`), so a crash never turns into a second execution.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nodeloom.clock import Clock
from nodeloom.errors import ApiError, Conflict
from nodeloom.storage.db import Database
from nodeloom.storage.models_platform import IdempotencyKey

MAX_KEY_LENGTH = 255


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()


def render_json(content: Any) -> bytes:
    """Exactly the bytes Starlette's JSONResponse sends for `content` (so a stored answer is the answer)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def fingerprint(*, method: str, path: str, query: str, content_type: str, body: bytes,
                form_parts: list[tuple[str, bytes]] | None = None) -> str:
    """The endpoint and "the same body": JSON compared by value, multipart by its fields and file digests."""
    h = hashlib.sha256(f"{method}\0{path}\0{query}\0".encode())
    if form_parts is not None:
        for name, digest in sorted(form_parts):
            h.update(name.encode() + b"\0" + digest + b"\0")
        return h.hexdigest()
    if content_type.startswith("application/json") or (body[:1] in (b"{", b"[")):
        try:
            canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON, or nested too deeply to parse
            canonical = None
        if canonical is not None:
            h.update(b"json\0" + canonical.encode())
            return h.hexdigest()
    h.update(b"raw\0" + body)
    return h.hexdigest()


class KeyReused(ApiError):
    status = 422
    code = "idempotency_key_reused"


@dataclass
class Claim:
    """A key this request owns until it answers."""

    row_id: int
    stored: bool = False  # an answer was written with the work (in the execution's transaction)
    #: that answer, when the route promised it is exactly its response (nothing left to write after it)
    final: tuple[int, bytes] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Replay:
    status: int
    content_type: str | None
    body: bytes = field(repr=False)


class IdempotencyService:
    def __init__(self, db: Database, *, clock: Clock, ttl_seconds: float, in_flight_seconds: float = 120.0):
        self.db = db
        self.clock = clock
        self.ttl = timedelta(seconds=ttl_seconds)
        self.in_flight = timedelta(seconds=in_flight_seconds)  # longer than the longest `Prefer: wait`

    def claim(self, *, scope: str, key: str, method: str, path: str, fingerprint: str) -> Claim | Replay:
        """Claim `key` for this request, or say what an earlier request with it answered.

        Raises 422 `idempotency_key_reused` (another endpoint or body) and 409 `idempotency_key_in_use`.
        """
        for _ in range(3):
            now = self.clock.now()
            try:
                with self.db.write() as s:  # Core, not the ORM: this runs on every keyed POST
                    row_id = s.execute(insert(IdempotencyKey).values(
                        scope=scope, key=key, method=method, path=path[:2048], fingerprint=fingerprint,
                        state="processing", created_at=now, expires_at=now + self.ttl)
                        .returning(IdempotencyKey.id)).scalar_one()
                return Claim(row_id=row_id)
            except IntegrityError:
                pass
            with self.db.read() as s:
                existing = s.scalar(select(IdempotencyKey).where(IdempotencyKey.scope == scope,
                                                                 IdempotencyKey.key == key))
            if existing is None:
                continue  # given back meanwhile: claim again
            if _aware(existing.expires_at) <= now:
                with self.db.write() as s:
                    s.execute(delete(IdempotencyKey).where(IdempotencyKey.id == existing.id))
                continue
            if existing.fingerprint != fingerprint:
                raise KeyReused("this Idempotency-Key was used with a different endpoint or body; "
                                "use a new key for a different request")
            in_flight = existing.state == "answered" and _aware(existing.created_at) + self.in_flight > now
            if existing.status_code is None or existing.state == "processing" or in_flight:
                raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly",
                               code="idempotency_key_in_use")
            return Replay(status=existing.status_code, content_type=existing.content_type, body=existing.body or b"")
        raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly",
                       code="idempotency_key_in_use")

    def store(self, s: Session, claim: Claim, *, status: int, body: bytes, content_type: str = "application/json",
              final: bool = False) -> None:
        """Write the answer inside the caller's transaction (the one that does the work). `final`: the
        route will answer exactly this, so the key is completed here and not written again."""
        s.execute(update(IdempotencyKey).where(IdempotencyKey.id == claim.row_id)
                  .values(state="completed" if final else "answered", status_code=status, body=body,
                          content_type=content_type)
                  .execution_options(synchronize_session=False))
        claim.stored = True
        claim.final = (status, body) if final else None

    def store_json(self, claim: Claim, status: int, *, final: bool = False) -> Any:
        """An `answer` callback for ExecutionService.submit: stores `content` rendered as the route sends it."""

        def answer(s: Session, content: Any) -> None:
            self.store(s, claim, status=status, body=render_json(content), final=final)

        return answer

    def complete(self, claim: Claim, *, status: int, body: bytes, content_type: str | None) -> None:
        with self.db.write() as s:
            s.execute(update(IdempotencyKey).where(IdempotencyKey.id == claim.row_id)
                      .values(state="completed", status_code=status, body=body, content_type=content_type)
                      .execution_options(synchronize_session=False))
        claim.stored = True

    def seal(self, claim: Claim) -> None:
        """Keep the answer stored with the work as the final one (the response itself failed)."""
        with self.db.write() as s:
            s.execute(update(IdempotencyKey).where(IdempotencyKey.id == claim.row_id,
                                                   IdempotencyKey.state == "answered").values(state="completed")
                      .execution_options(synchronize_session=False))

    def abandon(self, claim: Claim) -> None:
        """Give the key back: the answer is not one that is kept (a corrected retry may proceed)."""
        with self.db.write() as s:
            s.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim.row_id,
                                                   IdempotencyKey.state == "processing"))

    def sweep(self) -> int:
        """Retention: delete keys past their expiry (24 h by default)."""
        with self.db.write() as s:
            res = cast(CursorResult[Any],
                       s.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= self.clock.now())))
        return int(res.rowcount or 0)

    async def sweep_async(self) -> None:
        await asyncio.to_thread(self.sweep)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


__all__ = ["Claim", "IdempotencyService", "KeyReused", "Replay", "fingerprint", "render_json", "valid_key"]
