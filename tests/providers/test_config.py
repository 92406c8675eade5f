from __future__ import annotations

import dataclasses

import pytest

from nodeloom.providers import (
    PROVIDER_SETTINGS,
    FalProvider,
    GeminiProvider,
    OpenAICompatProvider,
    ProviderUnavailable,
    ReplicateProvider,
    build_providers,
)
from nodeloom.providers.config import ProviderConfig

from .standins.fal import FalStandIn


def test_names_each_provider_by_its_settings():
    assert PROVIDER_SETTINGS == {
        "fal": ("NODELOOM_FAL_URL", "FAL_KEY"),
        "replicate": ("NODELOOM_REPLICATE_URL", "REPLICATE_API_TOKEN"),
        "openai": ("NODELOOM_OPENAI_BASE_URL", "OPENAI_API_KEY"),
        "gemini": ("NODELOOM_GEMINI_URL", "GEMINI_API_KEY"),
    }


async def test_builds_every_adapter_and_says_what_is_missing(http):
    providers = build_providers({"FAL_KEY": "k", "GEMINI_API_KEY": "  "}, http=http)

    assert [type(p) for p in providers.values()] == [
        FalProvider,
        ReplicateProvider,
        OpenAICompatProvider,
        GeminiProvider,
    ]
    assert providers["fal"].unavailable_reason is None
    reasons = {name: p.unavailable_reason for name, p in providers.items() if name != "fal"}
    assert reasons["replicate"] is not None and reasons["replicate"].startswith("set REPLICATE_API_TOKEN")
    assert reasons["openai"] is not None and reasons["openai"].startswith("set OPENAI_API_KEY")
    assert reasons["gemini"] is not None and reasons["gemini"].startswith(
        "set GEMINI_API_KEY"
    )  # blank is unset


async def test_an_account_key_takes_precedence_and_urls_are_honoured(fal_standin: FalStandIn, http):
    providers = build_providers(
        {"FAL_KEY": "operator-key", "NODELOOM_FAL_URL": fal_standin.base_url + "/"},
        http=http,
        account_keys={"fal": fal_standin.key, "replicate": "r8_account"},
    )

    result = await providers["fal"].run("fal-ai/flux/dev", {"prompt": "x"})

    assert fal_standin.auth_seen[0] == f"Key {fal_standin.key}"
    assert result.media[0].same_host
    assert providers["replicate"].unavailable_reason is None


async def test_a_local_openai_compatible_server_needs_no_key(http):
    local = build_providers({"NODELOOM_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}, http=http)
    hosted = build_providers({}, http=http)

    assert local["openai"].unavailable_reason is None
    assert hosted["openai"].unavailable_reason is not None
    with pytest.raises(ProviderUnavailable):
        await hosted["openai"].run("gpt-4.1-mini", {"messages": [{"role": "user", "content": "hi"}]})


async def test_a_provider_config_is_a_frozen_view_that_builds_the_same_adapters(http):
    config = ProviderConfig(base_urls={"openai": "http://127.0.0.1:11434/v1", "fal": None},
                            keys={"fal": "fal-operator-key"}, order=("openai",))

    assert config.as_mapping() == {
        "NODELOOM_FAL_URL": None, "FAL_KEY": "fal-operator-key", "NODELOOM_REPLICATE_URL": None,
        "REPLICATE_API_TOKEN": None, "NODELOOM_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "OPENAI_API_KEY": None,
        "NODELOOM_GEMINI_URL": None, "GEMINI_API_KEY": None,
    }
    assert config.configured_base_urls() == ["http://127.0.0.1:11434/v1"]
    providers = build_providers(config.as_mapping(), http=http)
    assert providers["fal"].unavailable_reason is None and providers["openai"].unavailable_reason is None
    assert "fal-operator-key" not in repr(config)  # a log line that prints the configuration prints no key
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.order = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.keys["fal"] = "other"  # type: ignore[index]
    with pytest.raises(ValueError, match="unknown provider"):
        ProviderConfig(order=("acme",))
