"""Image bytes ⇄ Pillow images, and base64 `data:` URIs: the one place media is decoded and encoded.

Decoding refuses decompression bombs exactly: an image with more than `MAX_IMAGE_PIXELS` pixels is
refused (`image_too_large`) from its header, before a pixel is decoded. Pillow's own limit, set for the process here as well (every decoder in the worker — nodes
included — shares it), only warns past it and refuses at twice its value, so it is the backstop, not
the check.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

from PIL import Image, UnidentifiedImageError

from nodeloom.engine.errors import NodeError

#: the most pixels an image may have to be decoded (about 8K x 8K)
MAX_IMAGE_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def check_pixels(size: tuple[int, int], *, limit: int = MAX_IMAGE_PIXELS) -> None:
    """NodeError `image_too_large` when an image of `size` (from its header) has more than `limit` pixels."""
    width, height = size
    if width <= 0 or height <= 0:
        raise NodeError(f"the image has no pixels ({width}x{height})", code="invalid_image")
    if width * height > limit:
        raise NodeError(f"the image is {width}x{height} = {width * height} pixels; at most {limit} are decoded",
                        code="image_too_large")


def decode_data_uri(ref: str, *, max_bytes: int) -> tuple[bytes, str | None]:
    """The bytes and media type of a base64 `data:` URI, refused clearly when malformed or too large."""
    header, _, payload = ref.partition(",")
    if ";base64" not in header:
        raise NodeError("data: URIs must be base64-encoded", code="invalid_input")
    if len(payload) > max_bytes * 4 // 3 + 4:
        raise NodeError("data: URI is too large", code="invalid_input")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NodeError("data: URI is not valid base64", code="invalid_input") from exc
    return data, header[5:].split(";")[0] or None


#: at most this many pixels in all (64² is 4,096): small enough to work on the event loop itself (well under a
#: millisecond of work, less than a thread hop costs)
INLINE_MAX_PIXELS = 128 * 128


def is_small_image(data: bytes) -> bool:
    """Whether `data` is an image of at most INLINE_MAX_PIXELS pixels, by its header (nothing is decoded)."""
    if len(data) > 256 * 1024:
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Exception:  # not an image we know: decode_image says why, off the loop
        return False
    return width * height <= INLINE_MAX_PIXELS


def decode_image(data: bytes) -> Image.Image:
    """A live image (RGB, RGBA, L or LA; other modes become RGBA), or NodeError `invalid_image`; one with more
    than `MAX_IMAGE_PIXELS` pixels is refused (`image_too_large`) from its header, before it is decoded."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            check_pixels(im.size)
            im.load()
            return im.copy() if im.mode in ("RGB", "RGBA", "L", "LA") else im.convert("RGBA")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # the warning: when made an error
        raise NodeError(f"the image has more than {MAX_IMAGE_PIXELS} pixels", code="image_too_large") from exc
    except UnidentifiedImageError as exc:
        raise NodeError("not a decodable image: the format is not recognised", code="invalid_image") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # a truncated or corrupt file (message without paths or reprs)
        raise NodeError(f"not a decodable image: {_reason(exc)}", code="invalid_image") from exc


def _reason(exc: BaseException) -> str:
    """An exception's message fit for a user: without object reprs (`<_io.BytesIO object at 0x…>`)."""
    text = re.sub(r"<[^<>]*? at 0x[0-9a-fA-F]+>", "the data", str(exc)).strip()
    return text[:200] or type(exc).__name__


def encode_image(image: Image.Image, fmt: str = "png", quality: int = 92) -> tuple[bytes, str]:
    """Bytes and content type of `image` as PNG (fast compression), JPEG or WEBP."""
    fmt = fmt.lower()
    buf = io.BytesIO()
    if fmt in ("jpeg", "jpg"):
        image.convert("RGB").save(buf, "JPEG", quality=quality)
        return buf.getvalue(), "image/jpeg"
    if fmt == "webp":
        image.save(buf, "WEBP", quality=quality)
        return buf.getvalue(), "image/webp"
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue(), "image/png"


#: bytes per pixel per band of Pillow's modes (the rest are 1)
_BAND_BYTES = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2}


def memory_size(value: Any) -> int:
    """What a node's output value holds in memory (the executor's per-execution budget counts it): a decoded image's
    pixels, an array's or a buffer's bytes, a text's length; files on disk (`MediaFile`) count nothing."""
    stack, total = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, Image.Image):
            total += item.width * item.height * len(item.getbands()) * _BAND_BYTES.get(item.mode, 1)
        elif isinstance(item, (bytes, bytearray, memoryview)):
            total += len(item)
        elif isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "nbytes") and isinstance(item.nbytes, int):  # a NumPy array
            total += item.nbytes
    return total
