"""Dashboard sessions on the HTTP side: the cookie, and the `session_auth` hook of api/deps.py.

A request without an `Authorization` header is the dashboard's when it carries the session cookie.
It then acts for the user's account with every scope; a write (any method but GET, HEAD, OPTIONS)
must also carry the session's token in `X-CSRF-Token`, which a page on another site cannot read.
The cookie is HttpOnly and SameSite=Lax, and Secure whenever the dashboard is reached over https.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request, Response

from nodeloom.api.deps import services_of
from nodeloom.errors import Forbidden, Unauthorized
from nodeloom.services.accounts import Principal
from nodeloom.types import ALL_SCOPES

if TYPE_CHECKING:
    from nodeloom.services.users import SignedIn

COOKIE = "nodeloom_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_auth(request: Request) -> Principal | None:
    """None without a cookie; 401 for a cookie whose session ended; 403 `csrf_failed` for a write
    without the session's CSRF token. Leaves the session's id in `request.state` (its rate budget)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    users = services_of(request).users
    session = users.resolve(token)
    if session is None:
        raise Unauthorized("your session has ended; sign in again")
    request.state.session_id = session.id
    if request.method not in SAFE_METHODS and not users.check_csrf(token, request.headers.get(CSRF_HEADER)):
        raise Forbidden("this request needs the session's CSRF token in the X-CSRF-Token header",
                        code="csrf_failed")
    return Principal(account_id=session.account_id, scopes=frozenset(ALL_SCOPES), user_id=session.user_id)


def is_https(request: Request) -> bool:
    public_url = services_of(request).settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https://")


def set_session_cookie(response: Response, request: Request, signed: SignedIn) -> None:
    ttl = services_of(request).settings.session_ttl_seconds
    response.set_cookie(COOKIE, signed.token, max_age=int(ttl), path="/",
                        httponly=True, samesite="lax", secure=is_https(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request))
