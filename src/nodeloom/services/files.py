"""Stored files: uploads and outputs, content-addressed blobs, signed expiring URLs.

Callers go through FileService, never past it to the blob store: it knows which of the store's answers
fits (a presigned URL, a file on disk, the bytes), so routes, the runner and media loading stay the same
whichever store an install uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select

from nodeloom.clock import Clock
from nodeloom.errors import InvalidSignature, NotFound
from nodeloom.media.images import encode_image
from nodeloom.media.values import FILE_MARKER
from nodeloom.services.ids import new_id
from nodeloom.storage.blobs import BlobNotFound, BlobStore
from nodeloom.storage.db import Database
from nodeloom.storage.models import File

# FILE_MARKER: the marker a stored media value takes inside persisted JSON (media/values.py)

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


@dataclass(frozen=True)
class Download:
    """How to answer a signed download: exactly one of `redirect_url` (object storage: send the client
    there), `path` (a file on this machine: stream it) or `data` (the bytes: send them) is set."""

    content_type: str
    redirect_url: str | None = None
    path: Path | None = None
    data: bytes | None = None


class FileService:
    def __init__(self, db: Database, blobs: BlobStore, *, secret_key: str, clock: Clock, ttl_seconds: int,
                 spill_dir: Path | None = None):
        self.db = db
        self.blobs = blobs
        self.clock = clock
        self.ttl = ttl_seconds
        #: where `local_path` writes blobs of a store that keeps none on disk (made on first use when None)
        self.spill_dir = spill_dir
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
        for row in session.scalars(select(File).where(File.execution_id == execution_id)).all():
            self.delete_file(session, row)

    def delete_file(self, session: Any, row: File) -> None:
        """Delete the row in the caller's transaction, and its blob unless another row shares it (blobs are
        content-addressed: the same bytes stored twice are one blob)."""
        still_used = session.scalar(select(File.id).where(File.blob_key == row.blob_key, File.id != row.id).limit(1))
        if still_used is None:
            self.blobs.delete(row.blob_key)
        session.delete(row)

    # reading ----------------------------------------------------------------------------------------
    def _row(self, file: File | str) -> File:
        if isinstance(file, File):
            return file
        row = self.get_any(file)
        if row is None:
            raise NotFound("file not found")
        return row

    def read_bytes(self, file: File | str) -> bytes:
        """The file's bytes (a row, or its id: NotFound when there is no such file). Any account's: check
        ownership first where it matters. BlobNotFound (a FileNotFoundError) when the row's blob is gone."""
        return self.blobs.read(self._row(file).blob_key)

    def local_path(self, file: File | str) -> Path:
        """A file on this machine with the file's bytes, for tools that need a path (ffmpeg, MediaFile).
        Read it, never write it. Stores that keep nothing on disk have it written to `spill_dir` first."""
        row = self._row(file)
        path = self.blobs.local_path(row.blob_key)
        if path is not None:
            return path
        if self.spill_dir is None:
            self.spill_dir = Path(tempfile.mkdtemp(prefix="nodeloom-files-"))
        dest = self.spill_dir / row.blob_key  # blob keys are checked names, never paths
        if not dest.is_file():
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            data = self.blobs.read(row.blob_key)
            fd, tmp = tempfile.mkstemp(dir=self.spill_dir)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, dest)  # whole or not at all, even with another thread spilling the same blob
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return dest

    def download(self, file_id: str, exp: str | None, sig: str | None) -> Download:
        """Answer a signed download link (`signed_path`): InvalidSignature when the link is bad or expired,
        NotFound when the file (or its blob) is gone. Object storage: a presigned URL that expires with ours;
        else a local file; else the bytes."""
        row = self.verify(file_id, exp, sig)
        ttl = max(1, int(exp or 0) - int(self.clock.time()))
        url = self.blobs.presign(row.blob_key, ttl=ttl, content_type=row.content_type)
        if url is not None:
            return Download(content_type=row.content_type, redirect_url=url)
        try:
            path = self.blobs.local_path(row.blob_key)
            if path is not None:
                return Download(content_type=row.content_type, path=path)
            return Download(content_type=row.content_type, data=self.blobs.read(row.blob_key))
        except BlobNotFound as exc:
            raise NotFound("file not found") from exc

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
