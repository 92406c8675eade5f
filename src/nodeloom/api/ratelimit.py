"""Request-rate limiting and the X-RateLimit-* headers, on every response (pure ASGI middleware).

Whose budget a request spends is decided here, because it has to be known before the route runs:
a valid API key spends its account's plan budget, a dashboard session its own (the `session_auth`
hook of api/deps.py; the hook may put a `session_id` in `request.state`, else the user id is the
key), and anything else the client address's. The principal found here is left in `request.state`
for the route's dependencies, so a key is looked up once per request.

An anonymous webhook trigger (`POST /api/v1/webhooks/{id}`, `POST /api/v1/workflow/{id}/trigger`)
spends that webhook's own budget (`webhook:{id}`, the owner's plan requests/min), never the owner's
API budget: a stranger's traffic must not turn the owner's own calls into 429s. A trigger for an
unknown id spends the client address's budget.

Signed file downloads, `/healthz`, `/readyz`, `/metrics` and everything outside `/api/` are not
counted; their headers show the client address's budget as it stands. An exception that escapes
the routes becomes the 500 envelope here, so 500s carry the headers (and the request id) too.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nodeloom.errors import ApiError
from nodeloom.services.accounts import AccountService, Principal
from nodeloom.services.idempotency import render_json
from nodeloom.services.limits import Budget, LimitsService

log = logging.getLogger("nodeloom.api")

INTERNAL_ERROR_BODY = render_json({"error": {"code": "internal_error",
                                             "message": "something went wrong on our side; the request id "
                                                        "identifies it"}})


#: the trigger endpoints (API.md "Webhooks"): the webhook id is the capability
TRIGGER_PATH = re.compile(r"^/api/v1/(?:webhooks/([^/]+)|workflow/([^/]+)/trigger)/?$")


def trigger_webhook_id(method: str, path: str) -> str | None:
    """The webhook id of a trigger request, else None."""
    if method != "POST":
        return None
    m = TRIGGER_PATH.match(path)
    return (m.group(1) or m.group(2)) if m else None


def is_counted(method: str, path: str) -> bool:
    if not path.startswith("/api/"):
        return False  # /healthz, /readyz, /metrics, the dashboard's files, /docs
    return not (path.startswith("/api/v1/files/") and method in ("GET", "HEAD"))  # signed downloads


async def send_json(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limiter: LimitsService, accounts: AccountService, anonymous_per_minute: int,
                 trigger_owner: Callable[[str], str | None] | None = None):
        self.app = app
        self.limiter = limiter
        self.accounts = accounts
        self.anonymous_per_minute = anonymous_per_minute
        #: webhook id → its account (TriggerService.owner): whose plan sizes a trigger's own budget
        self.trigger_owner = trigger_owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        webhook_id = trigger_webhook_id(scope["method"], scope["path"])
        trigger_budget = await self._trigger_budget(webhook_id) if webhook_id is not None else None
        if trigger_budget is not None:
            budget = await self._run(self.limiter.hit, *trigger_budget)
        elif is_counted(scope["method"], scope["path"]):
            principal, session_id = await self._identify(scope)
            key, limit = self.limiter.request_budget(principal, client=client, session_id=session_id)
            budget = await self._run(self.limiter.hit, key, limit)
        else:
            budget = await self._run(self.limiter.peek, f"addr:{client}", self.anonymous_per_minute)
        headers = budget.headers()
        if not budget.allowed and self.limiter.enforce and is_counted(scope["method"], scope["path"]):
            wait = budget.retry_after(time.time())
            body = render_json({"error": {"code": "rate_limited",
                                          "message": f"too many requests: at most {budget.limit} per window; "
                                                     f"retry in {wait} s", "retryAfter": wait}})
            await send_json(send, 429, body, [*headers, (b"retry-after", str(wait).encode())])
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await send_json(send, 500, INTERNAL_ERROR_BODY, headers)

    async def _trigger_budget(self, webhook_id: str) -> tuple[str, int] | None:
        """(`webhook:{id}`, the owner's plan requests/min) for a known webhook; None for an unknown one."""
        if self.trigger_owner is None:
            return None
        account_id = await to_thread.run_sync(self.trigger_owner, webhook_id)
        if account_id is None:
            return None
        _name, plan = await to_thread.run_sync(self.limiter.plan_for, account_id)
        return f"webhook:{webhook_id}", plan.requests_per_minute

    async def _run(self, fn: Any, key: str, limit: int) -> Budget:
        if self.limiter.shared:  # Redis: a network round trip, off the event loop
            return await to_thread.run_sync(fn, key, limit)
        result: Budget = fn(key, limit)
        return result

    async def _identify(self, scope: Scope) -> tuple[Principal | None, str | None]:
        state = scope.setdefault("state", {})
        authorization = None
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        principal: Principal | None = None
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                try:
                    principal = self.accounts.cached(token.strip())  # no I/O: a key verified moments ago
                    if principal is None:
                        principal = await to_thread.run_sync(self.accounts.authenticate, token.strip())
                except ApiError:
                    principal = None  # the route answers 401; the address's budget pays for it
        else:
            session_auth = getattr(scope["app"].state, "session_auth", None) if "app" in scope else None
            if session_auth is not None:
                try:
                    principal = await to_thread.run_sync(session_auth, Request(scope))
                except ApiError:
                    principal = None  # e.g. a missing CSRF token: the route's dependency answers it
        if principal is not None:
            state["principal"] = principal
        return principal, state.get("session_id")
