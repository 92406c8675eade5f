"""Turns user-supplied media references into live values: fileId, https URL (guarded) or data: URI."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from typing import Any

from PIL import Image, UnidentifiedImageError

from nodeloom.engine.errors import NodeError
from nodeloom.media.urlguard import FetchError, GuardedClient
from nodeloom.services.files import FILE_MARKER, FileService

Image.MAX_IMAGE_PIXELS = 64_000_000  # refuse decompression bombs (about 8K x 8K)


class MediaResolver:
    def __init__(self, files: FileService, client: GuardedClient, *, max_bytes: int, timeout: float = 30.0):
        self.files = files
        self.client = client
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def load_bytes(self, ref: Any, *, account_id: str) -> tuple[bytes, str | None]:
        if isinstance(ref, dict):
            ref = ref.get(FILE_MARKER) or ref.get("fileId") or ref.get("url")
        if not isinstance(ref, str) or not ref:
            raise NodeError("expected a fileId, an https URL or a data: URI", code="invalid_input")
        if ref.startswith("file_"):
            row = await asyncio.to_thread(self.files.get_any, ref)
            if row is None or row.account_id != account_id:
                raise NodeError(f"file '{ref}' not found", code="invalid_input")
            data = await asyncio.to_thread(self.files.blobs.path(row.blob_key).read_bytes)
            return data, row.content_type
        if ref.startswith("data:"):
            return decode_data_uri(ref, max_bytes=self.max_bytes)
        if ref.startswith(("https://", "http://")):
            try:
                res = await self.client.fetch(ref, max_bytes=self.max_bytes, timeout=self.timeout)
            except FetchError as exc:
                raise NodeError(f"could not fetch {ref}: {exc}", code="fetch_failed") from exc
            if res.status_code >= 400:
                raise NodeError(f"fetching {ref} answered HTTP {res.status_code}", code="fetch_failed")
            return res.content, res.content_type
        raise NodeError("expected a fileId, an https URL or a data: URI", code="invalid_input")

    async def load_image(self, ref: Any, *, account_id: str) -> Image.Image:
        data, _ = await self.load_bytes(ref, account_id=account_id)
        return await asyncio.to_thread(decode_image, data)


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
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.copy() if im.mode in ("RGB", "RGBA", "L", "LA") else im.convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise NodeError(f"not a decodable image: {exc}", code="invalid_image") from exc
