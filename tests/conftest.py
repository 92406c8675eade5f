"""Shared fixtures: a real server over real HTTP and test factories (helpers live in tests/support)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.comfyui import ComfyServer, require_comfyui
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


# A real ComfyUI (prepared by `make comfyui`; see tests/support/comfyui.py), shared by every directory that needs one
# (tests/comfyui, tests/web): `comfy` is one server for the whole session (starting one takes 20–40 s): tests on it
# use their own prompt ids and file name prefixes and leave it running. A test that kills, restarts or clutters a
# server takes its own from `make_comfy`.
@pytest.fixture(scope="session")
def comfy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    server = ComfyServer(tmp_path_factory.mktemp("comfyui"), env=require_comfyui()).start()
    yield server
    server.stop()


@pytest.fixture
def make_comfy(tmp_path: Path) -> Iterator[Callable[..., ComfyServer]]:
    """make_comfy(**ComfyServer kwargs) → a started server of the test's own, stopped at teardown."""
    env = require_comfyui()
    servers: list[ComfyServer] = []

    def factory(**kwargs: Any) -> ComfyServer:
        server = ComfyServer(tmp_path / f"comfyui{len(servers)}", env=env, **kwargs)
        servers.append(server)
        return server.start()

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def object_info(comfy: ComfyServer) -> dict[str, Any]:
    """`GET /object_info` of the shared server: every node class with its inputs and outputs."""
    with comfy.client(timeout=60) as c:
        r = c.get("/object_info")
    assert r.status_code == 200, r.text[:500]
    info: dict[str, Any] = r.json()
    return info
