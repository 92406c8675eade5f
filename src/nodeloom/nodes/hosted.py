"""The hosted models pack: one node type per entry of `providers.HOSTED_MODELS`.

Each node declares typed ports and params from its model's vendor argument mapping (aspect ratio,
seed, number of images, resolution, duration, negative prompt, reference images …), its reference
price, and which vendors serve it. Running one:

1. images given to the node become `data:` URIs (every vendor accepts them, and no vendor has to
   reach our storage);
2. `ctx.service("providers")` plans the call for the account: routes over the vendors, the account's
   own keys first, retries and fallback, one deadline;
3. the vendor's request id is remembered (`ctx.remember("vendor_job", …)`) as soon as the job is
   submitted, and a resumed node polls that job instead of paying for a new one;
4. outputs are copied in through the address guard (`ctx.service("http")`), which trusts the vendors'
   configured hosts and checks every other one (and every redirect); images become PIL images, videos
   files in the execution's work dir (output nodes store them);
5. `ctx.remember("byok", true|false)` says whether the account's own key served the run.

Vendor errors become a `NodeError` (a FAILED node, which is never charged) that names the model, the
vendor and the vendor's own words. Hosted nodes are never cached (`deterministic = False`).
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

from PIL import Image

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.media.images import decode_image
from nodeloom.media.urlguard import FetchError
from nodeloom.media.values import MediaFile
from nodeloom.providers import (
    HOSTED_MODELS,
    PROVIDER_SETTINGS,
    HostedModel,
    JobState,
    JobStatus,
    Media,
    ProviderCancelled,
    ProviderError,
    ProviderResult,
    ProviderTimeout,
    ProviderUnavailable,
    Submission,
    data_uri,
)

MAX_IMAGE_BYTES = 100 * 1024 * 1024
MAX_VIDEO_BYTES = 1024 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 120.0
COPY_RESERVE_S = 60.0
"""Of a node's time limit, what is kept back from the vendors for copying the outputs in."""


class HostedCall(Protocol):
    """What `ctx.service("providers").call(...)` returns (services/hosted.py implements it)."""

    async def run(self, *, on_progress: Any = None, on_submitted: Any = None,
                  resume: Submission | None = None) -> ProviderResult: ...

    def used_own_key(self, result: ProviderResult) -> bool: ...


class ProvidersService(Protocol):
    async def call(self, model: HostedModel, params: Mapping[str, Any], *, account_id: str,
                   extra_args: Mapping[str, Mapping[str, str]] | None = None,
                   budget_s: float | None = None) -> HostedCall: ...


# --- declarations ------------------------------------------------------------------------------

VENDORS = {"fal": "fal.ai", "replicate": "Replicate", "openai": "an OpenAI-compatible API",
           "gemini": "the Google Gemini API"}
IMAGE_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
VIDEO_RATIOS = ("16:9", "9:16", "1:1")
SEED = Param("seed", "integer", min=0, max=2**32 - 1,
             description="Fixes the vendor's randomness (same seed, same params: a similar result); empty: random")
DURATIONS: dict[str, tuple[int, ...]] = {
    "kling_text_to_video": (5, 10),
    "kling_image_to_video": (5, 10),
    "veo_3": (4, 6, 8),
    "veo_3_fast": (4, 6, 8),
    "seedance_pro": (3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
    "hailuo_02": (6, 10),
}
RECRAFT_STYLES = ("any", "realistic_image", "digital_illustration", "vector_illustration")
NODE_TYPES = {"caption": "llm.caption_image"}
"""Node type names that differ from the model table's."""
EXTRA_ARGS: dict[str, dict[str, dict[str, str]]] = {
    "recraft_v4": {"style": {"fal": "style", "replicate": "style"}},
}
"""Per model: node params the table does not map → vendor argument, per provider."""
EXTRA_PARAMS: dict[str, tuple[Param, ...]] = {
    "recraft_v4": (Param("style", "text", enum=RECRAFT_STYLES,
                         description="Recraft's visual style; empty: the model chooses"),),
}
VIDEO_TASKS = ("text-to-video", "image-to-video")
IMAGE_TASKS = ("text-to-image", "image-edit")
TEXT_TASKS = ("chat", "prompt-expand", "caption")
PARAM_ORDER = ("aspectRatio", "numImages", "resolution", "duration", "quality", "negativePrompt", "scale",
               "creativity", "generateAudio", "seed")
REFERENCE_PORTS = ("image", "image2", "image3", "image4")


def _param(name: str, model: HostedModel) -> Param:
    video = model.task in VIDEO_TASKS
    if name == "aspectRatio":
        if video:
            return Param(name, "text", default="16:9", enum=VIDEO_RATIOS, description="Frame shape of the video")
        default = "1:1" if model.task == "text-to-image" else None
        return Param(name, "text", default=default, enum=IMAGE_RATIOS,
                     description="Shape of the image" + ("" if default else "; empty: as the input image"))
    if name == "seed":
        return SEED
    if name == "numImages":
        return Param(name, "integer", default=1, min=1, max=4, description="Images to generate (each is priced)")
    if name == "resolution":
        enum = ("480p", "720p", "1080p") if video else ("1K", "2K", "4K")
        return Param(name, "text", enum=enum, description="Output resolution; empty: the vendor's default")
    if name == "duration":
        choices = DURATIONS.get(model.key, (int(model.default_duration or 5),))
        return Param(name, "integer", default=int(model.default_duration or choices[0]), enum=choices,
                     description="Length of the video in seconds (priced per second)")
    if name == "quality":
        return Param(name, "text", enum=("low", "medium", "high", "auto"), description="Rendering quality")
    if name == "negativePrompt":
        return Param(name, "text", multiline=True, max_length=2000, description="What the video should not show")
    if name == "scale":
        return Param(name, "integer", default=2, min=1, max=4,
                     description="Enlargement factor (priced per output megapixel)")
    if name == "creativity":
        return Param(name, "number", min=0, max=10,
                     description="How much detail the upscaler may invent (the vendor's own scale)")
    if name == "generateAudio":
        return Param(name, "boolean", description="Generate a soundtrack; empty: the vendor's default")
    raise KeyError(name)


def _llm_params(model: HostedModel) -> tuple[Param, ...]:
    max_tokens = Param("maxTokens", "integer", min=1, max=32000, description="Longest answer, in tokens")
    temperature = Param("temperature", "number", min=0, max=2, description="Randomness of the answer")
    if model.task == "caption":
        return (max_tokens,)
    system = Param("system", "text", multiline=True, max_length=20000,
                   description="Instructions for the model" + ("; empty: the built-in prompt-expansion rules"
                                                                if model.task == "prompt-expand" else ""))
    return (system, max_tokens, temperature)


def _mapped(model: HostedModel) -> set[str]:
    return {name for vendor in model.vendors for name in vendor.args}


def _inputs(model: HostedModel) -> tuple[Port, ...]:
    mapped = _mapped(model)
    prompt = Port("prompt", "text", description="What to generate")
    if model.task in ("chat", "prompt-expand"):
        return (Port("prompt", "text", description="The user's message" if model.task == "chat"
                     else "A short idea to expand into a detailed prompt"),)
    if model.task == "caption":
        return (Port("image", "image"),
                Port("prompt", "text", required=False, description="What to describe; empty: a general caption"))
    ports: list[Port] = []
    if "prompt" in mapped:
        required = model.task not in ("upscale",)
        ports.append(prompt if required else Port("prompt", "text", required=False,
                                                  description="Guides the added detail"))
    if "images" in mapped:
        ports.append(Port("image", "image", description="The image to edit"))
        ports += [Port(name, "image", required=False, description="Another reference image")
                  for name in REFERENCE_PORTS[1:]]
    elif "image" in mapped:
        ports.append(Port("image", "image"))
    return tuple(ports)


def _outputs(model: HostedModel) -> tuple[Port, ...]:
    vendor = Port("vendor", "json", description="Which provider and vendor model served the run, its request "
                                                "id, and whether the account's own key was used (byok)")
    if model.task in IMAGE_TASKS:
        return (Port("image", "image"), Port("images", "list<image>"), vendor)
    if model.task in VIDEO_TASKS:
        return (Port("video", "video"), vendor)
    if model.task == "background-removal":
        return (Port("image", "image", description="The subject on a transparent background"),
                Port("mask", "mask", description="White where the subject is"), vendor)
    if model.task == "upscale":
        return (Port("image", "image"), vendor)
    return (Port("text", "text"), vendor)


def _params(model: HostedModel) -> tuple[Param, ...]:
    if model.task in TEXT_TASKS:
        return _llm_params(model)
    mapped = _mapped(model)
    return tuple(_param(name, model) for name in PARAM_ORDER if name in mapped) + EXTRA_PARAMS.get(model.key, ())


def _description(model: HostedModel, providers: list[str]) -> str:
    served = "; ".join(f"{VENDORS[v.provider]} ({v.model_id})" for v in model.vendors)
    keys = " or ".join(PROVIDER_SETTINGS[p][1] for p in providers)
    endpoints = ", ".join(PROVIDER_SETTINGS[p][0] for p in providers)
    unit = {"call": "run", "image": "image", "second": "second of video", "megapixel": "output megapixel"}
    amount = model.price.credits
    price = f"{amount:g} credit{'' if amount == 1 else 's'} per {unit[model.price.per]}"
    return (f"{model.display_name}, a hosted model served by {served}, tried in that order (the operator may "
            f"reorder with NODELOOM_PROVIDER_ORDER) with retries and fallback. Needs {keys} on the server (endpoints: {endpoints}), or "
            f"the account's own key stored with PUT /api/v1/account/providers/{providers[0]} (runs on your own "
            f"key cost no credits). {price}.")


# --- the node ----------------------------------------------------------------------------------

class HostedNode(Node):
    """A hosted model. Subclasses are generated from `HOSTED_MODELS` by `_declare`."""

    model: ClassVar[HostedModel]
    extra_args: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    resources = "io"
    deterministic = False
    byok_credits = 0
    timeout_s = 900.0

    @classmethod
    def price_units(cls, params: Mapping[str, Any]) -> float:
        per = cls.model.price.per
        if per == "image":
            return float(params.get("numImages") or 1)
        if per == "second":
            return float(params.get("duration") or cls.model.default_duration or 1)
        if per == "megapixel":
            return float(params.get("scale") or 2) ** 2  # one input megapixel, enlarged
        return 1.0

    async def run(self, ctx: Context, **kwargs: Any) -> dict[str, Any]:
        try:
            service: ProvidersService = ctx.service("providers")
        except LookupError as exc:
            raise NodeError("hosted models are not configured on this server", code="provider_unavailable") from exc
        params = await self._vendor_params(ctx, kwargs)
        await ctx.progress(0.0, "submitting")
        call = await service.call(self.model, params, account_id=ctx.account_id, extra_args=self.extra_args,
                                  budget_s=max(1.0, float(self.timeout_s or 900.0) - COPY_RESERVE_S))

        async def remember_job(submission: Submission) -> None:
            await ctx.remember("vendor_job", {"provider": submission.provider, "model": submission.model,
                                              "requestId": submission.request_id})

        async def report(status: JobStatus) -> None:
            fraction, message = _progress(status)
            await ctx.progress(fraction, message)

        try:
            result = await call.run(on_progress=report, on_submitted=remember_job,
                                    resume=_submission(ctx.recalled("vendor_job")))
        except ProviderError as exc:
            raise _node_error(self.model, exc) from exc
        byok = call.used_own_key(result)
        await ctx.remember("byok", byok)
        await ctx.progress(0.95, f"copying the result from {result.provider}")
        outputs = await self._outputs(ctx, result)
        outputs["vendor"] = {"provider": result.provider, "model": result.model, "requestId": result.request_id,
                             "byok": byok}
        await ctx.progress(1.0)
        return outputs

    async def _vendor_params(self, ctx: Context, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Node params and inputs as the model table's params: images as data: URIs, references as a list."""
        params = {k: v for k, v in kwargs.items() if k not in REFERENCE_PORTS}
        images = [kwargs[name] for name in REFERENCE_PORTS if kwargs.get(name) is not None]
        encoded = [await ctx.run_thread(_image_data_uri, image) for image in images]
        if "images" in _mapped(self.model):
            params["images"] = encoded
        elif encoded:
            params["image"] = encoded[0]
        return params

    async def _outputs(self, ctx: Context, result: ProviderResult) -> dict[str, Any]:
        task = self.model.task
        name = self.model.display_name
        if task in TEXT_TASKS:
            if not result.text:
                raise NodeError(f"{name}: {result.provider} answered without text", code="provider_error")
            return {"text": result.text}
        if not result.media:
            raise NodeError(f"{name}: {result.provider} answered without any output file", code="provider_error")
        if task in VIDEO_TASKS:
            data, content_type = await _download(ctx, result.media[0], max_bytes=MAX_VIDEO_BYTES)
            return {"video": await ctx.run_thread(_write_video, Path(ctx.service("workdir")), data, content_type)}
        images = []
        for media in result.media:
            if media.content_type and not media.content_type.startswith("image/"):
                continue
            data, _ = await _download(ctx, media, max_bytes=MAX_IMAGE_BYTES)
            images.append(await ctx.run_thread(_decode_image, data, name))
        if not images:
            raise NodeError(f"{name}: {result.provider} answered without an image", code="provider_error")
        if task == "background-removal":
            cutout = images[0] if images[0].mode == "RGBA" else images[0].convert("RGBA")
            return {"image": cutout, "mask": cutout.getchannel("A")}
        if task == "upscale":
            return {"image": images[0]}
        return {"image": images[0], "images": images}


def _submission(recalled: Any) -> Submission | None:
    if isinstance(recalled, dict) and all(isinstance(recalled.get(k), str) for k in ("provider", "model",
                                                                                      "requestId")):
        return Submission(recalled["provider"], recalled["model"], recalled["requestId"])
    return None


def _progress(status: JobStatus) -> tuple[float, str | None]:
    if status.state is JobState.QUEUED:
        where = f" (position {status.queue_position})" if status.queue_position is not None else ""
        return 0.0, f"waiting in the vendor's queue{where}"
    if status.state is JobState.COMPLETED:
        return 0.9, "finished at the vendor"
    fraction = 0.05 + 0.85 * status.progress if status.progress is not None else 0.05
    return fraction, (status.message or "running at the vendor")[:300]


def _node_error(model: HostedModel, exc: ProviderError) -> NodeError:
    code = "provider_error"
    if isinstance(exc, ProviderUnavailable):
        code = "provider_unavailable"
    elif isinstance(exc, ProviderTimeout):
        code = "provider_timeout"
    elif isinstance(exc, ProviderCancelled):
        code = "provider_cancelled"
    message = f"{model.display_name} failed: {exc}"
    earlier = [note.removeprefix("earlier: ") for note in getattr(exc, "__notes__", ())]
    if earlier:
        message += f" (before that: {'; '.join(earlier)})"
    return NodeError(message, code=code)


async def _download(ctx: Context, media: Media, *, max_bytes: int) -> tuple[bytes, str | None]:
    """A result's bytes: inline, or fetched through the address guard, which trusts the vendors' configured
    hosts (result URLs there are the vendor's own) and checks every other host and every redirect."""
    if media.data is not None:
        return media.data, media.content_type
    url = media.url or ""
    try:
        answer = await ctx.service("http").fetch(url, max_bytes=max_bytes, timeout=DOWNLOAD_TIMEOUT_S, vendor=True)
    except FetchError as exc:
        raise NodeError(f"could not copy the result from {url}: {exc}", code="fetch_failed") from exc
    if answer.status_code >= 400:
        raise NodeError(f"could not copy the result from {url}: HTTP {answer.status_code}", code="fetch_failed")
    return answer.content, media.content_type or answer.content_type


def _image_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return data_uri(buffer.getvalue(), "image/png")


def _decode_image(data: bytes, name: str) -> Image.Image:
    try:
        return decode_image(data)
    except NodeError as exc:
        raise NodeError(f"{name}: the vendor's image could not be decoded ({exc.message})",
                        code="invalid_image") from exc


def _write_video(workdir: Path, data: bytes, content_type: str | None) -> MediaFile:
    ctype = content_type if content_type and content_type.startswith("video/") else "video/mp4"
    extension = {"video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov"}.get(ctype, ".mp4")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"hosted-{uuid.uuid4().hex}{extension}"
    path.write_bytes(data)
    return MediaFile(path=path, content_type=ctype)


def _class_name(key: str) -> str:
    return "Hosted" + "".join(part.capitalize() for part in re.split(r"[_\W]+", key) if part)


def _declare(model: HostedModel) -> type[HostedNode]:
    providers = [vendor.provider for vendor in model.vendors]
    credits_per = None if model.price.per == "call" else model.price.per
    attrs: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": f"{model.display_name} (hosted: {', '.join(providers)}).",
        "type": NODE_TYPES.get(model.key, model.node_type),
        "display_name": model.display_name,
        "description": _description(model, providers),
        "inputs": _inputs(model),
        "outputs": _outputs(model),
        "params": _params(model),
        "credits": model.price.credits,
        "credits_per": credits_per,
        "provider": ",".join(providers),
        "model": model,
        "extra_args": EXTRA_ARGS.get(model.key, {}),
        "timeout_s": 1800.0 if model.task in VIDEO_TASKS else 900.0,
    }
    return type(_class_name(model.key), (HostedNode,), attrs)


HOSTED_NODES: tuple[type[HostedNode], ...] = tuple(_declare(model) for model in HOSTED_MODELS.values())


def nodes() -> list[type[Node]]:
    return list(HOSTED_NODES)
