"""The hosted pack's declarations and the provider settings, without a server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nodeloom.engine.registry import Registry
from nodeloom.nodes.hosted import HOSTED_NODES
from nodeloom.providers import HOSTED_MODELS
from nodeloom.services.hosted import configure_hint, own_key_runs
from nodeloom.settings import Settings

BY_TYPE = {node.type: node for node in HOSTED_NODES}


def test_every_model_in_the_table_is_a_registrable_node():
    assert len(HOSTED_NODES) == len(HOSTED_MODELS) >= 30
    registry = Registry(HOSTED_NODES)
    assert len(registry) == len(HOSTED_NODES)
    assert "llm.caption_image" in registry


@pytest.mark.parametrize(("node_type", "params", "price"), [
    ("generate.flux_2_pro", {"numImages": 2}, 38),
    ("generate.recraft_v4", {}, 13),
    ("generate.nano_banana_pro", {}, 20),
    ("generate.imagen", {}, 10),
    ("video.kling_text_to_video", {"duration": 10}, 160),
    ("video.veo_3", {"duration": 8}, 512),
    ("video.veo_3", {}, 512),
    ("upscale.crystal", {"scale": 2}, 20),
    ("background.birefnet", {}, 6),
    ("background.bria", {}, 7),
    ("llm.prompt_expand", {}, 1),
])
def test_reference_prices(node_type, params, price):
    assert BY_TYPE[node_type].price(params) == price
    assert BY_TYPE[node_type].byok_credits == 0


def test_typed_params_per_model():
    def names(node_type: str) -> list[str]:
        return [p.name for p in BY_TYPE[node_type].params]

    assert names("generate.flux_2_pro") == ["aspectRatio", "numImages", "seed"]
    assert "style" in names("generate.recraft_v4")
    assert names("video.kling_text_to_video") == ["aspectRatio", "duration", "negativePrompt"]
    assert BY_TYPE["video.veo_3"].param("duration").enum == (4, 6, 8)  # type: ignore[union-attr]
    assert [p.name for p in BY_TYPE["generate.flux_2_pro_edit"].inputs] == ["prompt", "image", "image2", "image3",
                                                                           "image4"]
    assert [p.name for p in BY_TYPE["video.kling_image_to_video"].inputs] == ["prompt", "image"]
    assert [p.name for p in BY_TYPE["background.bria"].outputs] == ["image", "mask", "vendor"]
    assert BY_TYPE["video.veo_3"].timeout_s == 1800


def test_settings_refuse_bad_configuration(no_provider_env):
    with pytest.raises(ValidationError, match="unknown provider"):
        Settings(provider_order="fal,acme")
    with pytest.raises(ValidationError, match="http"):
        Settings(fal_url="ftp://queue.example")
    settings = Settings(provider_order="replicate, fal", fal_url="https://fal.example/", fal_key="k")
    assert settings.provider_order == ["replicate", "fal"]
    assert settings.provider_config().as_mapping()["NODELOOM_FAL_URL"] == "https://fal.example/"
    assert settings.provider_config().as_mapping()["FAL_KEY"] == "k"
    assert settings.configured_base_urls() == ["https://fal.example/"]


def test_settings_come_from_the_documented_variables(no_provider_env):
    monkeypatch = no_provider_env
    monkeypatch.setenv("FAL_KEY", "fal-key")
    monkeypatch.setenv("NODELOOM_REPLICATE_URL", "https://replicate.example")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8")
    monkeypatch.setenv("NODELOOM_OPENAI_BASE_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("NODELOOM_GEMINI_URL", "https://gemini.example")
    monkeypatch.setenv("GEMINI_API_KEY", "AIza")
    monkeypatch.setenv("NODELOOM_PROVIDER_ORDER", "gemini")
    settings = Settings()
    assert (settings.fal_key, settings.replicate_api_token, settings.openai_api_key, settings.gemini_api_key) == (
        "fal-key", "r8", "sk-x", "AIza")
    assert settings.openai_base_url == "http://localhost:11434/v1"
    assert settings.provider_order == ["gemini"]


def test_the_configuration_hint_names_every_vendor():
    assert configure_hint(["fal", "replicate"]) == (
        "set FAL_KEY or REPLICATE_API_TOKEN, or store your own key with PUT /api/v1/account/providers/fal")
    assert configure_hint(["openai"]).startswith(
        "set OPENAI_API_KEY (or NODELOOM_OPENAI_BASE_URL pointing at a local OpenAI-compatible server)")


def test_billing_reads_own_key_runs_from_node_memory():
    assert own_key_runs(None) == 0
    assert own_key_runs({"vendor_job": {"provider": "fal"}, "byok": False}) == 0
    assert own_key_runs({"byok": True}) == 1
    assert own_key_runs({"byok#0": True, "byok#1": False, "byok#2": True}) == 2
