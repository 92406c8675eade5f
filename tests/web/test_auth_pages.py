"""Sign-in and sign-up pages in Chromium, against the real auth endpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from tests.support.server import LiveServer
from tests.web.helpers import Person, sign_in

from nodeloom.storage.models import Account
from nodeloom.storage.models_users import User

pytestmark = pytest.mark.browser


def test_wrong_password_is_refused_and_sign_up_is_off_by_default(
        dashboard: Callable[..., tuple[LiveServer, Person]], page: Any, shoot: Callable[..., Path]) -> None:
    server, person = dashboard()
    page.goto(server.url + "/workflows")  # a client route: served, then sent to sign-in
    expect(page.get_by_test_id("login-form")).to_be_visible()
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("wrong email or password")
    expect(page.get_by_test_id("login-signup-link")).to_have_count(0)
    shoot(page, "login-error")

    page.goto(server.url + "/signup")
    expect(page.get_by_test_id("signup-disabled")).to_be_visible()
    expect(page.get_by_test_id("signup-submit")).to_be_disabled()
    shoot(page, "signup-disabled")


def test_cookie_writes_without_the_csrf_token_are_refused(
        dashboard: Callable[..., tuple[LiveServer, Person]], page: Any) -> None:
    server, person = dashboard()
    sign_in(page, server, person)
    cookie = next(c for c in page.context.cookies() if c["name"] == "nodeloom_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["secure"] is False
    assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts in the page cannot read it

    # the browser's cookie alone (what a forged cross-site form would carry) cannot write
    forged = page.request.post(server.url + "/api/v1/workflows", data={"name": "forged", "graph": {"nodes": []}})
    assert forged.status == 403 and forged.json()["error"]["code"] == "csrf_failed"
    assert page.request.get(server.url + "/api/v1/workflows").json()["data"] == []

    # the dashboard's own writes carry the token
    page.get_by_test_id("workflow-new").click()
    expect(page.get_by_test_id("editor")).to_be_visible()
    assert len(page.request.get(server.url + "/api/v1/workflows").json()["data"]) == 1


def test_sign_up_when_the_operator_enables_it(make_server: Callable[..., LiveServer], page: Any,
                                              shoot: Callable[..., Path]) -> None:
    server = make_server(signup_enabled=True)
    page.goto(server.url + "/login")
    page.get_by_test_id("login-signup-link").click()
    expect(page.get_by_test_id("signup-form")).to_be_visible()
    page.get_by_test_id("signup-account").fill("Difference Engines")
    page.get_by_test_id("signup-email").fill("Charles@Example.com")
    page.get_by_test_id("signup-password").fill("short")
    page.get_by_test_id("signup-submit").click()
    expect(page.get_by_test_id("signup-error")).to_contain_text("password")
    page.get_by_test_id("signup-password").fill("a long enough password")
    shoot(page, "signup")
    page.get_by_test_id("signup-submit").click()
    expect(page.get_by_test_id("workflow-new")).to_be_visible()
    expect(page.get_by_test_id("account-name")).to_contain_text("Difference Engines")

    with server.services.db.read() as s:
        user = s.scalar(select(User).where(User.email == "charles@example.com"))
        assert user is not None and user.role == "owner"
        assert user.password_hash.startswith("$argon2id$")
        assert s.get(Account, user.account_id).plan == "free"  # type: ignore[union-attr]
