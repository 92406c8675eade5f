from __future__ import annotations

import pytest

from nodeloom.providers import HOSTED_MODELS, MockProvider, ProviderResult, routes
from nodeloom.providers.models import PROMPT_EXPAND_SYSTEM

REQUIRED = [
    "flux_2_pro",
    "flux_2_pro_edit",
    "recraft_v4",
    "nano_banana_2",
    "nano_banana_pro",
    "seedream",
    "imagen",
    "kling_text_to_video",
    "kling_image_to_video",
    "veo_3",
    "veo_3_fast",
    "crystal_upscaler",
    "seedvr_upscaler",
    "birefnet",
    "bria_background_removal",
    "llm_chat",
    "prompt_expand",
    "caption",
]


def test_the_catalogue_has_the_required_models_and_at_least_thirty():
    assert set(REQUIRED) <= set(HOSTED_MODELS)
    assert len(HOSTED_MODELS) >= 30
    assert len({m.node_type for m in HOSTED_MODELS.values()}) == len(HOSTED_MODELS)
    for model in HOSTED_MODELS.values():
        assert model.vendors, model.key
        assert model.node_type.split(".")[0] in {"generate", "video", "upscale", "background", "llm"}
        assert {v.provider for v in model.vendors} <= {"fal", "replicate", "openai", "gemini"}


@pytest.mark.parametrize(
    ("key", "params", "credits"),
    [
        ("flux_2_pro", {}, 19),
        ("flux_2_pro", {"numImages": 2}, 38),
        ("recraft_v4", {}, 13),
        ("nano_banana_2", {}, 20),
        ("nano_banana_pro", {}, 20),
        ("seedream", {}, 10),
        ("imagen", {}, 10),
        ("kling_text_to_video", {}, 80),
        ("kling_image_to_video", {"duration": "10"}, 160),
        ("veo_3", {"duration": "8s"}, 512),
        ("birefnet", {}, 6),
        ("bria_background_removal", {}, 7),
        ("crystal_upscaler", {"scale": 2}, 20),
        ("llm_chat", {}, 1),
    ],
)
def test_reference_prices(key, params, credits):
    assert HOSTED_MODELS[key].credits(params) == credits


def test_upscaling_is_priced_per_output_megapixel():
    assert HOSTED_MODELS["seedvr_upscaler"].credits({"scale": 2}, output_megapixels=4.2) == 21


def test_params_map_to_each_vendors_argument_names():
    flux = HOSTED_MODELS["flux_2_pro"]
    params = {"prompt": "a fox", "aspectRatio": "16:9", "seed": 7, "unknown": 1, "numImages": None}
    assert flux.vendor("fal").arguments(params) == {
        "prompt": "a fox",
        "image_size": "landscape_16_9",
        "seed": 7,
    }
    assert flux.vendor("replicate").arguments(params) == {
        "prompt": "a fox",
        "aspect_ratio": "16:9",
        "seed": 7,
    }

    kling = HOSTED_MODELS["kling_image_to_video"]
    params = {"prompt": "p", "image": "https://x/a.png", "duration": 10}
    assert kling.vendor("fal").arguments(params)["duration"] == "10"
    assert kling.vendor("replicate").arguments(params) == {
        "prompt": "p",
        "start_image": "https://x/a.png",
        "duration": 10,
    }
    assert HOSTED_MODELS["veo_3"].vendor("fal").arguments({"duration": 8})["duration"] == "8s"
    assert HOSTED_MODELS["flux_2_pro_edit"].vendor("fal").arguments({"images": "u"})["image_urls"] == ["u"]


def test_llm_models_build_chat_bodies():
    expand = HOSTED_MODELS["prompt_expand"]
    body = expand.vendor("openai").arguments({"prompt": "fox", "maxTokens": 80})
    assert body == {
        "messages": [{"role": "system", "content": PROMPT_EXPAND_SYSTEM}, {"role": "user", "content": "fox"}],
        "max_tokens": 80,
    }
    caption = HOSTED_MODELS["caption"].vendor("openai").arguments({"image": "data:image/png;base64,AA=="})
    assert caption["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AA=="},
    }
    gemini = HOSTED_MODELS["caption"].vendor("gemini").arguments({"image": "data:image/png;base64,AA=="})
    assert gemini["images"] == ["data:image/png;base64,AA=="] and gemini["response_modalities"] == ["TEXT"]


def test_routes_follow_the_table_or_the_operators_order():
    def handler(model, arguments):
        return ProviderResult(provider="x", model=model, data={})

    providers = {name: MockProvider(name, handler) for name in ("fal", "replicate", "gemini")}
    model = HOSTED_MODELS["nano_banana_pro"]

    default = routes(model, providers, {"prompt": "p", "aspectRatio": "1:1"})
    assert [(r.provider.name, r.model) for r in default] == [
        ("fal", "fal-ai/nano-banana-pro"),
        ("gemini", "gemini-3-pro-image-preview"),
        ("replicate", "google/nano-banana-pro"),
    ]
    assert default[1].arguments == {"prompt": "p", "aspect_ratio": "1:1"}

    preferred = routes(model, providers, {"prompt": "p"}, order=["gemini"])
    assert [r.provider.name for r in preferred] == ["gemini", "fal", "replicate"]
    assert [r.provider.name for r in routes(model, {"fal": providers["fal"]}, {})] == ["fal"]
