"""Dashboard sign-in (API.md "Authentication": dashboard sessions): `/api/v1/auth/*`.

`install(app)` includes these routes and sets the `session_auth` hook that api/deps.py and the rate
limiter call for requests without an `Authorization` header.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import Field

from nodeloom.api import models as m
from nodeloom.api.deps import SettingsDep, UsersDep
from nodeloom.api.openapi import answers
from nodeloom.api.schemas import Body
from nodeloom.api.sessions import COOKIE, clear_session_cookie, session_auth, set_session_cookie
from nodeloom.errors import Forbidden, Unauthorized

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginBody(Body):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class SignupBody(Body):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    accountName: str = Field(min_length=1, max_length=200)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/config", summary="What the sign-in page offers",
            responses=answers(200, m.AuthConfig, description="Sign-in options"))
def auth_config(settings: SettingsDep) -> dict[str, Any]:
    return {"signupEnabled": settings.signup_enabled}


@router.get("/me", summary="The signed-in dashboard session",
            responses=answers(200, m.Session, description="The session", errors={
                401: ["unauthorized"]}))
def me(request: Request, users: UsersDep, settings: SettingsDep) -> dict[str, Any]:
    token = request.cookies.get(COOKIE)
    session = users.resolve(token) if token else None
    if token is None or session is None:
        raise Unauthorized("sign in to continue", signupEnabled=settings.signup_enabled)
    return users.describe(session, token=token)


@router.post("/login", summary="Sign in to the dashboard (sets the session cookie)",
             responses=answers(200, m.Session, description="Signed in", errors={
                 401: ["invalid_credentials"], 429: ["rate_limited"]}))
def login(body: LoginBody, request: Request, response: Response, users: UsersDep) -> dict[str, Any]:
    signed = users.login(email=body.email, password=body.password, client=client_address(request))
    previous = request.cookies.get(COOKIE)
    if previous:  # a new session for every sign-in: an old (possibly planted) cookie stops working
        users.logout(previous)
    set_session_cookie(response, request, signed)
    return signed.body


@router.post("/signup", status_code=201, summary="Create a user and an account (when the operator allows)",
             responses=answers(201, m.Session, description="Signed up and in", errors={
                 403: ["signup_disabled"], 409: ["email_taken"], 422: ["validation_error"],
                 429: ["rate_limited"]}))
def signup(body: SignupBody, request: Request, response: Response, users: UsersDep,
           settings: SettingsDep) -> dict[str, Any]:
    if not settings.signup_enabled:
        raise Forbidden("sign-up is not offered on this server; ask its operator for an account",
                        code="signup_disabled")
    user = users.signup(email=body.email, password=body.password, account_name=body.accountName,
                           client=client_address(request))
    signed = users.start_session(user)
    set_session_cookie(response, request, signed)
    return signed.body


@router.post("/logout", status_code=204, summary="Sign out",
             responses=answers(204, description="Signed out", errors={
                 401: ["unauthorized"], 403: ["csrf_failed"]}))
def logout(request: Request, users: UsersDep) -> Response:
    token = request.cookies.get(COOKIE)
    if token and users.resolve(token) is not None:
        session_auth(request)  # a live session signs out only with its CSRF token
        users.logout(token)
    response = Response(status_code=204)
    clear_session_cookie(response, request)
    return response


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.state.session_auth = session_auth
