"""`Idempotency-Key` on every POST (pure ASGI middleware; API.md "Idempotency").

It runs inside the rate limiter (a replay counts as a request) and sees the principal the limiter
found. The first request with a key claims it before the route runs and leaves the claim in
`request.state.idempotency`, so a route that creates something can store its answer in the same
transaction (`ExecutionService.submit(answer=...)`). Whatever the route answers is held back until
it is stored, so by the time a client has its answer a retry replays it, byte for byte, with
`Idempotent-Replayed: true`. Endpoints that mint a secret ignore the header: secrets are never kept.
"""

from __future__ import annotations

import hashlib
import logging

from anyio import CancelScope, to_thread
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nodeloom.api.ratelimit import INTERNAL_ERROR_BODY, send_json
from nodeloom.errors import ApiError
from nodeloom.services.idempotency import Claim, IdempotencyService, fingerprint, render_json, valid_key

log = logging.getLogger("nodeloom.api")

def kept(status: int) -> bool:
    """Answers that are stored: the work happened (2xx) or failed on our side (5xx)."""
    return 200 <= status < 300 or status >= 500


def mints_secret(path: str) -> bool:
    """`POST /keys`, secret and id rotations, sign-in: their answers hold secrets, so they are never stored."""
    return path.rstrip("/") == "/api/v1/keys" or path.endswith("/rotate") or path.startswith("/api/v1/auth/")


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, service: IdempotencyService):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = _header(scope, b"idempotency-key")
        if key is None or mints_secret(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not valid_key(key):
            body = render_json({"error": {"code": "validation_error", "message": "invalid Idempotency-Key",
                                          "details": [{"path": "headers.Idempotency-Key",
                                                       "message": "1 to 255 printable ASCII characters"}]}})
            await send_json(send, 422, body, [])
            return
        body, complete = await _read_body(receive)
        if not complete:
            return  # the client went away before sending its body: nothing to answer
        digest = await self._fingerprint(scope, body)
        principal = scope.setdefault("state", {}).get("principal")
        try:
            outcome = await to_thread.run_sync(lambda: self.service.claim(
                scope=principal.account_id if principal is not None else "anon", key=key,
                method=scope["method"], path=scope["path"], fingerprint=digest))
        except ApiError as exc:
            await send_json(send, exc.status, render_json(exc.body()), [])
            return
        if not isinstance(outcome, Claim):
            headers = [(b"idempotent-replayed", b"true")]
            if outcome.content_type:
                headers.append((b"content-type", outcome.content_type.encode("latin-1")))
            await send({"type": "http.response.start", "status": outcome.status,
                        "headers": [*headers, (b"content-length", str(len(outcome.body)).encode())]})
            await send({"type": "http.response.body", "body": outcome.body})
            return
        scope["state"]["idempotency"] = outcome
        await self._answer(scope, _replaying(body, receive), send, outcome)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, claim: Claim) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def hold_back(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
        try:
            await self.app(scope, receive, hold_back)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            start, chunks = {"type": "http.response.start", "status": 500,
                             "headers": [(b"content-type", b"application/json")]}, [INTERNAL_ERROR_BODY]
        except BaseException:
            with CancelScope(shield=True):
                await self._unfinished(claim)
            raise
        if start is None:  # the route sent nothing (a disconnect)
            with CancelScope(shield=True):
                await self._unfinished(claim)
            return
        status = int(start["status"])
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        content_type = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), None)
        with CancelScope(shield=True):
            if claim.final == (status, body):
                pass  # the answer written with the work is this response, and already complete
            elif kept(status) and not (claim.stored and status >= 500):
                await to_thread.run_sync(lambda: self.service.complete(claim, status=status, body=body,
                                                                       content_type=content_type))
            else:
                await self._unfinished(claim)
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _unfinished(self, claim: Claim) -> None:
        """No answer to keep from this response: keep the one stored with the work, else give the key back."""
        await to_thread.run_sync(self.service.seal if claim.stored else self.service.abandon, claim)

    async def _fingerprint(self, scope: Scope, body: bytes) -> str:
        content_type = (_header(scope, b"content-type") or "").lower()
        query = scope.get("query_string", b"").decode("latin-1")
        parts: list[tuple[str, bytes]] | None = None
        if content_type.startswith("multipart/form-data"):
            parts = []
            try:
                form = await Request(scope, _replaying(body, _never)).form(
                    max_files=1000, max_fields=1000, max_part_size=len(body) + 1)
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        data = await value.read()
                        parts.append((name, b"file:" + hashlib.sha256(data).digest()))
                    else:
                        parts.append((name, b"field:" + hashlib.sha256(str(value).encode()).digest()))
                await form.close()
            except (MultiPartException, HTTPException, ValueError):  # compare bytes; the route will refuse it
                parts = None
        return fingerprint(method=scope["method"], path=scope["path"], query=query, content_type=content_type,
                           body=body, form_parts=parts)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers") or []:
        if k == name:
            return str(v.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the buffered body to the route once, then waits on the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _never() -> Message:
    return {"type": "http.disconnect"}


__all__ = ["IdempotencyMiddleware", "kept", "mints_secret"]

