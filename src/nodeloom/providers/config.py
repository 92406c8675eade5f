"""Build the provider adapters from settings: a pure function, no I/O.

| provider    | base URL setting           | key setting            | default base URL                            |
|-------------|----------------------------|------------------------|---------------------------------------------|
| `fal`       | `NODELOOM_FAL_URL`         | `FAL_KEY`              | https://queue.fal.run                       |
| `replicate` | `NODELOOM_REPLICATE_URL`   | `REPLICATE_API_TOKEN`  | https://api.replicate.com                   |
| `openai`    | `NODELOOM_OPENAI_BASE_URL` | `OPENAI_API_KEY`       | https://api.openai.com/v1                   |
| `gemini`    | `NODELOOM_GEMINI_URL`      | `GEMINI_API_KEY`       | https://generativelanguage.googleapis.com   |

An account's own key (stored with `PUT /api/v1/account/providers/{provider}`) takes precedence over
the operator's. A provider without a key is still built, and says why it cannot run through
`unavailable_reason`. An OpenAI-compatible base URL other than OpenAI's own (a local Ollama, vLLM
or llama.cpp server) needs no key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import httpx

from nodeloom.providers import fal, gemini, openai_compat, replicate
from nodeloom.providers.base import DEFAULT_POLLING, Clock, Polling, Provider, Sleep

PROVIDER_SETTINGS: Mapping[str, tuple[str, str]] = {
    "fal": ("NODELOOM_FAL_URL", "FAL_KEY"),
    "replicate": ("NODELOOM_REPLICATE_URL", "REPLICATE_API_TOKEN"),
    "openai": ("NODELOOM_OPENAI_BASE_URL", "OPENAI_API_KEY"),
    "gemini": ("NODELOOM_GEMINI_URL", "GEMINI_API_KEY"),
}


def build_providers(
    settings: Mapping[str, str | None],
    *,
    http: httpx.AsyncClient,
    account_keys: Mapping[str, str] | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    polling: Polling = DEFAULT_POLLING,
) -> dict[str, Provider]:
    """One adapter per provider name, keyed `fal`, `replicate`, `openai`, `gemini`.

    `http` is shared and owned by the caller (the composition root closes it).
    """
    account_keys = account_keys or {}

    def setting(name: str) -> str | None:
        value = settings.get(name)
        return (value.strip() or None) if isinstance(value, str) else None

    def key(provider: str) -> str | None:
        return (account_keys.get(provider) or "").strip() or setting(PROVIDER_SETTINGS[provider][1])

    def base_url(provider: str, default: str) -> str:
        return setting(PROVIDER_SETTINGS[provider][0]) or default

    openai_base = base_url("openai", openai_compat.DEFAULT_BASE_URL)
    return {
        "fal": fal.FalProvider(
            api_key=key("fal"),
            http=http,
            base_url=base_url("fal", fal.DEFAULT_BASE_URL),
            clock=clock,
            sleep=sleep,
            polling=polling,
        ),
        "replicate": replicate.ReplicateProvider(
            api_key=key("replicate"),
            http=http,
            base_url=base_url("replicate", replicate.DEFAULT_BASE_URL),
            clock=clock,
            sleep=sleep,
            polling=polling,
        ),
        "openai": openai_compat.OpenAICompatProvider(
            api_key=key("openai"),
            http=http,
            base_url=openai_base,
            require_key=httpx.URL(openai_base).host == httpx.URL(openai_compat.DEFAULT_BASE_URL).host,
            clock=clock,
        ),
        "gemini": gemini.GeminiProvider(
            api_key=key("gemini"),
            http=http,
            base_url=base_url("gemini", gemini.DEFAULT_BASE_URL),
            clock=clock,
        ),
    }
