"""Vendor stand-ins served over real HTTP on 127.0.0.1, one server per vendor for the session;
each test gets its stand-in reset to the default behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .standins._server import self_signed_certificate, serve
from .standins.fal import FalStandIn
from .standins.gemini import GeminiStandIn
from .standins.openai import OpenAIStandIn
from .standins.replicate import ReplicateStandIn


@dataclass
class TlsFiles:
    certfile: Path
    keyfile: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles(*self_signed_certificate(tmp_path_factory.mktemp("tls")))


def _served(standin, **tls):  # type: ignore[no-untyped-def]
    with serve(standin.app, **tls) as url:
        standin.base_url = url
        yield standin


@pytest.fixture(scope="session")
def _fal_server() -> Iterator[FalStandIn]:
    yield from _served(FalStandIn())


@pytest.fixture(scope="session")
def _fal_tls_server(tls_files: TlsFiles) -> Iterator[FalStandIn]:
    yield from _served(FalStandIn(), certfile=tls_files.certfile, keyfile=tls_files.keyfile)


@pytest.fixture(scope="session")
def _replicate_server() -> Iterator[ReplicateStandIn]:
    yield from _served(ReplicateStandIn())


@pytest.fixture(scope="session")
def _openai_server() -> Iterator[OpenAIStandIn]:
    yield from _served(OpenAIStandIn())


@pytest.fixture(scope="session")
def _gemini_server() -> Iterator[GeminiStandIn]:
    yield from _served(GeminiStandIn())


@pytest.fixture
def fal_standin(_fal_server: FalStandIn) -> FalStandIn:
    _fal_server.reset()
    return _fal_server


@pytest.fixture
def fal_tls_standin(_fal_tls_server: FalStandIn) -> FalStandIn:
    _fal_tls_server.reset()
    return _fal_tls_server


@pytest.fixture
def replicate_standin(_replicate_server: ReplicateStandIn) -> ReplicateStandIn:
    _replicate_server.reset()
    return _replicate_server


@pytest.fixture
def openai_standin(_openai_server: OpenAIStandIn) -> OpenAIStandIn:
    _openai_server.reset()
    return _openai_server


@pytest.fixture
def gemini_standin(_gemini_server: GeminiStandIn) -> GeminiStandIn:
    _gemini_server.reset()
    return _gemini_server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


class FakeTime:
    """A monotonic clock and a sleep that only moves it: polling and backoff take no real time."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
