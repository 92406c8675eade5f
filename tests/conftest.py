"""Shared fixtures: a real server over real HTTP and test factories (helpers live in tests/support)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.server import LiveServer, make_settings


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def factory(**overrides: Any) -> LiveServer:
        build_kwargs = {k: overrides.pop(k) for k in ("resolver", "clock") if k in overrides}
        sub = tmp_path / f"s{len(servers)}"
        srv = LiveServer(make_settings(sub, **overrides), **build_kwargs).start()
        servers.append(srv)
        return srv

    yield factory
    for srv in servers:
        srv.stop()


@pytest.fixture
def server(make_server: Callable[..., LiveServer]) -> LiveServer:
    return make_server()


@pytest.fixture
def api(server: LiveServer) -> Iterator[tuple[httpx.Client, str]]:
    """A client with an all-scopes key of a fresh pro account, and that account's id."""
    account_id, key = server.account()
    with server.client(key) as c:
        yield c, account_id


