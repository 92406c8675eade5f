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

The settings themselves are read once, with every other setting, by `nodeloom.settings.Settings`;
`Settings.provider_config()` hands them here as a `ProviderConfig`. Nothing in this package reads
the environment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import httpx

from nodeloom.providers import fal, gemini, openai_compat, replicate
from nodeloom.providers.base import DEFAULT_POLLING, Clock, Polling, Provider, Sleep
from nodeloom.providers.routing import RetryPolicy

PROVIDER_SETTINGS: Mapping[str, tuple[str, str]] = {
    "fal": ("NODELOOM_FAL_URL", "FAL_KEY"),
    "replicate": ("NODELOOM_REPLICATE_URL", "REPLICATE_API_TOKEN"),
    "openai": ("NODELOOM_OPENAI_BASE_URL", "OPENAI_API_KEY"),
    "gemini": ("NODELOOM_GEMINI_URL", "GEMINI_API_KEY"),
}


@dataclass(frozen=True, kw_only=True)
class ProviderConfig:
    """The operator's vendor configuration: what the `providers` service needs, and nothing more.

    A frozen view derived from `Settings` (`Settings.provider_config()`) rather than `Settings` itself,
    because the service is handed to every node: it must carry vendor settings only — never the server
    secret or the database URL — and nobody holding it may change them. Keys stay out of `repr`, so a
    log line or an error message that prints the configuration does not print them.
    """

    #: provider name (`fal`, `replicate`, `openai`, `gemini`) -> the base URL the operator set, if any
    base_urls: Mapping[str, str | None] = field(default_factory=dict)
    #: provider name -> the operator's key, if any
    keys: Mapping[str, str | None] = field(default_factory=dict, repr=False)
    #: the model chat nodes ask a non-OpenAI OpenAI-compatible server for; None: the model table's id
    chat_model: str | None = None
    #: vendors in the order to try them; vendors not named keep the table's order
    order: tuple[str, ...] = ()
    #: the most one hosted node may spend at vendors, fallbacks included
    deadline_s: float = 1800.0
    #: the most one provider attempt may take before the route moves on
    attempt_timeout_s: float = 900.0
    retry: RetryPolicy = RetryPolicy()
    polling: Polling = DEFAULT_POLLING

    def __post_init__(self) -> None:
        unknown = sorted(set(self.base_urls).union(self.keys, self.order).difference(PROVIDER_SETTINGS))
        if unknown:
            raise ValueError(f"unknown provider(s) {', '.join(unknown)}; known: {', '.join(PROVIDER_SETTINGS)}")
        # read-only copies: the caller's dicts cannot change the configuration afterwards
        object.__setattr__(self, "base_urls", MappingProxyType(dict(self.base_urls)))
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    def as_mapping(self) -> dict[str, str | None]:
        """The names `build_providers` reads (PROVIDER_SETTINGS), e.g. {"NODELOOM_FAL_URL": …, "FAL_KEY": …}."""
        out: dict[str, str | None] = {}
        for provider, (url_setting, key_setting) in PROVIDER_SETTINGS.items():
            out[url_setting] = self.base_urls.get(provider)
            out[key_setting] = self.keys.get(provider)
        return out

    def configured_base_urls(self) -> list[str]:
        """Base URLs the operator set: trusted by the address guard (API.md "Addresses the server calls")."""
        return [url for provider in PROVIDER_SETTINGS if (url := self.base_urls.get(provider))]


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
