"""Image bytes ⇄ Pillow images, and base64 `data:` URIs: the one place media is decoded and encoded.

Decoding refuses decompression bombs through Pillow's own limit, set for the process here (every
decoder in the worker — nodes included — shares it).
"""

from __future__ import annotations

import base64
import binascii
import io

from PIL import Image, UnidentifiedImageError

from nodeloom.engine.errors import NodeError

#: the most pixels an image may have to be decoded (about 8K x 8K)
MAX_IMAGE_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


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


def decode_image(data: bytes) -> Image.Image:
    """A live image (RGB, RGBA, L or LA; other modes become RGBA), or NodeError `invalid_image`."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.copy() if im.mode in ("RGB", "RGBA", "L", "LA") else im.convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise NodeError(f"not a decodable image: {exc}", code="invalid_image") from exc


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
