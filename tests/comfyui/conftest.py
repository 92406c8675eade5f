"""Fixtures for tests against a real ComfyUI (prepared by `make comfyui`; see tests/support/comfyui.py).

`comfy` is one server shared by the whole session (starting one takes 20–40 s): tests on it use their own
prompt ids and file name prefixes and leave it running. A test that kills, restarts or clutters a server
takes its own from `make_comfy`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.comfyui import ComfyServer, require_comfyui


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
