"""Helpers for the browser tests (fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playwright.sync_api import expect
from tests.support.server import ROOT, LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DIST = ROOT / "web" / "dist"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
#: how long one step may wait for the page to reach a state (never a sleep: Playwright polls the state)
STEP_MS = 30_000


@dataclass
class Person:
    email: str
    password: str
    account_id: str


def sign_in(page: Any, server: LiveServer, person: Person) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("workflow-new")).to_be_visible()
