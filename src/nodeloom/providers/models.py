"""The hosted models nodeloom offers: vendor ids per provider, argument mapping, reference prices.

Data plus small pure functions; node classes are built on top of it. A model's `vendors` are in
default route order (first preferred); `routes(...)` turns them into `Route`s for the `Router`,
optionally reordered by an operator's preference. Node params are camelCase (`aspectRatio`,
`numImages`); each `VendorModel` says which vendor argument a param becomes and how its value
converts. Prices are in credits (1 credit = $0.01), per call, image, second of video or output
megapixel. Vendor ids follow the vendors' catalogues at the time of writing; they are data, so a
renamed endpoint is a one-line change here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from nodeloom.providers.base import Provider
from nodeloom.providers.routing import Route

Task = Literal[
    "text-to-image",
    "image-edit",
    "text-to-video",
    "image-to-video",
    "upscale",
    "background-removal",
    "chat",
    "prompt-expand",
    "caption",
]
PricedPer = Literal["call", "image", "second", "megapixel"]


@dataclass(frozen=True)
class Arg:
    """A node param's vendor argument name, and how its value converts (identity by default)."""

    name: str
    convert: Callable[[Any], Any] | None = None


ArgMap = dict[str, str | Arg]
"""Node param name -> vendor argument name, or an `Arg` when the value needs converting."""


@dataclass(frozen=True)
class VendorModel:
    provider: str
    model_id: str
    args: Mapping[str, str | Arg] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    build: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    """For requests no one-to-one mapping describes (chat messages): builds the whole body."""

    def arguments(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The vendor's arguments for these node params; unset (None) params are left out."""
        if self.build is not None:
            return {**self.build(params), **self.fixed}
        arguments: dict[str, Any] = {}
        for param, target in self.args.items():
            value = params.get(param)
            if value is None:
                continue
            if isinstance(target, Arg):
                arguments[target.name] = target.convert(value) if target.convert else value
            else:
                arguments[target] = value
        return {**arguments, **self.fixed}


@dataclass(frozen=True)
class Price:
    credits: float
    per: PricedPer = "call"


@dataclass(frozen=True)
class HostedModel:
    key: str
    node_type: str
    display_name: str
    task: Task
    price: Price
    vendors: tuple[VendorModel, ...]
    default_duration: float | None = None
    """Seconds of video when the params name none (per-second models)."""

    def vendor(self, provider: str) -> VendorModel | None:
        return next((v for v in self.vendors if v.provider == provider), None)

    def credits(self, params: Mapping[str, Any], *, output_megapixels: float | None = None) -> int:
        """Reference credits for one run with these params, rounded up.

        Per image: `numImages` (default 1). Per second: `duration` (default `default_duration`).
        Per megapixel: `output_megapixels` when the caller knows the input size, else one megapixel
        scaled by `scale` squared.
        """
        per = self.price.per
        if per == "image":
            units = float(params.get("numImages") or 1)
        elif per == "second":
            units = float(_seconds(params.get("duration") or self.default_duration or 1))
        elif per == "megapixel":
            units = (
                output_megapixels if output_megapixels is not None else float(params.get("scale") or 2) ** 2
            )
        else:
            units = 1.0
        return math.ceil(self.price.credits * units - 1e-9)


def routes(
    model: HostedModel,
    providers: Mapping[str, Provider],
    params: Mapping[str, Any],
    *,
    order: Sequence[str] | None = None,
) -> list[Route]:
    """Routes for `model` over the providers that exist, in `order` (provider names) when given,
    then in the table's order. Unconfigured providers stay in: the Router skips them and names why."""
    vendors = list(model.vendors)
    if order:
        rank = {name: i for i, name in enumerate(order)}
        vendors.sort(key=lambda v: rank.get(v.provider, len(rank)))
    return [
        Route(providers[v.provider], v.model_id, v.arguments(params))
        for v in vendors
        if v.provider in providers
    ]


# --- value conversions -------------------------------------------------------------------------

_FAL_IMAGE_SIZES = {
    "1:1": "square_hd",
    "4:3": "landscape_4_3",
    "3:4": "portrait_4_3",
    "16:9": "landscape_16_9",
    "9:16": "portrait_16_9",
}
_OPENAI_SIZES = {
    "1:1": "1024x1024",
    "3:2": "1536x1024",
    "16:9": "1536x1024",
    "2:3": "1024x1536",
    "9:16": "1024x1536",
}


def fal_image_size(aspect_ratio: str) -> str:
    return _FAL_IMAGE_SIZES.get(aspect_ratio, "square_hd")


def openai_size(aspect_ratio: str) -> str:
    return _OPENAI_SIZES.get(aspect_ratio, "auto")


def _seconds(value: Any) -> float:
    return float(str(value).rstrip("s"))


def seconds_str(value: Any) -> str:
    """fal's Kling takes "5" or "10"."""
    return str(int(_seconds(value)))


def seconds_suffixed(value: Any) -> str:
    """fal's Veo takes "8s"."""
    return f"{int(_seconds(value))}s"


def as_int_seconds(value: Any) -> int:
    return int(_seconds(value))


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


# --- LLM request builders ----------------------------------------------------------------------

PROMPT_EXPAND_SYSTEM = (
    "You expand a short idea into one vivid, concrete prompt for an image or video model: subject, "
    "setting, composition, lighting, style. Answer with the prompt only."
)
CAPTION_INSTRUCTION = "Describe this image in one or two precise sentences."


def _chat_body(system: str | None) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def build(params: Mapping[str, Any]) -> dict[str, Any]:
        messages = []
        if system or params.get("system"):
            messages.append({"role": "system", "content": params.get("system") or system})
        messages.append({"role": "user", "content": str(params.get("prompt", ""))})
        body: dict[str, Any] = {"messages": messages}
        if params.get("maxTokens") is not None:
            body["max_tokens"] = params["maxTokens"]
        if params.get("temperature") is not None:
            body["temperature"] = params["temperature"]
        return body

    return build


def _caption_chat(params: Mapping[str, Any]) -> dict[str, Any]:
    parts = [{"type": "text", "text": params.get("prompt") or CAPTION_INSTRUCTION}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in as_list(params["image"])]
    return {"messages": [{"role": "user", "content": parts}], "max_tokens": params.get("maxTokens") or 300}


def _gemini_text(system: str | None) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def build(params: Mapping[str, Any]) -> dict[str, Any]:
        prompt = str(params.get("prompt", ""))
        if system or params.get("system"):
            prompt = f"{params.get('system') or system}\n\n{prompt}"
        return {"prompt": prompt, "response_modalities": ["TEXT"]}

    return build


def _gemini_caption(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "prompt": params.get("prompt") or CAPTION_INSTRUCTION,
        "images": as_list(params["image"]),
        "response_modalities": ["TEXT"],
    }


# --- the table ---------------------------------------------------------------------------------

_FAL_T2I: ArgMap = {
    "prompt": "prompt",
    "aspectRatio": Arg("image_size", fal_image_size),
    "seed": "seed",
    "numImages": "num_images",
}
_REPLICATE_T2I = {"prompt": "prompt", "aspectRatio": "aspect_ratio", "seed": "seed"}
_NANO_FAL = {
    "prompt": "prompt",
    "aspectRatio": "aspect_ratio",
    "resolution": "resolution",
    "numImages": "num_images",
    "seed": "seed",
}
_NANO_GEMINI = {"prompt": "prompt", "aspectRatio": "aspect_ratio", "resolution": "image_size"}
_KLING_FAL: ArgMap = {
    "prompt": "prompt",
    "negativePrompt": "negative_prompt",
    "aspectRatio": "aspect_ratio",
    "duration": Arg("duration", seconds_str),
}
_KLING_REPLICATE: ArgMap = {
    "prompt": "prompt",
    "negativePrompt": "negative_prompt",
    "aspectRatio": "aspect_ratio",
    "duration": Arg("duration", as_int_seconds),
}
_VEO_FAL: ArgMap = {
    "prompt": "prompt",
    "aspectRatio": "aspect_ratio",
    "duration": Arg("duration", seconds_suffixed),
    "generateAudio": "generate_audio",
    "seed": "seed",
}
_VEO_REPLICATE: ArgMap = {
    "prompt": "prompt",
    "aspectRatio": "aspect_ratio",
    "duration": Arg("duration", as_int_seconds),
    "generateAudio": "generate_audio",
    "seed": "seed",
}
_VIDEO_FAL: ArgMap = {
    "prompt": "prompt",
    "aspectRatio": "aspect_ratio",
    "duration": Arg("duration", seconds_str),
    "resolution": "resolution",
    "seed": "seed",
}
_VIDEO_REPLICATE: ArgMap = {
    "prompt": "prompt",
    "aspectRatio": "aspect_ratio",
    "duration": Arg("duration", as_int_seconds),
    "resolution": "resolution",
    "seed": "seed",
}


def _m(
    key: str,
    node_type: str,
    name: str,
    task: Task,
    price: Price,
    *vendors: VendorModel,
    default_duration: float | None = None,
) -> HostedModel:
    return HostedModel(key, node_type, name, task, price, vendors, default_duration)


_MODELS: tuple[HostedModel, ...] = (
    # text to image
    _m(
        "flux_2_pro",
        "generate.flux_2_pro",
        "FLUX.2 [pro]",
        "text-to-image",
        Price(19, "image"),
        VendorModel("fal", "fal-ai/flux-2-pro", _FAL_T2I),
        VendorModel("replicate", "black-forest-labs/flux-2-pro", _REPLICATE_T2I),
    ),
    _m(
        "flux_dev",
        "generate.flux_dev",
        "FLUX.1 [dev]",
        "text-to-image",
        Price(3, "image"),
        VendorModel("fal", "fal-ai/flux/dev", _FAL_T2I),
        VendorModel("replicate", "black-forest-labs/flux-dev", _REPLICATE_T2I),
    ),
    _m(
        "flux_schnell",
        "generate.flux_schnell",
        "FLUX.1 [schnell]",
        "text-to-image",
        Price(1, "image"),
        VendorModel("fal", "fal-ai/flux/schnell", _FAL_T2I),
        VendorModel("replicate", "black-forest-labs/flux-schnell", _REPLICATE_T2I),
    ),
    _m(
        "recraft_v4",
        "generate.recraft_v4",
        "Recraft V4",
        "text-to-image",
        Price(13, "image"),
        VendorModel(
            "fal",
            "fal-ai/recraft/v4/text-to-image",
            {"prompt": "prompt", "aspectRatio": Arg("image_size", fal_image_size)},
        ),
        VendorModel(
            "replicate", "recraft-ai/recraft-v4", {"prompt": "prompt", "aspectRatio": "aspect_ratio"}
        ),
    ),
    _m(
        "nano_banana",
        "generate.nano_banana",
        "Nano Banana (Gemini 2.5 Flash Image)",
        "text-to-image",
        Price(4, "image"),
        VendorModel("gemini", "gemini-2.5-flash-image", _NANO_GEMINI),
        VendorModel("fal", "fal-ai/nano-banana", _NANO_FAL),
        VendorModel("replicate", "google/nano-banana", {"prompt": "prompt", "aspectRatio": "aspect_ratio"}),
    ),
    _m(
        "nano_banana_2",
        "generate.nano_banana_2",
        "Nano Banana 2 (Gemini 3.1 Flash Image)",
        "text-to-image",
        Price(20, "image"),
        VendorModel("fal", "fal-ai/nano-banana-2", _NANO_FAL),
        VendorModel("gemini", "gemini-3.1-flash-image-preview", _NANO_GEMINI),
    ),
    _m(
        "nano_banana_pro",
        "generate.nano_banana_pro",
        "Nano Banana Pro (Gemini 3 Pro Image)",
        "text-to-image",
        Price(20, "image"),
        VendorModel("fal", "fal-ai/nano-banana-pro", _NANO_FAL),
        VendorModel("gemini", "gemini-3-pro-image-preview", _NANO_GEMINI),
        VendorModel(
            "replicate",
            "google/nano-banana-pro",
            {"prompt": "prompt", "aspectRatio": "aspect_ratio", "resolution": "resolution"},
        ),
    ),
    _m(
        "seedream",
        "generate.seedream",
        "Seedream 4",
        "text-to-image",
        Price(10, "image"),
        VendorModel("fal", "fal-ai/bytedance/seedream/v4/text-to-image", _FAL_T2I),
        VendorModel("replicate", "bytedance/seedream-4", {"prompt": "prompt", "aspectRatio": "aspect_ratio"}),
    ),
    _m(
        "imagen",
        "generate.imagen",
        "Imagen 4",
        "text-to-image",
        Price(10, "image"),
        VendorModel(
            "fal",
            "fal-ai/imagen4/preview",
            {"prompt": "prompt", "aspectRatio": "aspect_ratio", "numImages": "num_images", "seed": "seed"},
        ),
        VendorModel("replicate", "google/imagen-4", {"prompt": "prompt", "aspectRatio": "aspect_ratio"}),
    ),
    _m(
        "ideogram_v3",
        "generate.ideogram_v3",
        "Ideogram 3.0",
        "text-to-image",
        Price(7, "image"),
        VendorModel(
            "fal",
            "fal-ai/ideogram/v3",
            {"prompt": "prompt", "aspectRatio": Arg("image_size", fal_image_size), "seed": "seed"},
        ),
        VendorModel("replicate", "ideogram-ai/ideogram-v3-balanced", _REPLICATE_T2I),
    ),
    _m(
        "qwen_image",
        "generate.qwen_image",
        "Qwen-Image",
        "text-to-image",
        Price(3, "image"),
        VendorModel("fal", "fal-ai/qwen-image", _FAL_T2I),
        VendorModel("replicate", "qwen/qwen-image", _REPLICATE_T2I),
    ),
    _m(
        "gpt_image_1",
        "generate.gpt_image_1",
        "GPT Image 1",
        "text-to-image",
        Price(5, "image"),
        VendorModel(
            "openai",
            "gpt-image-1",
            {
                "prompt": "prompt",
                "aspectRatio": Arg("size", openai_size),
                "numImages": "n",
                "quality": "quality",
            },
        ),
    ),
    # image editing
    _m(
        "flux_2_pro_edit",
        "generate.flux_2_pro_edit",
        "FLUX.2 [pro] Edit",
        "image-edit",
        Price(19, "image"),
        VendorModel(
            "fal",
            "fal-ai/flux-2-pro/edit",
            {"prompt": "prompt", "images": Arg("image_urls", as_list), "seed": "seed"},
        ),
        VendorModel(
            "replicate",
            "black-forest-labs/flux-2-pro",
            {
                "prompt": "prompt",
                "images": Arg("input_images", as_list),
                "aspectRatio": "aspect_ratio",
                "seed": "seed",
            },
        ),
    ),
    _m(
        "flux_kontext_pro",
        "generate.flux_kontext_pro",
        "FLUX.1 Kontext [pro]",
        "image-edit",
        Price(4, "image"),
        VendorModel(
            "fal",
            "fal-ai/flux-pro/kontext",
            {"prompt": "prompt", "image": "image_url", "aspectRatio": "aspect_ratio", "seed": "seed"},
        ),
        VendorModel(
            "replicate",
            "black-forest-labs/flux-kontext-pro",
            {"prompt": "prompt", "image": "input_image", "aspectRatio": "aspect_ratio", "seed": "seed"},
        ),
    ),
    _m(
        "nano_banana_2_edit",
        "generate.nano_banana_2_edit",
        "Nano Banana 2 Edit",
        "image-edit",
        Price(20, "image"),
        VendorModel("fal", "fal-ai/nano-banana-2/edit", {**_NANO_FAL, "images": Arg("image_urls", as_list)}),
        VendorModel(
            "gemini", "gemini-3.1-flash-image-preview", {**_NANO_GEMINI, "images": Arg("images", as_list)}
        ),
    ),
    _m(
        "nano_banana_pro_edit",
        "generate.nano_banana_pro_edit",
        "Nano Banana Pro Edit",
        "image-edit",
        Price(20, "image"),
        VendorModel(
            "fal", "fal-ai/nano-banana-pro/edit", {**_NANO_FAL, "images": Arg("image_urls", as_list)}
        ),
        VendorModel(
            "gemini", "gemini-3-pro-image-preview", {**_NANO_GEMINI, "images": Arg("images", as_list)}
        ),
    ),
    _m(
        "seedream_edit",
        "generate.seedream_edit",
        "Seedream 4 Edit",
        "image-edit",
        Price(10, "image"),
        VendorModel(
            "fal",
            "fal-ai/bytedance/seedream/v4/edit",
            {"prompt": "prompt", "images": Arg("image_urls", as_list), "seed": "seed"},
        ),
        VendorModel(
            "replicate",
            "bytedance/seedream-4",
            {"prompt": "prompt", "images": Arg("image_input", as_list), "aspectRatio": "aspect_ratio"},
        ),
    ),
    # video
    _m(
        "kling_text_to_video",
        "video.kling_text_to_video",
        "Kling 2.5 Turbo Pro (text to video)",
        "text-to-video",
        Price(16, "second"),
        VendorModel("fal", "fal-ai/kling-video/v2.5-turbo/pro/text-to-video", _KLING_FAL),
        VendorModel("replicate", "kwaivgi/kling-v2.5-turbo-pro", _KLING_REPLICATE),
        default_duration=5,
    ),
    _m(
        "kling_image_to_video",
        "video.kling_image_to_video",
        "Kling 2.5 Turbo Pro (image to video)",
        "image-to-video",
        Price(16, "second"),
        VendorModel(
            "fal", "fal-ai/kling-video/v2.5-turbo/pro/image-to-video", {**_KLING_FAL, "image": "image_url"}
        ),
        VendorModel(
            "replicate", "kwaivgi/kling-v2.5-turbo-pro", {**_KLING_REPLICATE, "image": "start_image"}
        ),
        default_duration=5,
    ),
    _m(
        "veo_3",
        "video.veo_3",
        "Veo 3",
        "text-to-video",
        Price(64, "second"),
        VendorModel("fal", "fal-ai/veo3", _VEO_FAL),
        VendorModel("replicate", "google/veo-3", _VEO_REPLICATE),
        default_duration=8,
    ),
    _m(
        "veo_3_fast",
        "video.veo_3_fast",
        "Veo 3 Fast",
        "text-to-video",
        Price(32, "second"),
        VendorModel("fal", "fal-ai/veo3/fast", _VEO_FAL),
        VendorModel("replicate", "google/veo-3-fast", _VEO_REPLICATE),
        default_duration=8,
    ),
    _m(
        "seedance_pro",
        "video.seedance_pro",
        "Seedance 1.0 Pro",
        "text-to-video",
        Price(13, "second"),
        VendorModel("fal", "fal-ai/bytedance/seedance/v1/pro/text-to-video", _VIDEO_FAL),
        VendorModel("replicate", "bytedance/seedance-1-pro", _VIDEO_REPLICATE),
        default_duration=5,
    ),
    _m(
        "hailuo_02",
        "video.hailuo_02",
        "MiniMax Hailuo 02",
        "text-to-video",
        Price(5, "second"),
        VendorModel(
            "fal",
            "fal-ai/minimax/hailuo-02/standard/text-to-video",
            {"prompt": "prompt", "duration": Arg("duration", seconds_str)},
        ),
        VendorModel(
            "replicate",
            "minimax/hailuo-02",
            {"prompt": "prompt", "duration": Arg("duration", as_int_seconds)},
        ),
        default_duration=6,
    ),
    _m(
        "wan_2_2",
        "video.wan_2_2",
        "Wan 2.2 (text to video)",
        "text-to-video",
        Price(8, "second"),
        VendorModel(
            "fal",
            "fal-ai/wan/v2.2-a14b/text-to-video",
            {"prompt": "prompt", "aspectRatio": "aspect_ratio", "resolution": "resolution", "seed": "seed"},
        ),
        VendorModel(
            "replicate",
            "wan-video/wan-2.2-t2v-fast",
            {"prompt": "prompt", "aspectRatio": "aspect_ratio", "resolution": "resolution", "seed": "seed"},
        ),
        default_duration=5,
    ),
    # upscaling (priced per output megapixel)
    _m(
        "crystal_upscaler",
        "upscale.crystal",
        "Crystal Upscaler",
        "upscale",
        Price(5, "megapixel"),
        VendorModel(
            "fal",
            "clarityai/crystal-upscaler",
            {"image": "image_url", "scale": "scale_factor", "creativity": "creativity"},
        ),
        VendorModel("replicate", "philz1337x/crystal-upscaler", {"image": "image", "scale": "scale_factor"}),
    ),
    _m(
        "seedvr_upscaler",
        "upscale.seedvr",
        "SeedVR2 Upscaler",
        "upscale",
        Price(5, "megapixel"),
        VendorModel(
            "fal",
            "fal-ai/seedvr/upscale/image",
            {"image": "image_url", "scale": "upscale_factor", "seed": "seed"},
        ),
    ),
    _m(
        "clarity_upscaler",
        "upscale.clarity",
        "Clarity Upscaler",
        "upscale",
        Price(5, "megapixel"),
        VendorModel(
            "fal",
            "fal-ai/clarity-upscaler",
            {"image": "image_url", "scale": "upscale_factor", "creativity": "creativity", "prompt": "prompt"},
        ),
        VendorModel(
            "replicate",
            "philz1337x/clarity-upscaler",
            {"image": "image", "scale": "scale_factor", "creativity": "creativity", "prompt": "prompt"},
        ),
    ),
    _m(
        "esrgan_upscaler",
        "upscale.esrgan",
        "Real-ESRGAN (hosted)",
        "upscale",
        Price(5, "megapixel"),
        VendorModel("fal", "fal-ai/esrgan", {"image": "image_url", "scale": "scale"}),
        VendorModel("replicate", "nightmareai/real-esrgan", {"image": "image", "scale": "scale"}),
    ),
    # background removal
    _m(
        "birefnet",
        "background.birefnet",
        "BiRefNet background removal",
        "background-removal",
        Price(6, "image"),
        VendorModel("fal", "fal-ai/birefnet/v2", {"image": "image_url"}),
        VendorModel("replicate", "men1scus/birefnet", {"image": "image"}),
    ),
    _m(
        "bria_background_removal",
        "background.bria",
        "Bria RMBG 2.0",
        "background-removal",
        Price(7, "image"),
        VendorModel("fal", "fal-ai/bria/background/remove", {"image": "image_url"}),
        VendorModel("replicate", "bria/remove-background", {"image": "image"}),
    ),
    # language models
    _m(
        "llm_chat",
        "llm.chat",
        "Chat (LLM)",
        "chat",
        Price(1),
        VendorModel("openai", "gpt-4.1-mini", build=_chat_body(None)),
        VendorModel("gemini", "gemini-2.5-flash", build=_gemini_text(None)),
    ),
    _m(
        "prompt_expand",
        "llm.prompt_expand",
        "Prompt expansion",
        "prompt-expand",
        Price(1),
        VendorModel("openai", "gpt-4.1-mini", build=_chat_body(PROMPT_EXPAND_SYSTEM)),
        VendorModel("gemini", "gemini-2.5-flash", build=_gemini_text(PROMPT_EXPAND_SYSTEM)),
    ),
    _m(
        "caption",
        "llm.caption",
        "Image caption",
        "caption",
        Price(1),
        VendorModel("openai", "gpt-4.1-mini", build=_caption_chat),
        VendorModel("gemini", "gemini-2.5-flash", build=_gemini_caption),
    ),
)

HOSTED_MODELS: Mapping[str, HostedModel] = {model.key: model for model in _MODELS}
