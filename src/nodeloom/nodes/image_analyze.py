"""The image analysis pack: measurements (info, dominant colours, similarity, edges) and faces
(detection with OpenCV's bundled Haar cascade, anonymising blur, face-aware cropping)."""

from __future__ import annotations

import functools
import os
from typing import Any

import cv2
import cv2.data
import numpy as np
from PIL import Image, ImageFilter

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes.image import (
    IMAGE_IN,
    IMAGE_OUT,
    box_tuples,
    check_size,
    has_alpha,
    normalized,
    split_alpha,
    with_alpha,
)
from nodeloom.nodes.image_adjust import pixelate_image
from nodeloom.nodes.image_mask import boxes_mask

#: faces are searched on a copy no larger than this, then the boxes are scaled back
DETECT_MAX_SIDE = 1024
FACE_CASCADE = "haarcascade_frontalface_default.xml"

# --- pure functions (run in the process pool) ---------------------------------------------------------


def image_info(image: Image.Image) -> dict[str, Any]:
    return {
        "width": image.width,
        "height": image.height,
        "mode": image.mode,
        "hasAlpha": has_alpha(image),
        "aspectRatio": round(image.width / image.height, 6),
        "megapixels": round(image.width * image.height / 1_000_000, 6),
        "format": image.format,
    }


def dominant_colors(image: Image.Image, count: int) -> tuple[list[str], list[float]]:
    """k-means (OpenCV, fixed seed) over a thumbnail's opaque pixels; colours by share, largest first."""
    small = normalized(image).convert("RGBA")
    small.thumbnail((128, 128), Image.Resampling.BOX)
    pixels = np.asarray(small).reshape(-1, 4)
    samples = pixels[pixels[:, 3] >= 128][:, :3].astype(np.float32)
    if len(samples) == 0:
        return [], []
    k = min(count, len(np.unique(samples, axis=0)))
    cv2.setRNGSeed(12345)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    best = np.zeros((len(samples), 1), np.int32)  # filled in by kmeans (an output: no initial labels flag)
    _, labels, centers = cv2.kmeans(samples, k, best, criteria, 4, cv2.KMEANS_PP_CENTERS)
    shares = np.bincount(labels.ravel(), minlength=k) / len(samples)
    merged: dict[str, float] = {}
    for i in np.argsort(-shares):
        r, g, b = (int(v) for v in np.clip(np.round(centers[i]), 0, 255))
        key = f"#{r:02x}{g:02x}{b:02x}"
        merged[key] = merged.get(key, 0.0) + float(shares[i])
    ranked = sorted(merged.items(), key=lambda kv: -kv[1])
    return [c for c, _ in ranked], [round(s, 4) for _, s in ranked]


def ssim(a: Image.Image, b: Image.Image) -> tuple[float, Image.Image]:
    """Mean structural similarity of the luminance (gaussian window, sigma 1.5) and a difference mask."""
    x = np.asarray(a.convert("L"), dtype=np.float64)
    other = b.convert("L")
    if other.size != a.size:
        other = other.resize(a.size, Image.Resampling.LANCZOS)
    y = np.asarray(other, dtype=np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(m: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(m, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y, cov = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2, blur(x * y) - mu_x * mu_y
    similarity = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    difference = Image.fromarray(np.clip(np.round((1 - similarity) * 255), 0, 255).astype(np.uint8))
    return float(similarity.mean()), difference


def canny_edges(image: Image.Image, low: int, high: int) -> Image.Image:
    return Image.fromarray(cv2.Canny(np.asarray(image.convert("L")), low, high))


def as_box(x: float, y: float, width: float, height: float) -> dict[str, int]:
    return {"x": round(x), "y": round(y), "width": round(width), "height": round(height)}


@functools.lru_cache(maxsize=2)
def _cascade(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, name))
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load its bundled cascade {name}")
    return cascade


def detect_faces(image: Image.Image, min_size: float, neighbors: int, limit: int) -> list[dict[str, int]]:
    """Frontal faces, largest first, as {x, y, width, height} in the image's pixels."""
    gray = image.convert("L")
    scale = min(1.0, DETECT_MAX_SIDE / max(gray.size))
    if scale < 1:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                           Image.Resampling.BILINEAR)
    side = max(20, round(min(gray.size) * min_size))
    found = _cascade(FACE_CASCADE).detectMultiScale(cv2.equalizeHist(np.asarray(gray)), scaleFactor=1.1,
                                                    minNeighbors=neighbors, minSize=(side, side))
    boxes = [as_box(x / scale, y / scale, w / scale, h / scale) for x, y, w, h in found] if len(found) else []
    boxes.sort(key=lambda b: -b["width"] * b["height"])
    return boxes[:limit]


def blur_faces(image: Image.Image, faces: list[tuple[float, float, float, float]] | None, mode: str,
               strength: float, padding: float) -> tuple[Image.Image, list[dict[str, int]]]:
    if faces is None:
        found = detect_faces(image, 0.05, 5, 100)
        faces = [(b["x"], b["y"], b["width"], b["height"]) for b in found]
    else:
        found = [as_box(*face) for face in faces]
    rgb, alpha = split_alpha(image)
    hidden = rgb.copy()
    for x, y, w, h in faces:
        size = max(1.0, min(w, h))
        reach = max(2.0, strength * size / 3)
        # work on a margin around the padded box so the blur has real pixels to draw from
        dx, dy = w * padding + reach, h * padding + reach
        box = (max(0, round(x - dx)), max(0, round(y - dy)),
               min(rgb.width, round(x + w + dx)), min(rgb.height, round(y + h + dy)))
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        region = rgb.crop(box)
        if mode == "pixelate":
            region = pixelate_image(region, max(2, round(strength * size / 4)))
        else:
            region = region.filter(ImageFilter.GaussianBlur(reach))
        hidden.paste(region, box[:2])
    mask = boxes_mask(rgb.size, faces, padding, "ellipse", 0)
    return with_alpha(Image.composite(hidden, rgb, mask), alpha), found


def _focus(image: Image.Image, faces: list[dict[str, int]]) -> tuple[float, float]:
    """The point a crop should centre on: the middle of all faces, else the centroid of edge energy."""
    if faces:
        left = min(f["x"] for f in faces)
        top = min(f["y"] for f in faces)
        right = max(f["x"] + f["width"] for f in faces)
        bottom = max(f["y"] + f["height"] for f in faces)
        return (left + right) / 2, (top + bottom) / 2
    small = image.convert("L")
    scale = min(1.0, 256 / max(small.size))
    small = small.resize((max(1, round(small.width * scale)), max(1, round(small.height * scale))),
                         Image.Resampling.BILINEAR)
    gray = np.asarray(small, dtype=np.float32)
    energy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    total = float(energy.sum())
    if total <= 0:
        return image.width / 2, image.height / 2
    ys, xs = np.indices(energy.shape)
    cx, cy = float((xs * energy).sum()) / total, float((ys * energy).sum()) / total
    return (cx + 0.5) / scale, (cy + 0.5) / scale


def smart_crop(image: Image.Image, width: int, height: int) -> tuple[Image.Image, dict[str, int],
               list[dict[str, int]]]:
    faces = detect_faces(image, 0.05, 5, 100)
    ratio = width / height
    crop_w = min(image.width, round(image.height * ratio))
    crop_h = min(image.height, round(crop_w / ratio))
    cx, cy = _focus(image, faces)
    left = int(min(max(0, round(cx - crop_w / 2)), image.width - crop_w))
    top = int(min(max(0, round(cy - crop_h / 2)), image.height - crop_h))
    cropped = image.crop((left, top, left + crop_w, top + crop_h))
    cropped = cropped.resize((width, height), Image.Resampling.LANCZOS)
    return cropped, {"x": left, "y": top, "width": crop_w, "height": crop_h}, faces


# --- nodes ------------------------------------------------------------------------------------------


class ImageInfo(Node):
    type = "image.info"
    display_name = "Image info"
    description = "Reports the image's width, height, mode, transparency, aspect ratio and megapixels."
    inputs = (IMAGE_IN,)
    outputs = (Port("info", "json"), Port("width", "integer"), Port("height", "integer"))

    async def run(self, ctx: Context, *, image: Image.Image) -> dict[str, Any]:
        info = image_info(image)  # reads the header only: no pixel work to hand to the pool
        return {"info": info, "width": info["width"], "height": info["height"]}


class ImageDominantColors(Node):
    type = "image.dominant_colors"
    display_name = "Dominant colours"
    description = ("Finds the image's `count` main colours by k-means, as hex codes ordered by the share "
                   "they cover.")
    inputs = (IMAGE_IN,)
    params = (Param("count", "integer", default=5, min=1, max=16),)
    outputs = (Port("colors", "json", description="Hex codes, largest share first"),
               Port("shares", "json", description="Fraction of the opaque pixels each colour covers"))

    async def run(self, ctx: Context, *, image: Image.Image, count: int) -> dict[str, Any]:
        colors, shares = await ctx.run_cpu(dominant_colors, image, count)
        return {"colors": colors, "shares": shares}


class ImageSimilarity(Node):
    type = "image.similarity"
    display_name = "Image similarity (SSIM)"
    description = ("Scores how alike two images look (structural similarity, 1 identical) and maps where "
                   "they differ.")
    inputs = (Port("a", "image"), Port("b", "image",
                                       description="Resized to the size of `a` when they differ"))
    outputs = (Port("score", "number"), Port("difference", "mask",
                                             description="White where the images differ"))

    async def run(self, ctx: Context, *, a: Image.Image, b: Image.Image) -> dict[str, Any]:
        score, difference = await ctx.run_cpu(ssim, a, b)
        return {"score": score, "difference": difference}


class ImageCanny(Node):
    type = "image.canny"
    display_name = "Canny edges"
    description = ("Detects edges with the Canny algorithm; the result is white lines on black (a ControlNet "
                   "input).")
    inputs = (IMAGE_IN,)
    params = (
        Param("low", "integer", default=100, min=0, max=1000, description="Weaker edges are dropped"),
        Param("high", "integer", default=200, min=0, max=1000, description="Stronger edges are always kept"),
    )
    outputs = (Port("edges", "mask"),)

    async def run(self, ctx: Context, *, image: Image.Image, low: int, high: int) -> dict[str, Any]:
        if low > high:
            raise NodeError("`low` must not exceed `high`", code="invalid_param")
        return {"edges": await ctx.run_cpu(canny_edges, image, low, high)}


class ImageFaceDetect(Node):
    type = "image.face_detect"
    display_name = "Detect faces"
    description = "Finds frontal faces with OpenCV's Haar cascade and returns their boxes, largest first."
    inputs = (IMAGE_IN,)
    params = (
        Param("minSize", "number", default=0.05, min=0.01, max=1,
              description="Smallest face, as a fraction of the image's shorter side"),
        Param("neighbors", "integer", default=5, min=1, max=30,
              description="Higher finds fewer, surer faces"),
        Param("maxFaces", "integer", default=20, min=1, max=500),
    )
    outputs = (Port("faces", "boxes"), Port("count", "integer"))

    async def run(self, ctx: Context, *, image: Image.Image, minSize: float, neighbors: int,
                  maxFaces: int) -> dict[str, Any]:
        faces = await ctx.run_cpu(detect_faces, image, minSize, neighbors, maxFaces)
        return {"faces": faces, "count": len(faces)}


class ImageFaceBlur(Node):
    type = "image.face_blur"
    display_name = "Blur faces"
    description = ("Anonymises faces by blurring or pixelating an ellipse over each; detects them unless "
                   "`faces` is given.")
    inputs = (IMAGE_IN, Port("faces", "boxes", required=False, description="Boxes to hide (default: detect)"))
    params = (
        Param("mode", "text", default="blur", enum=("blur", "pixelate")),
        Param("strength", "number", default=0.6, min=0.05, max=1),
        Param("padding", "number", default=0.15, min=0, max=1, description="Grow each box by this fraction"),
    )
    outputs = (IMAGE_OUT, Port("faces", "boxes"))

    async def run(self, ctx: Context, *, image: Image.Image, mode: str, strength: float, padding: float,
                  faces: Any = None) -> dict[str, Any]:
        boxes = box_tuples(faces) if faces is not None else None
        hidden, found = await ctx.run_cpu(blur_faces, image, boxes, mode, strength, padding)
        return {"image": hidden, "faces": found}


class ImageSmartCrop(Node):
    type = "image.smart_crop"
    display_name = "Smart crop"
    description = ("Crops to the `width`:`height` aspect ratio around the faces (else the busiest region), "
                   "then scales to exactly `width`x`height`.")
    inputs = (IMAGE_IN,)
    params = (
        Param("width", "integer", default=512, min=1, max=8192),
        Param("height", "integer", default=512, min=1, max=8192),
    )
    outputs = (IMAGE_OUT, Port("crop", "json", description="The source rectangle {x, y, width, height}"),
               Port("faces", "boxes"))

    async def run(self, ctx: Context, *, image: Image.Image, width: int, height: int) -> dict[str, Any]:
        check_size(width, height)
        cropped, box, faces = await ctx.run_cpu(smart_crop, image, width, height)
        return {"image": cropped, "crop": box, "faces": faces}


def nodes() -> list[type[Node]]:
    return [ImageInfo, ImageDominantColors, ImageSimilarity, ImageCanny, ImageFaceDetect, ImageFaceBlur,
            ImageSmartCrop]
