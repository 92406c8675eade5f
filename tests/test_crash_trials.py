"""The short version of the crash trials (scripts/crash_trials.py; the full run is 200 + 200 trials, on its own):
SIGKILL the embedded server, and Celery workers, at random moments while executions are submitted, and check after
every trial that each 202 ends in exactly one terminal state, each node is charged at most once and each callback
is delivered at least once with one `webhook-id` per event."""

from __future__ import annotations

import importlib.util
import random
import secrets
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine, text
from tests.support.server import ROOT, require_service

pytestmark = pytest.mark.slow


def crash_trials() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_trials", ROOT / "scripts" / "crash_trials.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_trials"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(900)
def test_twenty_sigkills_of_the_embedded_server_break_no_invariant(tmp_path: Path) -> None:
    ct = crash_trials()
    seed = random.SystemRandom().randrange(1 << 30)
    lines: list[str] = []
    summary = ct.run_embedded(20, seed=seed, workdir=tmp_path, log=lines.append)
    assert summary.violations == [], f"seed {seed}: {summary.line()}\n" + "\n".join(lines)
    assert summary.trials == 20 and summary.kills == 20
    assert summary.accepted >= 20 * 3 and summary.executions >= 20 * 2

    # the checker is not vacuous: a second terminal event, or a callback never sent, is reported
    db = create_engine(f"sqlite:///{tmp_path / 'data' / 'nodeloom.db'}")
    try:
        with db.begin() as conn:
            eid, status, inputs, account = conn.execute(text(
                "SELECT id, status, inputs, account_id FROM executions WHERE webhook_url IS NOT NULL LIMIT 1")).one()
            seq = conn.execute(text("SELECT MAX(seq) FROM execution_events WHERE execution_id = :e"), {"e": eid}).scalar()
            conn.execute(text("INSERT INTO execution_events (execution_id, seq, type, data, created_at) "
                              "VALUES (:e, :s, 'execution.failed', '{}', CURRENT_TIMESTAMP)"), {"e": eid, "s": seq + 1})
            conn.execute(text("UPDATE webhook_deliveries SET status = 'pending' WHERE execution_id = :e"), {"e": eid})
        receiver = ct.Receiver(random.Random(0))
        try:
            marker = ct.as_json(inputs)["p"]
            found = ct.check(db, receiver, [], {eid: (status, marker)}, account)
        finally:
            receiver.close()
        assert any("terminal events" in v for v in found), found
        assert any("not delivered" in v for v in found), found
    finally:
        db.dispose()


@pytest.mark.timeout(600)
def test_sigkilled_celery_workers_break_no_invariant(tmp_path: Path) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    ct = crash_trials()
    seed = random.SystemRandom().randrange(1 << 30)
    lines: list[str] = []
    redis_url = f"redis://127.0.0.1:6379/{8 + secrets.randbelow(7)}"
    summary = ct.run_celery(5, seed=seed, workdir=tmp_path, redis_url=redis_url, log=lines.append)
    assert summary.violations == [], f"seed {seed}: {summary.line()}\n" + "\n".join(lines)
    assert summary.trials == 5 and summary.kills == 5 and summary.accepted >= 5 * 3
