"""Wall time of the local model nodes on this machine, with cheap baselines measured in the same run.

    .venv/bin/python bench/bench_model_nodes.py [--repeat 3]

Each row runs the real node (`Node().run` with a NodeContext over a LocalEnvironment): `cold` is the first
call in this process (it includes loading the model), `warm` the median of the following calls.
Nodes whose models are not installed are listed as skipped with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from nodeloom.engine.context import LocalEnvironment, NodeContext
from nodeloom.engine.node import Node
from nodeloom.nodes.models_text import LlmPromptExpandLocal, TextEmbed, TextSimilarity
from nodeloom.nodes.models_vision import BackgroundRemove, ImageOcr, UpscaleLanczos, UpscaleRealesrgan


def photo(size: int) -> Image.Image:
    try:
        from skimage import data

        img = Image.fromarray(data.astronaut())
    except ImportError:  # scikit-image is a test-only dependency: fall back to a drawn scene
        img = Image.new("RGB", (512, 512), (230, 230, 230))
        ImageDraw.Draw(img).ellipse((120, 80, 400, 460), fill=(180, 40, 40))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def text_image() -> Image.Image:
    img = Image.new("RGB", (720, 260), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=48)
    draw.text((30, 40), "Hello nodeloom 42", fill="black", font=font)
    draw.text((30, 150), "Prompt: a red apple", fill="black", font=font)
    return img


CASES: list[tuple[str, type[Node], dict[str, Any]]] = [
    ("upscale.lanczos ×4 128² (baseline)", UpscaleLanczos, {"image": photo(128), "scale": 4}),
    ("upscale.realesrgan animevideo-v3 ×2 128²", UpscaleRealesrgan,
     {"image": photo(128), "scale": 2, "model": "animevideo-v3"}),
    ("upscale.realesrgan animevideo-v3 ×4 128²", UpscaleRealesrgan,
     {"image": photo(128), "scale": 4, "model": "animevideo-v3"}),
    ("upscale.realesrgan animevideo-v3 ×2 512²", UpscaleRealesrgan,
     {"image": photo(512), "scale": 2, "model": "animevideo-v3"}),
    ("upscale.realesrgan x4plus ×4 128²", UpscaleRealesrgan, {"image": photo(128), "scale": 4, "model": "x4plus"}),
    ("background.remove 320²", BackgroundRemove, {"image": photo(320), "mask_mode": "soft", "threshold": 0.5}),
    ("background.remove 1024²", BackgroundRemove, {"image": photo(1024), "mask_mode": "soft", "threshold": 0.5}),
    ("image.ocr 720×260, 2 lines", ImageOcr, {"image": text_image(), "min_score": 0.5}),
    ("text.embed 1 sentence", TextEmbed, {"text": "A cat sits on the mat."}),
    ("text.embed ~250 tokens", TextEmbed, {"text": " ".join(["the quick brown fox jumps over the lazy dog"] * 28)}),
    ("text.similarity 2 sentences", TextSimilarity,
     {"a": "How do I bake bread at home?", "b": "What is a good recipe for homemade bread?"}),
    ("llm.prompt_expand_local 60 tokens", LlmPromptExpandLocal,
     {"prompt": "a cat on a roof", "instruction": "You expand short image prompts into one vivid prompt.",
      "max_tokens": 60, "temperature": 0.7, "seed": 42}),
]


async def main(repeat: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="nodeloom-bench-"))
    env = LocalEnvironment({"workdir": workdir})

    async def emit(*_: Any) -> None: ...

    def ctx() -> NodeContext:
        return NodeContext(execution_id="bench", account_id="bench", node_id="n", inputs={}, env=env,
                           emit_progress=emit, cancel_event=asyncio.Event())

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
          f"repeat={repeat}")
    print(f"{'node':48} {'cold s':>8} {'warm s':>8}  note")
    for label, node_type, kwargs in CASES:
        reason = node_type.availability()
        if reason:
            print(f"{label:48} {'-':>8} {'-':>8}  skipped: {reason}")
            continue
        times = []
        out: dict[str, Any] = {}
        for _ in range(1 + repeat):
            start = time.perf_counter()
            out = await node_type().run(ctx(), **kwargs)
            times.append(time.perf_counter() - start)
        warm = statistics.median(times[1:]) if repeat else float("nan")
        print(f"{label:48} {times[0]:8.3f} {warm:8.3f}  {describe(out)}", flush=True)


def describe(out: dict[str, Any]) -> str:
    parts = []
    for key, value in out.items():
        if isinstance(value, Image.Image):
            parts.append(f"{key}={value.width}×{value.height} {value.mode}")
        elif isinstance(value, str):
            parts.append(f"{key}={value[:40]!r}")
        elif isinstance(value, list):
            parts.append(f"{key}=[{len(value)}]")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per node (default 3)")
    args = parser.parse_args()
    asyncio.run(main(max(0, args.repeat)))
    sys.exit(0)
