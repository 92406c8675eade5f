"""`nodeloom users create`, `nodeloom accounts create --email/--password`, and the demo's dashboard login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tests.support.server import ROOT, free_port, wait_http
from tests.test_cli import cli

from nodeloom.compose import build
from nodeloom.settings import Settings
from nodeloom.storage.models import Account

SECRET = "test-secret-key-0123456789"


def signs_in(data: Path, email: str, password: str) -> str:
    """Sign in against the CLI's database in process; returns the account id the user acts for."""
    rt = build(Settings(data_dir=data, secret_key=SECRET, process_pool_size=0), migrate=False)
    try:
        return str(rt.users.login(email=email, password=password, client="test").body["account"]["id"])
    finally:
        rt.db.dispose()


def test_accounts_create_with_an_owner_and_users_create(tmp_path: Path) -> None:
    data = tmp_path / "d"
    made = json.loads(cli(data, "accounts", "create", "--name", "Acme", "--plan", "starter", "--email",
                          "Owner@Acme.dev", "--password", "s3cret-enough", "--json").stdout)
    assert made["accountId"].startswith("acct_") and made["apiKey"].startswith("sk-")
    assert made["email"] == "owner@acme.dev" and made["userId"].startswith("usr_")
    assert signs_in(data, "owner@acme.dev", "s3cret-enough") == made["accountId"]

    user = json.loads(cli(data, "users", "create", "--email", "dev@acme.dev", "--password", "another-one",
                          "--account", made["accountId"], "--json").stdout)
    assert user == {"userId": user["userId"], "accountId": made["accountId"], "email": "dev@acme.dev"}
    assert signs_in(data, "dev@acme.dev", "another-one") == made["accountId"]
    plain = cli(data, "users", "create", "--email", "ops@acme.dev", "--password", "third-password",
                "--account", made["accountId"])
    assert "ops@acme.dev" in plain.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("users", "create", "--email", "x@acme.dev", "--password", "long-enough", "--account", "acct_nope"),
     "account not found"),
    (("users", "create", "--email", "x@acme.dev", "--password", "short", "--account", "acct_nope"),
     "password must have 8"),
    (("users", "create", "--email", "not-an-email", "--password", "long-enough", "--account", "acct_nope"),
     "email must be an email address"),
    (("accounts", "create", "--name", "B", "--password", "long-enough"), "--password needs --email"),
    (("accounts", "create", "--name", "B", "--email", "b@acme.dev", "--password", "short"), "password must"),
])
def test_refusals_exit_2_with_the_reason(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    res = cli(tmp_path / "d", *args, check=False)
    assert res.returncode == 2 and message in " ".join(res.stderr.split()), res.stderr


def test_a_taken_email_leaves_no_account_behind(tmp_path: Path) -> None:
    data = tmp_path / "d"
    cli(data, "accounts", "create", "--name", "A", "--email", "a@acme.dev", "--password", "long-enough")
    res = cli(data, "accounts", "create", "--name", "B", "--email", "A@acme.dev", "--password", "long-enough",
              check=False)
    assert res.returncode == 2 and "already exists" in res.stderr
    rt = build(Settings(data_dir=data, secret_key=SECRET, process_pool_size=0), migrate=False)
    try:
        with rt.db.read() as s:
            assert s.scalar(select(func.count()).select_from(Account)) == 1
    finally:
        rt.db.dispose()


@pytest.mark.slow
def test_serve_demo_prints_a_dashboard_login_that_works(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    port = free_port()
    env = {**os.environ, "NODELOOM_DATA_DIR": str(data), "NODELOOM_PROCESS_POOL_SIZE": "0",
           "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "nodeloom.cli", "serve", "--demo", "--port", str(port)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}")
        creds = json.loads((data / "demo-credentials.json").read_text())
        assert creds["email"] == "demo@nodeloom.local" and len(creds["password"]) >= 12
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            r = c.post("/api/v1/auth/login", json={"email": creds["email"], "password": creds["password"]})
            assert r.status_code == 200, r.text
            assert r.json()["account"]["id"] == creds["accountId"]
            workflows = c.get("/api/v1/workflows").json()["data"]
            demo_ids = {creds["workflowId"], creds.get("posterWorkflowId")} - {None}
            assert {w["id"] for w in workflows} == demo_ids
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert f"dashboard login: {creds['email']} / {creds['password']}" in output
