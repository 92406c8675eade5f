"""The mask pack: masks are mode "L" images, white (255) selected and black (0) not.

Masks come from alpha channels, colours or face boxes, are reshaped (grow, shrink, feather) and combined,
and feed `image.composite`, `image.apply_mask` and `image.inpaint`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes.image import IMAGE_IN, as_mask, box_tuples, color_param, has_alpha, parse_color

MASK_IN = Port("mask", "mask")
MASK_OUT = Port("mask", "mask")

# --- pure functions (run in the process pool) ---------------------------------------------------------


def invert_mask(mask: Image.Image) -> Image.Image:
    return ImageOps.invert(as_mask(mask))


def morph_mask(mask: Image.Image, radius: int, grow: bool) -> Image.Image:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    pixels = np.asarray(as_mask(mask))
    changed = cv2.dilate(pixels, kernel) if grow else cv2.erode(pixels, kernel)
    return Image.fromarray(changed)


def feather_mask(mask: Image.Image, radius: float) -> Image.Image:
    return as_mask(mask).filter(ImageFilter.GaussianBlur(radius))


def alpha_mask(image: Image.Image) -> Image.Image:
    if not has_alpha(image):
        return Image.new("L", image.size, 255)
    return image.convert("RGBA").getchannel("A")


def color_mask(image: Image.Image, rgb: tuple[int, int, int], tolerance: float) -> Image.Image:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    distance = np.sqrt(((pixels - np.array(rgb, np.float32)) ** 2).sum(axis=-1))
    return Image.fromarray(np.where(distance <= tolerance, 255, 0).astype(np.uint8))


def combine_masks(a: Image.Image, b: Image.Image, op: str) -> Image.Image:
    first = as_mask(a)
    second = as_mask(b, first.size)
    combine = {"union": ImageChops.lighter, "intersect": ImageChops.darker,
               "subtract": ImageChops.subtract, "difference": ImageChops.difference}[op]
    return combine(first, second)


def boxes_mask(size: tuple[int, int], boxes: list[tuple[float, float, float, float]], padding: float,
               shape: str,
               feather: float) -> Image.Image:
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for x, y, w, h in boxes:
        px, py = w * padding, h * padding
        box = (x - px, y - py, x + w + px - 1, y + h + py - 1)
        if shape == "ellipse":
            draw.ellipse(box, fill=255)
        else:
            draw.rectangle(box, fill=255)
    return mask.filter(ImageFilter.GaussianBlur(feather)) if feather > 0 else mask


# --- nodes ------------------------------------------------------------------------------------------


class MaskInvert(Node):
    type = "mask.invert"
    display_name = "Invert mask"
    description = "Swaps selected and unselected: white becomes black and black becomes white."
    inputs = (MASK_IN,)
    outputs = (MASK_OUT,)

    async def run(self, ctx: Context, *, mask: Image.Image) -> dict[str, Any]:
        return {"mask": await ctx.run_cpu(invert_mask, mask)}


class MaskGrow(Node):
    type = "mask.grow"
    display_name = "Grow mask"
    description = "Expands the white area by `radius` pixels in every direction (morphological dilation)."
    inputs = (MASK_IN,)
    params = (Param("radius", "integer", default=8, min=1, max=512),)
    outputs = (MASK_OUT,)

    async def run(self, ctx: Context, *, mask: Image.Image, radius: int) -> dict[str, Any]:
        return {"mask": await ctx.run_cpu(morph_mask, mask, radius, True)}


class MaskShrink(Node):
    type = "mask.shrink"
    display_name = "Shrink mask"
    description = "Pulls the white area in by `radius` pixels from every edge (morphological erosion)."
    inputs = (MASK_IN,)
    params = (Param("radius", "integer", default=8, min=1, max=512),)
    outputs = (MASK_OUT,)

    async def run(self, ctx: Context, *, mask: Image.Image, radius: int) -> dict[str, Any]:
        return {"mask": await ctx.run_cpu(morph_mask, mask, radius, False)}


class MaskFeather(Node):
    type = "mask.feather"
    display_name = "Feather mask"
    description = ("Softens the mask's edges with a gaussian blur of `radius` pixels, for seamless "
                   "compositing.")
    inputs = (MASK_IN,)
    params = (Param("radius", "number", default=8, min=0.5, max=256),)
    outputs = (MASK_OUT,)

    async def run(self, ctx: Context, *, mask: Image.Image, radius: float) -> dict[str, Any]:
        return {"mask": await ctx.run_cpu(feather_mask, mask, radius)}


class MaskFromAlpha(Node):
    type = "mask.from_alpha"
    display_name = "Mask from transparency"
    description = "Takes the image's alpha channel as a mask (all white for an opaque image)."
    inputs = (IMAGE_IN,)
    outputs = (MASK_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image) -> dict[str, Any]:
        return {"mask": await ctx.run_cpu(alpha_mask, image)}


class MaskFromColor(Node):
    type = "mask.from_color"
    display_name = "Mask from colour"
    description = "Selects the pixels within `tolerance` (RGB distance) of `color`, as for a green screen."
    inputs = (IMAGE_IN,)
    params = (color_param(default="#00ff00"), Param("tolerance", "number", default=60, min=0, max=442))
    outputs = (MASK_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, color: str, tolerance: float) -> dict[str, Any]:
        rgb = parse_color(color)[:3]
        return {"mask": await ctx.run_cpu(color_mask, image, rgb, tolerance)}


class MaskCombine(Node):
    type = "mask.combine"
    display_name = "Combine masks"
    description = ("Combines two masks pixel by pixel: union, intersection, `a` minus `b`, or their "
                   "difference.")
    inputs = (Port("a", "mask"), Port("b", "mask", description="Resized to the size of `a` if needed"))
    params = (Param("op", "text", default="union", enum=("union", "intersect", "subtract", "difference")),)
    outputs = (MASK_OUT,)

    async def run(self, ctx: Context, *, a: Image.Image, b: Image.Image, op: str) -> dict[str, Any]:
        return {"mask": await ctx.run_cpu(combine_masks, a, b, op)}


class MaskFromBoxes(Node):
    type = "mask.from_boxes"
    display_name = "Mask from boxes"
    description = ("Draws boxes (such as detected faces) as white rectangles or ellipses on a mask the size "
                   "of `image`.")
    inputs = (Port("image", "image", description="Gives the mask its size"), Port("boxes", "boxes"))
    params = (
        Param("padding", "number", default=0, min=0, max=2,
              description="Grow each box by this fraction of its size"),
        Param("shape", "text", default="rectangle", enum=("rectangle", "ellipse")),
        Param("feather", "number", default=0, min=0, max=256,
              description="Soften the edges by this many pixels"),
    )
    outputs = (MASK_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, boxes: Any, padding: float, shape: str,
                  feather: float) -> dict[str, Any]:
        return {"mask": await ctx.run_cpu(boxes_mask, image.size, box_tuples(boxes), padding, shape, feather)}


def nodes() -> list[type[Node]]:
    return [MaskInvert, MaskGrow, MaskShrink, MaskFeather, MaskFromAlpha, MaskFromColor, MaskCombine,
            MaskFromBoxes]
