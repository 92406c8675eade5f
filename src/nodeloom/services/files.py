"""Stored files: uploads and outputs, content-addressed blobs, signed expiring URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image
from sqlalchemy import select

from nodeloom.clock import Clock
from nodeloom.errors import InvalidSignature, NotFound
from nodeloom.services.ids import new_id
from nodeloom.storage.blobs import BlobStore
from nodeloom.storage.db import Database
from nodeloom.storage.models import File

#: the marker a stored media value takes inside persisted JSON (node outputs, execution outputs)
FILE_MARKER = "$file"

EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
              "video/mp4": ".mp4", "audio/mpeg": ".mp3", "audio/wav": ".wav", "application/json": ".json"}


@dataclass(frozen=True)
class StoredFile:
    id: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None

    def marker(self) -> dict[str, Any]:
        m: dict[str, Any] = {FILE_MARKER: self.id, "contentType": self.content_type}
        if self.width is not None:
            m["width"], m["height"] = self.width, self.height
        if self.duration_s is not None:
            m["durationS"] = self.duration_s
        return m


class FileService:
    def __init__(self, db: Database, blobs: BlobStore, *, secret_key: str, clock: Clock, ttl_seconds: int):
        self.db = db
        self.blobs = blobs
        self.clock = clock
        self.ttl = ttl_seconds
        self._key = hashlib.sha256(b"nodeloom-file-urls\0" + secret_key.encode()).digest()

    # storing --------------------------------------------------------------------------------------
    def store(self, *, account_id: str, data: bytes, content_type: str, name: str | None = None,
              execution_id: str | None = None, width: int | None = None, height: int | None = None,
              duration_s: float | None = None) -> StoredFile:
        if content_type.startswith("image/") and width is None:
            try:
                with Image.open(io.BytesIO(data)) as im:
                    width, height = im.size
            except Exception:  # not decodable: stored as given, without dimensions
                pass
        key = self.blobs.put(data, suffix=EXTENSIONS.get(content_type, ""))
        row = File(id=new_id("file"), account_id=account_id, blob_key=key, content_type=content_type,
                   size=len(data), name=name, width=width, height=height, duration_s=duration_s,
                   execution_id=execution_id, created_at=self.clock.now())
        with self.db.write() as s:
            s.add(row)
        return StoredFile(row.id, content_type, len(data), width, height, duration_s)

    def store_image(self, *, account_id: str, image: Image.Image, fmt: str = "png",
                    execution_id: str | None = None) -> StoredFile:
        data, ctype = encode_image(image, fmt)
        return self.store(account_id=account_id, data=data, content_type=ctype, execution_id=execution_id,
                          width=image.width, height=image.height)

    def get(self, *, account_id: str, file_id: str) -> File:
        with self.db.read() as s:
            row = s.get(File, file_id)
            if row is None or row.account_id != account_id:
                raise NotFound("file not found")
            return row

    def get_any(self, file_id: str) -> File | None:
        with self.db.read() as s:
            return s.get(File, file_id)

    def delete_for_execution(self, session: Any, execution_id: str) -> None:
        rows = session.scalars(select(File).where(File.execution_id == execution_id)).all()
        for row in rows:
            still_used = session.scalar(select(File.id).where(File.blob_key == row.blob_key, File.id != row.id)
                                        .limit(1))
            if still_used is None:
                self.blobs.delete(row.blob_key)
            session.delete(row)

    # signing ----------------------------------------------------------------------------------------
    def _sig(self, file_id: str, exp: int) -> str:
        mac = hmac.new(self._key, f"{file_id}:{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def signed_path(self, file_id: str, *, ttl: int | None = None) -> str:
        exp = int(self.clock.time()) + (ttl or self.ttl)
        return f"/api/v1/files/{file_id}?exp={exp}&sig={self._sig(file_id, exp)}"

    def verify(self, file_id: str, exp: str | None, sig: str | None) -> File:
        if not exp or not sig or not exp.isdigit():
            raise InvalidSignature("missing or malformed signature")
        if not hmac.compare_digest(self._sig(file_id, int(exp)), sig):
            raise InvalidSignature("invalid signature")
        if int(exp) < self.clock.time():
            raise InvalidSignature("this link has expired")
        row = self.get_any(file_id)
        if row is None:
            raise NotFound("file not found")
        return row

    def render(self, value: Any, base_url: str = "") -> Any:
        """Turn stored-file markers inside JSON into the public media shape with a signed URL."""
        if isinstance(value, dict):
            if FILE_MARKER in value:
                out = {"url": base_url + self.signed_path(value[FILE_MARKER]), "fileId": value[FILE_MARKER],
                       "contentType": value.get("contentType")}
                for k in ("width", "height", "durationS"):
                    if k in value:
                        out[k] = value[k]
                return out
            return {k: self.render(v, base_url) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, base_url) for v in value]
        return value


def encode_image(image: Image.Image, fmt: str = "png", quality: int = 92) -> tuple[bytes, str]:
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
