"""Verified API keys are remembered for NODELOOM_AUTH_CACHE_SECONDS by the process that verified them: a client's
poll loop does not read the key's row on every request, and what revokes or expires a key still ends it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from nodeloom.clock import FrozenClock
from nodeloom.errors import Unauthorized
from nodeloom.services.accounts import AccountService
from nodeloom.storage.db import Database
from nodeloom.storage.migrate import upgrade
from nodeloom.types import ALL_SCOPES

SECRET = "auth-cache-secret-0123456789"


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    upgrade(url)
    return Database(url)


def key_reads(db: Database) -> list[str]:
    """The statements that look a key up by its digest, from now on."""
    seen: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "api_keys.digest =" in statement:
            seen.append(statement)

    return seen


def test_a_verified_key_is_not_read_again_within_the_window(db: Database) -> None:
    clock = FrozenClock()
    accounts = AccountService(db, secret_key=SECRET, clock=clock, cache_seconds=2.0)
    account = accounts.create_account(name="a")
    _row, key = accounts.create_key(account_id=account.id, name="k", scopes=list(ALL_SCOPES))
    reads = key_reads(db)
    first = accounts.authenticate(key)
    assert len(reads) == 1
    for _ in range(5):
        assert accounts.authenticate(key) == first
        assert accounts.cached(key) == first
    assert len(reads) == 1
    clock.advance(2.5)  # the window is over: the row is read again
    assert accounts.cached(key) is None
    assert accounts.authenticate(key) == first
    assert len(reads) == 2


def test_without_a_window_every_request_reads_the_key(db: Database) -> None:
    accounts = AccountService(db, secret_key=SECRET, clock=FrozenClock(), cache_seconds=0)
    account = accounts.create_account(name="a")
    _row, key = accounts.create_key(account_id=account.id, name="k", scopes=list(ALL_SCOPES))
    reads = key_reads(db)
    for _ in range(3):
        accounts.authenticate(key)
    assert len(reads) == 3
    assert accounts.cached(key) is None


def test_revoking_ends_a_remembered_key_at_once_here_and_within_the_window_elsewhere(db: Database) -> None:
    clock = FrozenClock()
    here = AccountService(db, secret_key=SECRET, clock=clock, cache_seconds=2.0)
    elsewhere = AccountService(db, secret_key=SECRET, clock=clock, cache_seconds=2.0)  # another process
    account = here.create_account(name="a")
    row, key = here.create_key(account_id=account.id, name="k", scopes=list(ALL_SCOPES))
    here.authenticate(key)
    elsewhere.authenticate(key)
    here.revoke_key(account_id=account.id, key_id=row.id)
    with pytest.raises(Unauthorized):
        here.authenticate(key)
    assert elsewhere.cached(key) is not None  # the other process learns of it when its window ends
    clock.advance(2.01)
    with pytest.raises(Unauthorized):
        elsewhere.authenticate(key)


def test_a_remembered_key_still_expires_on_time(db: Database) -> None:
    clock = FrozenClock()
    accounts = AccountService(db, secret_key=SECRET, clock=clock, cache_seconds=30.0)
    account = accounts.create_account(name="a")
    _row, key = accounts.create_key(account_id=account.id, name="k", scopes=list(ALL_SCOPES),
                                    expires_at=clock.now() + timedelta(seconds=5))
    accounts.authenticate(key)
    clock.advance(4)
    assert accounts.cached(key) is not None
    clock.advance(1.5)
    assert accounts.cached(key) is None
    with pytest.raises(Unauthorized):
        accounts.authenticate(key)
