"""Local text-to-image with diffusers, for GPU workers, from model folders that the operator provides.

The operator points `NODELOOM_DIFFUSERS_MODELS_DIR` (`Settings.diffusers_models_dir`) at a folder of
diffusers model folders — for example `sdxl-turbo/`, `FLUX.1-schnell/`, `stable-diffusion-v1-5/`, each with
its `model_index.json` — and a workflow names one with the `model` param. Nothing is ever downloaded.

The node learns the folder only from the `diffusers_models_dir` service that the composition root
registers from Settings; it never reads the environment (which holds, until it is scrubbed, the
server's secrets too). `availability()` has no context, so it checks the runtime only; the folder is
checked by `availability_hook(settings.diffusers_models_dir)`, which the composition root adds to the
registries, and again when the node runs.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes.models_runtime import cached, missing

#: the setting's environment variable (read by `Settings`, quoted in messages to the operator)
MODELS_DIR_ENV = "NODELOOM_DIFFUSERS_MODELS_DIR"
#: the service through which the node gets the folder
MODELS_DIR_SERVICE = "diffusers_models_dir"
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def configured_dir(ctx: Context) -> Path | None:
    """The operator's models folder, as the composition root wired it; None when it wired none."""
    try:
        value = ctx.service(MODELS_DIR_SERVICE)
    except LookupError:
        return None
    return Path(value) if value else None


def runtime_unavailable() -> str | None:
    """Why this process cannot run diffusers at all (torch, diffusers or transformers missing), or None."""
    reason = missing(("torch", "diffusers", "transformers"), {}, "diffusers")
    if reason:
        return f"local image generation runs on GPU workers with torch and diffusers: {reason}"
    return None


def folder_unavailable(folder: Path | None) -> str | None:
    """Why `folder` cannot serve models (not configured, not a folder), or None."""
    if folder is None:
        return (f"no model folder configured: set {MODELS_DIR_ENV} to a folder of diffusers model folders "
                "(e.g. sdxl-turbo/, FLUX.1-schnell/, each with its model_index.json)")
    if not folder.is_dir():
        return f"{MODELS_DIR_ENV} ({folder}) is not a folder"
    return None


def availability_hook(models_dir: Path | None) -> Callable[[type[Node]], str | None]:
    """A registry availability hook for `generate.diffusers` with this models folder (None for other nodes).

    The composition root passes `settings.diffusers_models_dir` and chains the hook with its others, so the
    catalogue and validation say "no model folder configured" as they did when the node read the
    environment itself.
    """
    def hook(node_type: type[Node]) -> str | None:
        if not issubclass(node_type, GenerateDiffusers):
            return None
        return folder_unavailable(models_dir)

    return hook


def model_folder(root: Path, name: str) -> Path:
    if not MODEL_NAME.fullmatch(name) or ".." in name:
        raise NodeError(f"invalid model name '{name}'", code="invalid_param")
    folder = (root / name).resolve()
    if folder.parent != root.resolve() or not (folder / "model_index.json").is_file():
        raise NodeError(f"model '{name}' not found in the models folder (a diffusers folder with "
                        "model_index.json)", code="model_not_found")
    return folder


def _load_pipeline(folder: str) -> Any:
    import torch
    from diffusers import AutoPipelineForText2Image

    cuda = torch.cuda.is_available()
    kind = json.loads((Path(folder) / "model_index.json").read_text()).get("_class_name", "")
    dtype = (torch.bfloat16 if "Flux" in kind else torch.float16) if cuda else torch.float32
    pipe = AutoPipelineForText2Image.from_pretrained(folder, dtype=dtype, local_files_only=True)
    pipe = pipe.to("cuda" if cuda else "cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate_image(folder: str, prompt: str, negative: str, width: int, height: int, steps: int,
                   guidance: float | None, seed: int, state: dict[str, Any]) -> Image.Image:
    """Run one seeded text-to-image call. `state` is shared with the caller's thread: it reads `step` and
    may set `cancel`, which interrupts the pipeline at the next step."""
    import torch

    pipe, lock = cached("diffusers", folder, lambda: _load_pipeline(folder))
    accepts = inspect.signature(pipe.__call__).parameters
    kwargs: dict[str, Any] = {
        "prompt": prompt, "width": width, "height": height, "num_inference_steps": steps,
        "generator": torch.Generator(device="cpu").manual_seed(seed),  # same noise on every device
        "output_type": "pil",
    }
    if negative and "negative_prompt" in accepts:
        kwargs["negative_prompt"] = negative
    if guidance is not None and "guidance_scale" in accepts:
        kwargs["guidance_scale"] = guidance

    def on_step(p: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        state["step"] = i + 1
        if state.get("cancel"):
            p._interrupt = True
        return tensors

    if "callback_on_step_end" in accepts:
        kwargs["callback_on_step_end"] = on_step
    with lock, torch.inference_mode():
        images = pipe(**kwargs).images
    return images[0].convert("RGB")


class GenerateDiffusers(Node):
    type = "generate.diffusers"
    display_name = "Generate image (local diffusers)"
    description = ("Text to image on a GPU worker with a diffusers model from the operator's models folder "
                   "(`model` is the folder's name, e.g. sdxl-turbo). Seeded. Turbo/schnell models want 1–4 "
                   "steps and guidance 0; SD 1.5 about 25 steps and guidance 7.5.")
    inputs = (Port("prompt", "text"), Port("negative_prompt", "text", required=False, default=""))
    params = (
        Param("model", "text", required=True, max_length=128, description="Folder name inside the models dir"),
        Param("width", "integer", default=512, min=32, max=2048, description="Rounded down to a multiple of 8"),
        Param("height", "integer", default=512, min=32, max=2048, description="Rounded down to a multiple of 8"),
        Param("steps", "integer", default=4, min=1, max=150),
        Param("guidance_scale", "number", default=None, min=0, max=30,
              description="Empty: the model's own default"),
        Param("seed", "integer", default=0, min=0, max=2**32 - 1),
    )
    outputs = (Port("image", "image"),)
    resources = "gpu"
    deterministic = True
    timeout_s = 1800

    @classmethod
    def availability(cls) -> str | None:
        return runtime_unavailable()

    async def run(self, ctx: Context, *, prompt: str, model: str,
                  width: int, height: int, steps: int, seed: int, guidance_scale: float | None = None,
                  negative_prompt: str = "") -> dict[str, Any]:
        root = configured_dir(ctx)
        if root is None or not root.is_dir():
            raise NodeError(f"{self.type} is not configured on this server: {folder_unavailable(root)}",
                            code="unavailable")
        folder = model_folder(root, model)
        state: dict[str, Any] = {"step": 0, "cancel": False}
        job = asyncio.ensure_future(ctx.run_thread(
            generate_image, str(folder), prompt, negative_prompt or "", max(8, width - width % 8),
            max(8, height - height % 8), steps, guidance_scale, seed, state))
        reported = 0
        try:
            while not job.done():
                await asyncio.wait({job}, timeout=0.25)
                if ctx.cancelled():
                    state["cancel"] = True
                if state["step"] != reported:
                    reported = state["step"]
                    await ctx.progress(min(0.99, reported / steps))
            image = job.result()
        except BaseException:
            state["cancel"] = True  # stop the pipeline at its next step; the thread then ends by itself
            raise
        await ctx.progress(1.0)
        return {"image": image}

