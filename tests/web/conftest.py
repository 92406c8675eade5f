"""Browser fixtures: Debian's Chromium driven by Playwright against a real server serving web/dist.

Outside CI a missing Chromium or an unbuildable dashboard skips these tests; in CI (`CI=true`) it fails
them. The dashboard is built once (scripts/build-web.sh) when web/dist/index.html is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.server import IN_CI, ROOT, LiveServer
from tests.web.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DIST,
    DOCS_SCREENSHOTS,
    SCREENSHOTS,
    STEP_MS,
    Person,
)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def dashboard_dist() -> Path:
    if not (DIST / "index.html").is_file():
        if shutil.which("npm") is None:
            _unavailable("web/dist is not built and npm is missing")
        result = subprocess.run(["bash", str(ROOT / "scripts" / "build-web.sh")], check=False, cwd=ROOT,
                                capture_output=True, text=True, timeout=900)
        if result.returncode != 0 or not (DIST / "index.html").is_file():
            _unavailable(f"could not build the dashboard: {result.stderr[-2000:]}")
    return DIST


@pytest.fixture(scope="module")
def browser(dashboard_dist: Path) -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=STEP_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=False)
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def dashboard(make_server: Callable[..., LiveServer]) -> Callable[..., tuple[LiveServer, Person]]:
    """A server and a person who can sign in to it (the owner of a pro account with credits)."""

    def factory(**settings: Any) -> tuple[LiveServer, Person]:
        server = make_server(**settings)
        person = Person(email="ada@example.com", password="correct horse battery", account_id="")
        user = server.services.users.create_account_with_owner(account_name="Analytical Engines", email=person.email,
                                                              password=person.password, plan="pro", credits=1000)
        person.account_id = user.account_id
        return server, person

    return factory


@pytest.fixture
def shoot() -> Callable[..., Path]:
    """shoot(page, "canvas") saves test-artifacts/screenshots/canvas.png. With docs=True it also becomes
    docs/screenshots/canvas.png (the README's) when that file is missing or NODELOOM_UPDATE_SCREENSHOTS=1,
    so an ordinary test run leaves the committed images alone (each run shows new ids and timings)."""

    def take(page: Any, name: str, *, docs: bool = False, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
        target = DOCS_SCREENSHOTS / f"{name}.png"
        if docs and (not target.exists() or os.environ.get("NODELOOM_UPDATE_SCREENSHOTS") == "1"):
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return path

    return take
