"""Dashboard sessions over real HTTP: sign-in, the cookie, CSRF, expiry, sign-out, sign-up, budgets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import select
from tests.api.test_auth import assert_envelope
from tests.support.server import LiveServer

from nodeloom.clock import FrozenClock
from nodeloom.storage.models import Account
from nodeloom.storage.models_users import User, UserSession

EMAIL, PASSWORD = "ada@example.com", "correct horse battery"
EMPTY_WORKFLOW = {"name": "wf", "graph": {"nodes": []}}


def make_person(server: LiveServer, email: str = EMAIL, password: str = PASSWORD) -> str:
    """The owner of a new pro account; returns the account id."""
    user = server.services.users.create_account_with_owner(account_name="Engines", email=email, password=password,
                                                          plan="pro", credits=100)
    return user.account_id


@contextmanager
def signed_in(server: LiveServer, email: str = EMAIL, password: str = PASSWORD) -> Iterator[tuple[httpx.Client, str]]:
    """A client holding the session cookie, and the session's CSRF token."""
    with server.client() as c:
        r = c.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        yield c, r.json()["csrfToken"]


def set_cookie(r: httpx.Response) -> str:
    return r.headers["set-cookie"]


def test_sign_in_sets_a_session_cookie_and_me_says_who(server: LiveServer) -> None:
    account_id = make_person(server)
    with server.client() as c:
        r = c.post("/api/v1/auth/login", json={"email": "  ADA@example.com ", "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"]["email"] == EMAIL and body["user"]["id"].startswith("usr_")
        assert body["account"] == {"id": account_id, "name": "Engines", "plan": "pro"}
        cookie = set_cookie(r)
        assert cookie.startswith("nodeloom_session=")
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path", "samesite", "max-age"} <= attributes and "secure" not in attributes
        assert "samesite=lax" in cookie.lower()
        me = c.get("/api/v1/auth/me")
        assert me.status_code == 200
        assert me.json() == body  # the same CSRF token for the session's lifetime
        token = c.cookies["nodeloom_session"]
    with server.services.db.read() as s:  # stored as digests only: neither secret is in the database
        row = s.scalar(select(UserSession))
        user = s.scalar(select(User))
        assert row is not None and user is not None
        assert token not in (row.token_digest, row.id) and len(row.token_digest) == 64
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_the_cookie_is_secure_when_the_dashboard_is_served_over_https(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(public_url="https://nodeloom.example")
    make_person(server)
    r = httpx.post(server.url + "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200
    assert "secure" in [part.strip().lower() for part in set_cookie(r).split(";")]


def test_failed_sign_ins_are_401_without_saying_which_part_was_wrong(server: LiveServer) -> None:
    make_person(server)
    wrong_password = httpx.post(server.url + "/api/v1/auth/login", json={"email": EMAIL, "password": "nope nope"})
    unknown_email = httpx.post(server.url + "/api/v1/auth/login",
                               json={"email": "nobody@example.com", "password": PASSWORD})
    for r in (wrong_password, unknown_email):
        assert_envelope(r, 401, "invalid_credentials")
        assert "set-cookie" not in r.headers
    assert wrong_password.json() == unknown_email.json()
    missing = httpx.post(server.url + "/api/v1/auth/login", json={"email": EMAIL})
    assert assert_envelope(missing, 422, "validation_error")["details"][0]["path"] == "password"
    assert_envelope(httpx.post(server.url + "/api/v1/auth/login", content=b"{", headers={
        "Content-Type": "application/json"}), 400, "invalid_json")


def test_repeated_failures_are_throttled_per_email_and_address(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(login_attempts_per_window=3)
    make_person(server)
    make_person(server, email="grace@example.com")
    url = server.url + "/api/v1/auth/login"
    for _ in range(3):
        assert httpx.post(url, json={"email": EMAIL, "password": "guess guess"}).status_code == 401
    refused = httpx.post(url, json={"email": EMAIL, "password": PASSWORD})  # even the right password waits
    error = assert_envelope(refused, 429, "rate_limited")
    assert error["retryAfter"] >= 1 and int(refused.headers["retry-after"]) >= 1
    # another person signing in from the same address is not locked out
    assert httpx.post(url, json={"email": "grace@example.com", "password": PASSWORD}).status_code == 200


def test_cookie_writes_need_the_sessions_csrf_token(server: LiveServer) -> None:
    make_person(server)
    make_person(server, email="grace@example.com")
    with signed_in(server) as (c, csrf), signed_in(server, "grace@example.com") as (_other, other_csrf):
        assert c.get("/api/v1/workflows").status_code == 200  # reads need no token
        assert_envelope(c.post("/api/v1/workflows", json=EMPTY_WORKFLOW), 403, "csrf_failed")
        assert_envelope(c.post("/api/v1/workflows", json=EMPTY_WORKFLOW, headers={"X-CSRF-Token": "x" * 64}),
                        403, "csrf_failed")
        assert_envelope(c.post("/api/v1/workflows", json=EMPTY_WORKFLOW, headers={"X-CSRF-Token": other_csrf}),
                        403, "csrf_failed")
        assert c.get("/api/v1/workflows").json()["data"] == []
        created = c.post("/api/v1/workflows", json=EMPTY_WORKFLOW, headers={"X-CSRF-Token": csrf})
        assert created.status_code == 201, created.text
        # a session acts with every scope: manage (keys) and usage
        key = c.post("/api/v1/keys", json={"name": "k", "scopes": ["read"]}, headers={"X-CSRF-Token": csrf})
        assert key.status_code == 201
        assert c.get("/api/v1/usage").status_code == 200
        assert_envelope(c.delete(f"/api/v1/workflows/{created.json()['id']}"), 403, "csrf_failed")
        # an API key beside the cookie is what authenticates: no CSRF token needed (not a browser session)
        r = c.get("/api/v1/workflows", headers={"Authorization": f"Bearer {key.json()['key']}"})
        assert r.status_code == 200


def test_sign_out_ends_the_session(server: LiveServer) -> None:
    make_person(server)
    with signed_in(server) as (c, csrf):
        token = c.cookies["nodeloom_session"]
        assert_envelope(c.post("/api/v1/auth/logout"), 403, "csrf_failed")  # no forced sign-out from elsewhere
        assert c.get("/api/v1/auth/me").status_code == 200
        r = c.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 204
        assert "max-age=0" in set_cookie(r).lower()
        assert "nodeloom_session" not in c.cookies
    replayed = httpx.Client(base_url=server.url, cookies={"nodeloom_session": token})
    with replayed:
        assert_envelope(replayed.get("/api/v1/auth/me"), 401, "unauthorized")
        assert_envelope(replayed.get("/api/v1/workflows"), 401, "unauthorized")
        assert replayed.post("/api/v1/auth/logout").status_code == 204  # nothing left to end


def test_sessions_expire(make_server: Callable[..., LiveServer]) -> None:
    clock = FrozenClock()
    server = make_server(clock=clock, session_ttl_seconds=3600)
    make_person(server)
    with signed_in(server) as (c, _csrf):
        clock.advance(3599)
        assert c.get("/api/v1/workflows").status_code == 200
        clock.advance(2)
        assert_envelope(c.get("/api/v1/auth/me"), 401, "unauthorized")
        error = assert_envelope(c.get("/api/v1/workflows"), 401, "unauthorized")
        assert "sign in again" in error["message"]
    assert server.services.users.sweep() == 1


def test_signing_in_again_replaces_the_previous_session(server: LiveServer) -> None:
    make_person(server)
    with signed_in(server) as (c, _csrf):
        first = c.cookies["nodeloom_session"]
        assert c.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}).status_code == 200
        assert c.cookies["nodeloom_session"] != first
        assert c.get("/api/v1/auth/me").status_code == 200
    with httpx.Client(base_url=server.url, cookies={"nodeloom_session": first}) as old:
        assert old.get("/api/v1/auth/me").status_code == 401


def test_sign_up_is_off_unless_the_operator_enables_it(server: LiveServer) -> None:
    assert httpx.get(server.url + "/api/v1/auth/config").json() == {"signupEnabled": False}
    assert assert_envelope(httpx.get(server.url + "/api/v1/auth/me"), 401, "unauthorized")["signupEnabled"] is False
    r = httpx.post(server.url + "/api/v1/auth/signup",
                   json={"email": EMAIL, "password": PASSWORD, "accountName": "Engines"})
    assert_envelope(r, 403, "signup_disabled")
    with server.services.db.read() as s:
        assert s.scalar(select(User)) is None and s.scalar(select(Account)) is None


def test_sign_up_creates_a_free_account_and_its_owner(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(signup_enabled=True)
    assert httpx.get(server.url + "/api/v1/auth/config").json() == {"signupEnabled": True}
    with server.client() as c:
        r = c.post("/api/v1/auth/signup", json={"email": "Ada@Example.com", "password": PASSWORD,
                                                "accountName": " Engines "})
        assert r.status_code == 201, r.text
        assert r.json()["account"]["plan"] == "free" and r.json()["account"]["name"] == "Engines"
        assert r.json()["user"]["email"] == EMAIL
        assert c.get("/api/v1/auth/me").json()["account"]["id"] == r.json()["account"]["id"]
        assert c.post("/api/v1/workflows", json=EMPTY_WORKFLOW,
                      headers={"X-CSRF-Token": r.json()["csrfToken"]}).status_code == 201
    again = httpx.post(server.url + "/api/v1/auth/signup",
                       json={"email": "ADA@example.com", "password": PASSWORD, "accountName": "Copy"})
    assert_envelope(again, 409, "email_taken")
    bad = httpx.post(server.url + "/api/v1/auth/signup",
                     json={"email": "not-an-email", "password": "short", "accountName": "  "})
    error = assert_envelope(bad, 422, "validation_error")
    assert {d["path"] for d in error["details"]} == {"email", "password", "accountName"}
    assert "password" in error["message"]
    with server.services.db.read() as s:
        assert len(s.scalars(select(Account)).all()) == 1  # refused sign-ups leave nothing behind


@pytest.mark.parametrize("limits_on", [False, True])
def test_a_dashboard_session_has_its_own_request_budget(make_server: Callable[..., LiveServer],
                                                        limits_on: bool) -> None:
    server = make_server(rate_limits_enabled=limits_on, session_requests_per_minute=4)
    account_id = make_person(server)
    key = server.key(account_id, ["read"])
    with signed_in(server) as (c, _csrf):
        statuses = [c.get("/api/v1/workflows") for _ in range(5)]
        assert {r.headers["x-ratelimit-limit"] for r in statuses} == {"4"}
        assert [r.status_code for r in statuses] == ([200] * 4 + [429] if limits_on else [200] * 5)
        # the account's API keys spend the plan's budget, not the session's
        r = httpx.get(server.url + "/api/v1/workflows", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.headers["x-ratelimit-limit"] == "60"
