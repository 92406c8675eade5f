"""Hosted model nodes through the real API server, against the vendor stand-ins of tests/providers.

`hosted_server(**env)` starts a server whose providers point at the stand-ins (operator keys set);
an env value of None removes that variable, so a test can leave a vendor unconfigured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import tests.providers.conftest as standin_fixtures
from tests.hosted.helpers import standin_env
from tests.providers.standins.fal import FalStandIn
from tests.providers.standins.gemini import GeminiStandIn
from tests.providers.standins.openai import OpenAIStandIn
from tests.providers.standins.replicate import ReplicateStandIn
from tests.support.server import LiveServer

PROVIDER_ENV = (
    "NODELOOM_FAL_URL", "FAL_KEY", "NODELOOM_REPLICATE_URL", "REPLICATE_API_TOKEN", "NODELOOM_OPENAI_BASE_URL",
    "OPENAI_API_KEY", "NODELOOM_OPENAI_CHAT_MODEL", "NODELOOM_GEMINI_URL", "GEMINI_API_KEY", "NODELOOM_PROVIDER_ORDER",
    "NODELOOM_PROVIDER_DEADLINE_SECONDS", "NODELOOM_PROVIDER_ATTEMPT_TIMEOUT_SECONDS",
    "NODELOOM_PROVIDER_MAX_ATTEMPTS", "NODELOOM_PROVIDER_RETRY_BASE_SECONDS",
    "NODELOOM_PROVIDER_MAX_RETRY_AFTER_SECONDS", "NODELOOM_PROVIDER_POLL_INTERVAL_SECONDS",
    "NODELOOM_PROVIDER_POLL_MAX_INTERVAL_SECONDS",
)
# the session's stand-in servers of tests/providers, reused (pytest finds fixtures by module attribute)
_fal_server = standin_fixtures._fal_server
_replicate_server = standin_fixtures._replicate_server
_openai_server = standin_fixtures._openai_server
_gemini_server = standin_fixtures._gemini_server
fal_standin = standin_fixtures.fal_standin
replicate_standin = standin_fixtures.replicate_standin
openai_standin = standin_fixtures.openai_standin
gemini_standin = standin_fixtures.gemini_standin


@pytest.fixture
def no_provider_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Whatever the machine has set, the server sees only what the test sets."""
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def hosted_server(make_server: Callable[..., LiveServer], no_provider_env: pytest.MonkeyPatch,
                  fal_standin: FalStandIn, replicate_standin: ReplicateStandIn, openai_standin: OpenAIStandIn,
                  gemini_standin: GeminiStandIn) -> Callable[..., LiveServer]:
    def start(env: dict[str, str | None] | None = None, **settings: Any) -> LiveServer:
        merged: dict[str, str | None] = {
            **standin_env(fal_standin, replicate_standin, openai_standin, gemini_standin), **(env or {})}
        for name, value in merged.items():
            if value is None:
                no_provider_env.delenv(name, raising=False)
            else:
                no_provider_env.setenv(name, value)
        return make_server(**settings)

    return start
