"""NODELOOM_SQLITE_SYNCHRONOUS: NORMAL by default (a committed execution survives a crash of the process), FULL
makes every commit fsync the WAL (it also survives power loss)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.support.server import make_settings

from nodeloom.compose import build
from nodeloom.settings import Settings
from nodeloom.storage.db import Database

LEVEL = {1: "NORMAL", 2: "FULL"}


def level(db: Database) -> str:
    with db.read() as s:
        return LEVEL[int(s.execute(text("PRAGMA synchronous")).scalar_one())]


def test_setting_defaults_to_normal_and_reads_full(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().sqlite_synchronous == "NORMAL"
    monkeypatch.setenv("NODELOOM_SQLITE_SYNCHRONOUS", "FULL")
    assert Settings().sqlite_synchronous == "FULL"
    monkeypatch.setenv("NODELOOM_SQLITE_SYNCHRONOUS", "OFF")  # never weaker than a crash-safe commit
    with pytest.raises(ValueError):
        Settings()


@pytest.mark.parametrize("chosen", ["NORMAL", "FULL"])
def test_every_connection_of_the_server_uses_the_chosen_level(tmp_path: Path, chosen: str) -> None:
    services = build(make_settings(tmp_path, sqlite_synchronous=chosen), migrate=True)
    try:
        assert level(services.db) == chosen
        with services.db.write() as s:  # write connections too (a pool hands out several)
            assert LEVEL[int(s.execute(text("PRAGMA synchronous")).scalar_one())] == chosen
    finally:
        asyncio.run(services.aclose())


def test_database_refuses_other_levels(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Database(f"sqlite:///{tmp_path / 'x.db'}", synchronous="OFF")


@pytest.mark.parametrize("overrides, kib", [({}, 256), ({"sqlite_cache_kib": 1024}, 1024)])
def test_every_connection_keeps_a_small_page_cache_of_its_own(tmp_path: Path, overrides: dict[str, int],
                                                              kib: int) -> None:
    """Up to 40 pooled connections each keep a page cache: SQLite's 2,000 KiB default made a server's memory creep up
    as the database grew (bench/soak_rss.py); NODELOOM_SQLITE_CACHE_KIB sets it, 256 KiB by default."""
    services = build(make_settings(tmp_path, **overrides), migrate=True)
    try:
        with services.db.read() as s:
            assert s.execute(text("PRAGMA cache_size")).scalar_one() == -kib
        with services.db.write() as s:
            assert s.execute(text("PRAGMA cache_size")).scalar_one() == -kib
    finally:
        asyncio.run(services.aclose())
