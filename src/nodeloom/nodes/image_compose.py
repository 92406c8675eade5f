"""The image composition pack: blending and pasting, generated images (solid, gradient), text and
watermarks, frames (border, rounded corners) and contact sheets (grid)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes.image import (
    IMAGE_IN,
    IMAGE_OUT,
    POSITIONS,
    RGBA,
    anchor_offset,
    as_mask,
    check_size,
    color_param,
    has_alpha,
    normalized,
    pad_image,
    parse_color,
    split_alpha,
    with_alpha,
)

BLEND_MODES = ("normal", "multiply", "screen", "overlay", "soft-light", "add", "subtract", "difference",
               "darken", "lighten")


def _opaque_result(original: Image.Image, rgba: Image.Image) -> Image.Image:
    """Give back RGB when the input had no transparency, so opaque stays opaque."""
    return rgba if has_alpha(original) else rgba.convert("RGB")


def _paint(base: Image.Image, color: RGBA, mask: Image.Image) -> None:
    """Paint `color` onto an RGBA `base` through an L `mask` (no dark fringes at anti-aliased edges)."""
    layer = Image.new("RGBA", base.size, color)
    layer.putalpha(mask if color[3] == 255 else mask.point(lambda v: v * color[3] // 255))
    base.alpha_composite(layer)


# --- pure functions (run in the process pool) ---------------------------------------------------------


def blend_images(image: Image.Image, layer: Image.Image, mode: str, opacity: float) -> Image.Image:
    base_rgb, base_alpha = split_alpha(image)
    top = layer.convert("RGBA")
    if top.size != image.size:
        top = top.resize(image.size, Image.Resampling.LANCZOS)
    b = np.asarray(base_rgb, dtype=np.float32) / 255
    t = np.asarray(top, dtype=np.float32) / 255
    layer_rgb, layer_alpha = t[..., :3], t[..., 3:]
    blended = {
        "normal": lambda: layer_rgb,
        "multiply": lambda: b * layer_rgb,
        "screen": lambda: 1 - (1 - b) * (1 - layer_rgb),
        "overlay": lambda: np.where(b < 0.5, 2 * b * layer_rgb, 1 - 2 * (1 - b) * (1 - layer_rgb)),
        "soft-light": lambda: (1 - 2 * layer_rgb) * b * b + 2 * layer_rgb * b,
        "add": lambda: np.minimum(1, b + layer_rgb),
        "subtract": lambda: np.maximum(0, b - layer_rgb),
        "difference": lambda: np.abs(b - layer_rgb),
        "darken": lambda: np.minimum(b, layer_rgb),
        "lighten": lambda: np.maximum(b, layer_rgb),
    }[mode]()
    weight = layer_alpha * opacity
    mixed = b * (1 - weight) + blended * weight
    return with_alpha(Image.fromarray(np.round(mixed * 255).astype(np.uint8)), base_alpha)


def composite_images(image: Image.Image, overlay: Image.Image, mask: Image.Image | None, x: int,
                     y: int) -> Image.Image:
    base = normalized(image).convert("RGBA")
    top = overlay.convert("RGBA")
    if mask is not None:
        top.putalpha(ImageChops.multiply(top.getchannel("A"), as_mask(mask, top.size)))
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    layer.paste(top, (x, y))
    return _opaque_result(image, Image.alpha_composite(base, layer))


def apply_mask(image: Image.Image, mask: Image.Image) -> Image.Image:
    out = normalized(image).convert("RGBA")
    out.putalpha(as_mask(mask, out.size))
    return out


def solid_image(width: int, height: int, color: RGBA) -> Image.Image:
    if color[3] < 255:
        return Image.new("RGBA", (width, height), color)
    return Image.new("RGB", (width, height), color[:3])


def gradient_image(width: int, height: int, start: RGBA, end: RGBA, direction: str) -> Image.Image:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs, ys = (xs + 0.5) / width, (ys + 0.5) / height
    if direction == "horizontal":
        t = xs
    elif direction == "vertical":
        t = ys
    elif direction == "diagonal":
        t = (xs + ys) / 2
    else:  # radial: the centre has `start`, the corners `end`
        t = np.sqrt((xs - 0.5) ** 2 + (ys - 0.5) ** 2) / np.sqrt(0.5)
    a, b = np.array(start, np.float32), np.array(end, np.float32)
    pixels = a + (b - a) * np.clip(t, 0, 1)[..., None]
    rgba = Image.fromarray(np.round(pixels).astype(np.uint8))
    return rgba if min(start[3], end[3]) < 255 else rgba.convert("RGB")


@dataclass(frozen=True)
class TextStyle:
    size: int
    color: RGBA
    position: str
    margin: int
    stroke_width: int
    stroke_color: RGBA
    background: RGBA | None
    wrap: bool


#: what `ImageFont.load_default(size)` answers (a bitmap font only where Pillow lacks FreeType)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _break_word(word: str, font: Font, max_width: float) -> list[str]:
    pieces, current = [], ""
    for ch in word:
        if current and font.getlength(current + ch) > max_width:
            pieces.append(current)
            current = ""
        current += ch
    return pieces + [current]


def wrap_text(text: str, font: Font, max_width: float) -> str:
    """Greedy word wrap to `max_width` pixels; words wider than a line are broken between characters."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
            *full, line = _break_word(word, font, max_width)
            lines.extend(full)
        lines.append(line)
    return "\n".join(lines)


def draw_text(image: Image.Image, text: str, style: TextStyle) -> Image.Image:
    base = normalized(image).convert("RGBA")
    font = ImageFont.load_default(style.size)
    body = wrap_text(text, font, max(1, base.width - 2 * style.margin)) if style.wrap else text
    align = next((side for side in ("left", "right") if style.position.endswith(side)), "center")
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = measure.multiline_textbbox((0, 0), body, font=font, align=align,
                                                          stroke_width=style.stroke_width)
    ox, oy = anchor_offset(style.position, base.width - 2 * style.margin - (right - left),
                           base.height - 2 * style.margin - (bottom - top))
    x, y = style.margin + ox - left, style.margin + oy - top
    if style.background is not None:
        pad = max(2, style.size // 4)
        box = Image.new("L", base.size, 0)
        ImageDraw.Draw(box).rectangle((x + left - pad, y + top - pad, x + right + pad, y + bottom + pad),
                                      fill=255)
        _paint(base, style.background, box)
    if style.stroke_width:
        outline = Image.new("L", base.size, 0)
        ImageDraw.Draw(outline).multiline_text((x, y), body, font=font, fill=255, align=align,
                                               stroke_width=style.stroke_width, stroke_fill=255)
        _paint(base, style.stroke_color, outline)
    glyphs = Image.new("L", base.size, 0)
    ImageDraw.Draw(glyphs).multiline_text((x, y), body, font=font, fill=255, align=align)
    _paint(base, style.color, glyphs)
    return _opaque_result(image, base)


def _text_mark(text: str, color: RGBA, width: int) -> Image.Image:
    """`text` rendered in `color`, sized so that it is about `width` pixels wide."""
    probe = ImageFont.load_default(64)
    size = max(6, min(2000, round(64 * width / max(1.0, probe.getlength(text)))))
    font = ImageFont.load_default(size)
    left, top, right, bottom = font.getbbox(text)
    glyphs = Image.new("L", (max(1, int(right - left)), max(1, int(bottom - top))), 0)  # whole pixels already
    ImageDraw.Draw(glyphs).text((-left, -top), text, font=font, fill=255)
    mark = Image.new("RGBA", glyphs.size, color)
    mark.putalpha(glyphs.point(lambda v: v * color[3] // 255))
    return mark


def watermark_image(image: Image.Image, mark: Image.Image | None, text: str, color: RGBA, opacity: float,
                    position: str, scale: float, margin: float) -> Image.Image:
    base = normalized(image).convert("RGBA")
    width = max(1, round(base.width * scale))
    if mark is not None:
        stamp = mark.convert("RGBA")
        height = max(1, round(stamp.height * width / stamp.width))
        stamp = stamp.resize((width, height), Image.Resampling.LANCZOS)
    else:
        stamp = _text_mark(text, color, width)
    stamp.putalpha(stamp.getchannel("A").point(lambda v: round(v * opacity)))
    gap = round(margin * min(base.size))
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    if position == "tile":
        # at least 8 px between stamps, so a sliver of a mark cannot ask for millions of pastes
        step_x = stamp.width + max(gap, stamp.width // 2, 8)
        step_y = stamp.height + max(gap, stamp.height, 8)
        for row, top in enumerate(range(gap, base.height, step_y)):
            for left in range(gap - (step_x // 2 if row % 2 else 0), base.width, step_x):
                layer.paste(stamp, (left, top))
    else:
        ox, oy = anchor_offset(position, base.width - 2 * gap - stamp.width,
                               base.height - 2 * gap - stamp.height)
        layer.paste(stamp, (gap + ox, gap + oy))
    return _opaque_result(image, Image.alpha_composite(base, layer))


def round_corners(image: Image.Image, radius: int) -> Image.Image:
    out = normalized(image).convert("RGBA")
    r = min(radius, out.width // 2, out.height // 2)
    alpha = np.array(out.getchannel("A"), dtype=np.float32)
    if r > 0:
        ys, xs = np.ogrid[:r, :r]
        distance = np.sqrt((xs + 0.5 - r) ** 2 + (ys + 0.5 - r) ** 2)
        corner = np.clip(r - distance + 0.5, 0, 1)  # anti-aliased quarter disc, top-left
        alpha[:r, :r] *= corner
        alpha[:r, -r:] *= corner[:, ::-1]
        alpha[-r:, :r] *= corner[::-1, :]
        alpha[-r:, -r:] *= corner[::-1, ::-1]
    out.putalpha(Image.fromarray(np.round(alpha).astype(np.uint8)))
    return out


def grid_images(images: list[Image.Image], columns: int, gap: int, color: RGBA) -> Image.Image:
    cell_w, cell_h = max(i.width for i in images), max(i.height for i in images)
    rows = -(-len(images) // columns)
    mode = "RGBA" if color[3] < 255 or any(has_alpha(i) for i in images) else "RGB"
    sheet = Image.new(mode, (columns * cell_w + (columns - 1) * gap, rows * cell_h + (rows - 1) * gap), color)
    for n, tile in enumerate(images):
        row, col = divmod(n, columns)
        ox, oy = anchor_offset("center", cell_w - tile.width, cell_h - tile.height)
        source = normalized(tile).convert(mode)
        sheet.paste(source, (col * (cell_w + gap) + ox, row * (cell_h + gap) + oy),
                    source if mode == "RGBA" else None)
    return sheet


# --- nodes ------------------------------------------------------------------------------------------


class ImageBlend(Node):
    type = "image.blend"
    display_name = "Blend images"
    description = ("Blends `layer` over `image` with a Photoshop-style `mode` at `opacity`; the layer is "
                   "stretched to fit.")
    inputs = (IMAGE_IN, Port("layer", "image"))
    params = (
        Param("mode", "text", default="normal", enum=BLEND_MODES),
        Param("opacity", "number", default=0.5, min=0, max=1),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, layer: Image.Image, mode: str,
                  opacity: float) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(blend_images, image, layer, mode, opacity)}


class ImageComposite(Node):
    type = "image.composite"
    display_name = "Composite (paste)"
    description = ("Pastes `overlay` onto `image` with its top-left corner at (`x`, `y`), through `mask` "
                   "when given, else through the overlay's own transparency.")
    inputs = (IMAGE_IN, Port("overlay", "image"), Port("mask", "mask", required=False))
    params = (
        Param("x", "integer", default=0, min=-16384, max=16384),
        Param("y", "integer", default=0, min=-16384, max=16384),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, overlay: Image.Image, x: int, y: int,
                  mask: Image.Image | None = None) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(composite_images, image, overlay, mask, x, y)}


class ImageApplyMask(Node):
    type = "image.apply_mask"
    display_name = "Apply mask as transparency"
    description = "Uses `mask` as the image's alpha channel: white stays opaque, black becomes transparent."
    inputs = (IMAGE_IN, Port("mask", "mask"))
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, mask: Image.Image) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(apply_mask, image, mask)}


class ImageSolid(Node):
    type = "image.solid"
    display_name = "Solid colour"
    description = "Creates an image of one colour (RGBA when the colour is translucent)."
    params = (
        Param("width", "integer", default=512, min=1, max=8192),
        Param("height", "integer", default=512, min=1, max=8192),
        color_param(default="#ffffff"),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, width: int, height: int, color: str) -> dict[str, Any]:
        rgba = parse_color(color)
        check_size(width, height)
        return {"image": await ctx.run_cpu(solid_image, width, height, rgba)}


class ImageGradient(Node):
    type = "image.gradient"
    display_name = "Gradient"
    description = ("Creates a linear (horizontal, vertical, diagonal) or radial gradient from `start` to "
                   "`end`.")
    params = (
        Param("width", "integer", default=512, min=1, max=8192),
        Param("height", "integer", default=512, min=1, max=8192),
        color_param("start", "#000000"),
        color_param("end", "#ffffff"),
        Param("direction", "text", default="vertical", enum=("horizontal", "vertical", "diagonal", "radial")),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, width: int, height: int, start: str, end: str,
                  direction: str) -> dict[str, Any]:
        a, b = parse_color(start, name="start"), parse_color(end, name="end")
        check_size(width, height)
        return {"image": await ctx.run_cpu(gradient_image, width, height, a, b, direction)}


class ImageTextOverlay(Node):
    type = "image.text_overlay"
    display_name = "Text overlay"
    description = ("Writes `text` on the image at `position`, wrapped to the width, with optional outline "
                   "and backdrop.")
    inputs = (IMAGE_IN, Port("text", "text"))
    params = (
        Param("size", "integer", default=32, min=6, max=1000, description="Font size in pixels"),
        color_param(default="#ffffff"),
        Param("position", "text", default="bottom", enum=POSITIONS),
        Param("margin", "integer", default=16, min=0, max=4096),
        Param("strokeWidth", "integer", default=0, min=0, max=50, description="Outline thickness"),
        color_param("strokeColor", "#000000"),
        color_param("background", "", description="A box behind the text (empty: none)"),
        Param("wrap", "boolean", default=True, description="Wrap long lines to the image width"),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, text: str, size: int, color: str, position: str,
                  margin: int, strokeWidth: int, strokeColor: str, background: str,
                  wrap: bool) -> dict[str, Any]:
        if len(text) > 10_000:
            raise NodeError("text overlays are limited to 10,000 characters", code="invalid_input")
        style = TextStyle(size=size, color=parse_color(color), position=position, margin=margin,
                          stroke_width=strokeWidth, stroke_color=parse_color(strokeColor, name="strokeColor"),
                          background=parse_color(background, name="background") if background else None,
                          wrap=wrap)
        return {"image": await ctx.run_cpu(draw_text, image, text, style)}


class ImageWatermark(Node):
    type = "image.watermark"
    display_name = "Watermark"
    description = ("Stamps a logo (`mark`) or a `text` onto the image at a corner, the centre, or tiled all "
                   "over.")
    inputs = (IMAGE_IN, Port("mark", "image", required=False), Port("text", "text", required=False))
    params = (
        Param("opacity", "number", default=0.35, min=0, max=1),
        Param("position", "text", default="bottom-right", enum=(*POSITIONS, "tile")),
        Param("scale", "number", default=0.2, min=0.01, max=1,
              description="Mark width as a fraction of the image"),
        Param("margin", "number", default=0.02, min=0, max=0.5,
              description="Gap to the edges, fraction of the image"),
        color_param(default="#ffffff", description="Colour of a text mark"),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, opacity: float, position: str, scale: float,
                  margin: float, color: str, mark: Image.Image | None = None,
                  text: str | None = None) -> dict[str, Any]:
        if mark is None and not text:
            raise NodeError("give a `mark` image or a `text` to stamp", code="missing_input")
        rgba = parse_color(color)
        stamped = await ctx.run_cpu(watermark_image, image, mark, text or "", rgba, opacity, position, scale,
                                    margin)
        return {"image": stamped}


class ImageBorder(Node):
    type = "image.border"
    display_name = "Border"
    description = "Frames the image with a border `width` pixels wide in `color`."
    inputs = (IMAGE_IN,)
    params = (Param("width", "integer", default=16, min=1, max=4096), color_param(default="#ffffff"))
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, width: int, color: str) -> dict[str, Any]:
        rgba = parse_color(color)
        check_size(image.width + 2 * width, image.height + 2 * width)
        return {"image": await ctx.run_cpu(pad_image, image, (width, width, width, width), rgba)}


class ImageRoundedCorners(Node):
    type = "image.rounded_corners"
    display_name = "Rounded corners"
    description = ("Makes the corners transparent along anti-aliased arcs of `radius` pixels (the result is "
                   "RGBA).")
    inputs = (IMAGE_IN,)
    params = (Param("radius", "integer", default=32, min=0, max=8192),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, radius: int) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(round_corners, image, radius)}


class ImageGrid(Node):
    type = "image.grid"
    display_name = "Image grid"
    description = ("Lays a list of images out in a grid of equal cells, row by row, each image centred in "
                   "its cell.")
    inputs = (Port("images", "list<image>"),)
    params = (
        Param("columns", "integer", default=0, min=0, max=64, description="0 picks a near-square layout"),
        Param("gap", "integer", default=0, min=0, max=1024),
        color_param(default="#ffffff", description="Background colour"),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, images: list[Image.Image], columns: int, gap: int,
                  color: str) -> dict[str, Any]:
        rgba = parse_color(color)
        tiles = [i for i in images if i is not None]
        if not tiles:
            raise NodeError("the grid needs at least one image", code="invalid_input")
        cols = min(columns or int(np.ceil(np.sqrt(len(tiles)))), len(tiles))
        rows = -(-len(tiles) // cols)
        check_size(cols * max(i.width for i in tiles) + (cols - 1) * gap,
                   rows * max(i.height for i in tiles) + (rows - 1) * gap)
        return {"image": await ctx.run_cpu(grid_images, tiles, cols, gap, rgba)}


def nodes() -> list[type[Node]]:
    return [ImageBlend, ImageComposite, ImageApplyMask, ImageSolid, ImageGradient, ImageTextOverlay,
            ImageWatermark, ImageBorder, ImageRoundedCorners, ImageGrid]
