"""Turns user-supplied media references into live values: fileId, https URL (guarded) or data: URI —
and, for `nodeloom run` on the operator's own machine, a local file path."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Any

from PIL import Image

from nodeloom.engine.errors import NodeError
from nodeloom.media.images import decode_data_uri, decode_image, is_small_image
from nodeloom.media.urlguard import FetchError, GuardedClient
from nodeloom.media.values import FILE_MARKER
from nodeloom.services.files import FileService


class MediaResolver:
    """`files` resolves stored fileIds (None: no file store, as in a local run); `local_paths` lets a
    reference name a file on this machine (only `nodeloom run`: a server never reads its own disk for a user)."""

    def __init__(self, files: FileService | None, client: GuardedClient, *, max_bytes: int, timeout: float = 30.0,
                 local_paths: bool = False):
        self.files = files
        self.client = client
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.local_paths = local_paths

    async def load_bytes(self, ref: Any, *, account_id: str) -> tuple[bytes, str | None]:
        if isinstance(ref, dict):
            ref = ref.get(FILE_MARKER) or ref.get("fileId") or ref.get("url")
        if not isinstance(ref, str) or not ref:
            raise NodeError("expected a fileId, an https URL or a data: URI", code="invalid_input")
        if ref.startswith("file_") and self.files is not None:
            return await asyncio.to_thread(self._stored, ref, account_id)
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
        if self.local_paths:
            path = Path(ref.removeprefix("@"))
            if not path.is_file():
                raise NodeError(f"no such file: {path}", code="invalid_input")
            return await asyncio.to_thread(path.read_bytes), mimetypes.guess_type(path.name)[0]
        raise NodeError("expected a fileId, an https URL or a data: URI", code="invalid_input")

    def _stored(self, file_id: str, account_id: str) -> tuple[bytes, str | None]:
        assert self.files is not None
        row = self.files.get_any(file_id)
        if row is None or row.account_id != account_id:
            raise NodeError(f"file '{file_id}' not found", code="invalid_input")
        return self.files.read_bytes(row), row.content_type

    async def load_image(self, ref: Any, *, account_id: str) -> Image.Image:
        data, _ = await self.load_bytes(ref, account_id=account_id)
        if is_small_image(data):
            return decode_image(data)  # a thumbnail-sized image decodes faster than a thread hop
        return await asyncio.to_thread(decode_image, data)
