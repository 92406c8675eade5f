"""`GET /api/v1/usage`, plan configuration, and the `accounts` CLI (set-plan, set-limits, grant-credits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.platform.conftest import make_account, priced_graph
from tests.support.server import ROOT, LiveServer, publish, wait_status

from nodeloom.clock import FrozenClock
from nodeloom.settings import Settings


def test_usage_reports_plan_balance_executions_and_daily_history(platform: Callable[..., LiveServer]) -> None:
    clock = FrozenClock(1_800_000_000.0)  # 2027-01-15 08:00 UTC
    server = platform(clock=clock)
    account_id, key = make_account(server, plan="starter", credits=100, requests_per_minute=1000)
    no_usage_scope = server.key(account_id, ["read", "execute"])
    with server.client(key) as c:
        wid = publish(c, priced_graph())
        wait_status(c, c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"], {"COMPLETED"})
        clock.advance(24 * 3600)
        for _ in range(2):
            wait_status(c, c.post(f"/api/v1/workflows/{wid}/execute", json={}).json()["executionId"], {"COMPLETED"})
        r = c.get("/api/v1/usage", params={"days": 3})
        assert r.status_code == 200
        body = r.json()
    assert body == {
        "plan": "starter",
        "credits": {"balance": 85.0, "held": 0.0},
        "executions": {"today": 2, "dailyLimit": 200, "thisMonth": 3},
        "rateLimits": {"requestsPerMinute": 1000, "executionsPerMinute": 10, "concurrency": 4, "windowSeconds": 60},
        "daily": [{"date": "2027-01-14", "executions": 0, "credits": 0.0},
                  {"date": "2027-01-15", "executions": 1, "credits": 5.0},
                  {"date": "2027-01-16", "executions": 2, "credits": 10.0}],
    }
    with server.client(no_usage_scope) as c:
        assert c.get("/api/v1/usage").status_code == 403


def test_operators_change_plans_in_configuration() -> None:
    settings = Settings(environment="test", plans={"free": {"requests_per_minute": 30},
                                                   "team": {"requests_per_minute": 100, "executions_per_minute": 20,
                                                            "concurrency": 8}})
    assert settings.plans["free"].requests_per_minute == 30
    assert settings.plans["free"].executions_per_day == 50  # the fields not named keep their defaults
    assert settings.plans["team"].executions_per_day is None
    assert settings.plans["enterprise"].concurrency == 50
    with pytest.raises(ValueError):
        Settings(environment="test", plans={"free": {"requests_per_minute": 0}})


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NODELOOM_DATA_DIR": str(data), "NODELOOM_SECRET_KEY": "test-secret-key-0123456789",
           "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "nodeloom.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def test_accounts_cli_sets_plans_limits_and_grants_credits(tmp_path: Path) -> None:
    data = tmp_path / "d"
    created = json.loads(cli(data, "accounts", "create", "--name", "Acme", "--json").stdout)
    account = created["accountId"]
    plan = json.loads(cli(data, "accounts", "set-plan", account, "pro", "--json").stdout)
    assert plan["plan"] == "pro" and plan["requests_per_minute"] == 60
    limits = json.loads(cli(data, "accounts", "set-limits", account, "--requests-per-minute", "500",
                            "--executions-per-day", "-1", "--concurrency", "3", "--json").stdout)
    assert (limits["requests_per_minute"], limits["executions_per_day"], limits["concurrency"]) == (500, None, 3)
    assert limits["executions_per_minute"] == 10  # not named: the plan's
    granted = json.loads(cli(data, "accounts", "grant-credits", account, "25.5", "--json").stdout)
    assert granted["balance"] == 25.5
    cleared = json.loads(cli(data, "accounts", "set-limits", account, "--clear", "--json").stdout)
    assert cleared["requests_per_minute"] == 60 and cleared["concurrency"] == 10
    bad = cli(data, "accounts", "set-plan", account, "platinum")
    assert bad.returncode == 2 and "unknown plan" in bad.stderr
    missing = cli(data, "accounts", "grant-credits", "acct_missing", "5")
    assert missing.returncode == 2
