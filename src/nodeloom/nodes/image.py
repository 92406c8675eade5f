"""The image pack: geometry (crop, pad, rotate, flip, fit, perspective, tiles) and formats, plus the
pixel helpers the other image packs (`image_adjust`, `image_compose`, `image_mask`, `image_analyze`) share.

Images are `PIL.Image.Image` values and masks are mode "L" images. Pixel work runs through
`ctx.run_cpu` as module-level pure functions, so a process pool can pickle both them and their arguments.
"""

from __future__ import annotations

import io
import math
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageColor, ImageOps

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port

#: results larger than this are refused before any pixel is allocated
MAX_PIXELS = 64_000_000
MAX_SIDE = 16384

RGBA = tuple[int, int, int, int]

IMAGE_IN = Port("image", "image")
IMAGE_OUT = Port("image", "image")
POSITIONS = ("top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom",
             "bottom-right")


def color_param(name: str = "color", default: str = "#000000", description: str = "") -> Param:
    return Param(name, "text", default=default, max_length=64, extra={"format": "color"},
                 description=description or "A colour: #rgb, #rrggbb, #rrggbbaa or a CSS name")


def parse_color(value: str, *, name: str = "color") -> RGBA:
    """An RGBA tuple, or a NodeError naming the param (raised before any work is sent to the pool)."""
    try:
        color = ImageColor.getcolor(str(value), "RGBA")
        assert isinstance(color, tuple)  # mode "RGBA" always answers (r, g, b, a), never a palette index
        r, g, b, a = color
    except (ValueError, TypeError) as exc:
        raise NodeError(f"{name}: '{value}' is not a colour (use #rrggbb, #rrggbbaa or a CSS name)",
                        code="invalid_param") from exc
    return r, g, b, a


def check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise NodeError(f"the result would be empty ({width}x{height})", code="invalid_param")
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise NodeError(f"the result would be {width}x{height}, over the limit of {MAX_PIXELS // 1_000_000} "
                        f"megapixels and {MAX_SIDE} pixels a side", code="image_too_large")


def has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands() or "transparency" in image.info


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """The colour part as RGB and the alpha channel (None when the image is opaque by mode)."""
    if image.mode == "RGB":
        return image, None
    if has_alpha(image):
        rgba = image.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    return image.convert("RGB"), None


def with_alpha(rgb: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is None:
        return rgb
    out = rgb.convert("RGBA")
    out.putalpha(alpha if alpha.size == out.size else alpha.resize(out.size, Image.Resampling.BILINEAR))
    return out


def normalized(image: Image.Image) -> Image.Image:
    """The image in one of the modes every operation handles: L, RGB or RGBA."""
    if image.mode in ("L", "RGB", "RGBA"):
        return image
    return image.convert("RGBA" if has_alpha(image) else "RGB")


def as_mask(image: Image.Image, size: tuple[int, int] | None = None) -> Image.Image:
    """A mode "L" mask (an image's luminance when it is not one already), resized to `size` if given."""
    mask = image if image.mode == "L" else image.convert("L")
    if size is not None and mask.size != size:
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return mask


def canvas_mode(image: Image.Image, rgba: RGBA) -> str:
    return "RGBA" if has_alpha(image) or rgba[3] < 255 else "RGB"


def anchor_offset(position: str, free_x: float, free_y: float) -> tuple[int, int]:
    """Where a box goes inside a larger one, given the free space on each axis and a POSITIONS name."""
    fx = 0.0 if position.endswith("left") else 1.0 if position.endswith("right") else 0.5
    fy = 0.0 if position.startswith("top") else 1.0 if position.startswith("bottom") else 0.5
    return round(free_x * fx), round(free_y * fy)


def box_tuples(boxes: Any) -> list[tuple[float, float, float, float]]:
    """Boxes (`{x, y, width, height}` objects) as tuples; a malformed entry is a NodeError."""
    out = []
    for i, box in enumerate(boxes or []):
        try:
            x, y, w, h = (float(box[k]) for k in ("x", "y", "width", "height"))
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeError(f"boxes[{i}] must be an object with numeric x, y, width and height",
                            code="invalid_input") from exc
        out.append((x, y, w, h))
    return out


# --- pure functions (run in the process pool) ---------------------------------------------------------


def crop_image(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    return image.crop(box)


def pad_image(image: Image.Image, sides: tuple[int, int, int, int], rgba: RGBA) -> Image.Image:
    top, right, bottom, left = sides
    mode = canvas_mode(image, rgba)
    canvas = Image.new(mode, (image.width + left + right, image.height + top + bottom), rgba)
    canvas.paste(image.convert(mode), (left, top))
    return canvas


def rotate_image(image: Image.Image, angle: float, expand: bool, rgba: RGBA) -> Image.Image:
    quarter_turns = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
                     270: Image.Transpose.ROTATE_270}
    turn = angle % 360
    if turn == 0:
        return image.copy()
    if turn in quarter_turns and (expand or turn == 180 or image.width == image.height):
        return image.transpose(quarter_turns[int(turn)])  # lossless
    mode = canvas_mode(image, rgba)
    source = image.convert(mode)
    return source.rotate(angle, resample=Image.Resampling.BICUBIC, expand=expand,
                         fillcolor=rgba if mode == "RGBA" else rgba[:3])


def flip_image(image: Image.Image, direction: str) -> Image.Image:
    if direction == "horizontal":
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if direction == "vertical":
        return image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return image.transpose(Image.Transpose.ROTATE_180)


def fit_image(image: Image.Image, width: int, height: int, position: str) -> Image.Image:
    centering = anchor_offset(position, 100, 100)
    return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS,
                        centering=(centering[0] / 100, centering[1] / 100))


def thumbnail_image(image: Image.Image, width: int, height: int) -> Image.Image:
    thumb = image.copy()
    thumb.thumbnail((width, height), Image.Resampling.LANCZOS)
    return thumb


def warp_perspective(image: Image.Image, corners: list[tuple[float, float]], width: int,
                     height: int) -> Image.Image:
    source = normalized(image)
    quad = np.array([(x * source.width, y * source.height) for x, y in corners], dtype=np.float32)
    tl, tr, br, bl = quad
    edge = np.linalg.norm
    width = width or max(1, round(max(edge(tr - tl), edge(br - bl))))  # 0: as long as the quad's edges
    height = height or max(1, round(max(edge(bl - tl), edge(br - tr))))
    target = np.array([(0, 0), (width, 0), (width, height), (0, height)], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad, target)
    warped = cv2.warpPerspective(np.asarray(source), matrix, (width, height), flags=cv2.INTER_CUBIC,
                                 borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(warped)


def tile_boxes(width: int, height: int, rows: int, columns: int,
               overlap: int) -> list[tuple[int, int, int, int]]:
    xs = [round(i * width / columns) for i in range(columns + 1)]
    ys = [round(j * height / rows) for j in range(rows + 1)]
    return [(max(0, xs[i] - overlap), max(0, ys[j] - overlap), min(width, xs[i + 1] + overlap),
             min(height, ys[j + 1] + overlap)) for j in range(rows) for i in range(columns)]


def cut_tiles(image: Image.Image, boxes: list[tuple[int, int, int, int]]) -> list[Image.Image]:
    return [image.crop(box) for box in boxes]


def encode_roundtrip(image: Image.Image, fmt: str, quality: int) -> tuple[Image.Image, int]:
    """Encode as `fmt` and decode again, so the result carries the real compression artefacts."""
    source = image
    if fmt == "jpeg":
        rgb, alpha = split_alpha(image) if image.mode != "L" else (image, None)
        if alpha is not None:
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(rgb, (0, 0), alpha)
            rgb = flat
        source = rgb
    elif image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        source = image.convert("RGBA" if has_alpha(image) else "RGB")
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": quality} if fmt in ("jpeg", "webp") else {"optimize": True}
    source.save(buffer, format=fmt.upper(), **options)
    encoded = buffer.getvalue()
    with Image.open(io.BytesIO(encoded)) as decoded:
        decoded.load()
        return decoded.copy(), len(encoded)


def strip_metadata(image: Image.Image, keep_color_profile: bool) -> Image.Image:
    clean = image.copy()
    kept = ("transparency", "icc_profile") if keep_color_profile else ("transparency",)
    clean.info = {k: v for k, v in image.info.items() if k in kept}
    return clean


# --- nodes ------------------------------------------------------------------------------------------


class ImageCrop(Node):
    type = "image.crop"
    display_name = "Crop image"
    description = ("Cuts out a rectangle given in pixels or percent of the image; the box is clipped to the "
                   "image.")
    inputs = (IMAGE_IN,)
    params = (
        Param("x", "number", default=0, min=0, description="Left edge"),
        Param("y", "number", default=0, min=0, description="Top edge"),
        Param("width", "number", default=512, min=0.01, description="Width of the box"),
        Param("height", "number", default=512, min=0.01, description="Height of the box"),
        Param("unit", "text", default="px", enum=("px", "percent")),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, x: float, y: float, width: float, height: float,
                  unit: str) -> dict[str, Any]:
        sx, sy = (image.width / 100, image.height / 100) if unit == "percent" else (1.0, 1.0)
        left, top = round(x * sx), round(y * sy)
        right, bottom = min(image.width, round((x + width) * sx)), min(image.height, round((y + height) * sy))
        if right <= left or bottom <= top:
            raise NodeError(f"the crop box lies outside the {image.width}x{image.height} image",
                            code="invalid_param")
        return {"image": await ctx.run_cpu(crop_image, image, (left, top, right, bottom))}


class ImagePad(Node):
    type = "image.pad"
    display_name = "Pad image"
    description = ("Adds a band of solid colour on each side of the image (a transparent colour gives an "
                   "RGBA result).")
    inputs = (IMAGE_IN,)
    params = (
        Param("top", "integer", default=0, min=0, max=8192),
        Param("right", "integer", default=0, min=0, max=8192),
        Param("bottom", "integer", default=0, min=0, max=8192),
        Param("left", "integer", default=0, min=0, max=8192),
        color_param(default="#000000"),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, top: int, right: int, bottom: int, left: int,
                  color: str) -> dict[str, Any]:
        rgba = parse_color(color)
        check_size(image.width + left + right, image.height + top + bottom)
        return {"image": await ctx.run_cpu(pad_image, image, (top, right, bottom, left), rgba)}


class ImageRotate(Node):
    type = "image.rotate"
    display_name = "Rotate image"
    description = ("Rotates counter-clockwise by `angle` degrees; quarter turns are lossless, other angles "
                   "fill the uncovered corners with `color`.")
    inputs = (IMAGE_IN,)
    params = (
        Param("angle", "number", default=90, min=-360, max=360),
        Param("expand", "boolean", default=True, description="Grow the canvas so nothing is cut off"),
        color_param(default="#00000000"),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, angle: float, expand: bool,
                  color: str) -> dict[str, Any]:
        rgba = parse_color(color)
        if expand:
            cos, sin = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
            check_size(math.ceil(image.width * cos + image.height * sin),
                       math.ceil(image.width * sin + image.height * cos))
        return {"image": await ctx.run_cpu(rotate_image, image, angle, expand, rgba)}


class ImageFlip(Node):
    type = "image.flip"
    display_name = "Flip image"
    description = "Mirrors the image left-to-right, top-to-bottom, or both."
    inputs = (IMAGE_IN,)
    params = (Param("direction", "text", default="horizontal", enum=("horizontal", "vertical", "both")),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, direction: str) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(flip_image, image, direction)}


class ImageFit(Node):
    type = "image.fit"
    display_name = "Fit image (cover)"
    description = ("Scales the image to cover exactly `width`x`height` and crops the overflow, keeping "
                   "`position`.")
    inputs = (IMAGE_IN,)
    params = (
        Param("width", "integer", default=512, min=1, max=8192),
        Param("height", "integer", default=512, min=1, max=8192),
        Param("position", "text", default="center", enum=POSITIONS, description="Which part to keep"),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, width: int, height: int,
                  position: str) -> dict[str, Any]:
        check_size(width, height)
        return {"image": await ctx.run_cpu(fit_image, image, width, height, position)}


class ImageThumbnail(Node):
    type = "image.thumbnail"
    display_name = "Thumbnail"
    description = ("Shrinks the image to fit inside `width`x`height`, keeping its aspect ratio and never "
                   "enlarging it.")
    inputs = (IMAGE_IN,)
    params = (
        Param("width", "integer", default=256, min=1, max=8192),
        Param("height", "integer", default=256, min=1, max=8192),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, width: int, height: int) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(thumbnail_image, image, width, height)}


class ImagePerspective(Node):
    type = "image.perspective"
    display_name = "Perspective correction"
    description = ("Maps the quadrilateral `corners` (top-left, top-right, bottom-right, bottom-left, as "
                   "fractions of the image) onto an upright rectangle.")
    inputs = (IMAGE_IN,)
    params = (
        Param("corners", "json", default=((0, 0), (1, 0), (1, 1), (0, 1)),
              description="Four [x, y] pairs in 0..1: top-left, top-right, bottom-right, bottom-left"),
        Param("width", "integer", default=0, min=0, max=8192, description="Output width (0: from the quad)"),
        Param("height", "integer", default=0, min=0, max=8192,
              description="Output height (0: from the quad)"),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, corners: Any, width: int,
                  height: int) -> dict[str, Any]:
        points = _corner_points(corners)
        return {"image": await ctx.run_cpu(warp_perspective, image, points, width, height)}


def _corner_points(corners: Any) -> list[tuple[float, float]]:
    def coordinate(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1

    problem = NodeError("corners must be four [x, y] pairs with coordinates between 0 and 1",
                        code="invalid_param")
    if not isinstance(corners, (list, tuple)) or len(corners) != 4:
        raise problem
    points = []
    for pair in corners:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(map(coordinate, pair)):
            raise problem
        points.append((float(pair[0]), float(pair[1])))
    shoelace = zip(points, points[1:] + points[:1], strict=True)
    area = 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in shoelace))
    if area < 1e-6:
        raise NodeError("the corners enclose no area", code="invalid_param")
    return points


class ImageTiles(Node):
    type = "image.tiles"
    display_name = "Split into tiles"
    description = "Cuts the image into a `rows`x`columns` grid of tiles (row by row), optionally overlapping."
    inputs = (IMAGE_IN,)
    params = (
        Param("rows", "integer", default=2, min=1, max=32),
        Param("columns", "integer", default=2, min=1, max=32),
        Param("overlap", "integer", default=0, min=0, max=1024,
              description="Pixels shared with each neighbour"),
    )
    outputs = (Port("tiles", "list<image>"),)

    async def run(self, ctx: Context, *, image: Image.Image, rows: int, columns: int,
                  overlap: int) -> dict[str, Any]:
        if rows > image.height or columns > image.width:
            raise NodeError(f"a {image.width}x{image.height} image cannot be cut into {rows}x{columns} tiles",
                            code="invalid_param")
        boxes = tile_boxes(image.width, image.height, rows, columns, overlap)
        return {"tiles": await ctx.run_cpu(cut_tiles, image, boxes)}


class ImageConvert(Node):
    type = "image.convert"
    display_name = "Convert format"
    description = ("Encodes the image as PNG, JPEG or WebP at `quality` and decodes it again, so compression "
                   "artefacts are real; JPEG flattens transparency onto white.")
    inputs = (IMAGE_IN,)
    params = (
        Param("format", "text", default="jpeg", enum=("png", "jpeg", "webp")),
        Param("quality", "integer", default=85, min=1, max=100, description="JPEG and WebP quality"),
    )
    outputs = (IMAGE_OUT, Port("bytes", "integer", description="Size of the encoded file"))

    async def run(self, ctx: Context, *, image: Image.Image, format: str, quality: int) -> dict[str, Any]:
        decoded, size = await ctx.run_cpu(encode_roundtrip, image, format, quality)
        return {"image": decoded, "bytes": size}


class ImageStripMetadata(Node):
    type = "image.strip_metadata"
    display_name = "Strip metadata"
    description = ("Removes EXIF (camera, GPS), XMP and comments from the image, optionally keeping its "
                   "colour profile.")
    inputs = (IMAGE_IN,)
    params = (Param("keepColorProfile", "boolean", default=True, description="Keep the ICC profile"),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, keepColorProfile: bool) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(strip_metadata, image, keepColorProfile)}


def nodes() -> list[type[Node]]:
    return [ImageCrop, ImagePad, ImageRotate, ImageFlip, ImageFit, ImageThumbnail, ImagePerspective,
            ImageTiles, ImageConvert, ImageStripMetadata]
