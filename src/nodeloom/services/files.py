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
from urllib.parse import quote

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

#: types a browser may show inline: it renders them as media, never as a document that runs script
INLINE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif",
    "audio/mpeg", "audio/wav", "audio/ogg", "audio/mp4", "audio/flac", "audio/webm", "audio/aac",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
})
#: text types kept as the client named them when the bytes are text (anything else that is text: text/plain)
TEXT_TYPES = frozenset({"text/plain", "text/csv", "text/markdown", "application/json"})
#: types a browser would run as a document (HTML, SVG, XML, script): never stored or served under these names
ACTIVE_TYPES = ("text/html", "application/xhtml", "image/svg", "text/xml", "application/xml", "text/javascript",
                "application/javascript", "application/ecmascript", "text/ecmascript", "multipart/", "text/xsl")
#: every file response: no sniffing, and a document that runs nothing and loads nothing if a browser opens it
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; "
                               "style-src 'unsafe-inline'",
}
#: the longest `exp` a signed link may carry (digits): beyond it the link is malformed, not far in the future
_MAX_EXP_DIGITS = 12
_SIG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def sniff_content_type(data: bytes, declared: str | None = None) -> str:
    """The type the bytes really are, decided by the server from their signature (never the client's word
    alone): images, audio and video by their magic bytes; text (UTF-8 without NULs) as text/plain, or as the
    declared plain-text type (CSV, Markdown, JSON); anything else `application/octet-stream` unless it was
    declared as audio or video of a kind not recognised here. HTML, SVG, XML and script never come out."""
    declared = (declared or "").split(";")[0].strip().lower()
    found = _signature(data, declared)
    if found is not None:
        return found
    if _is_text(data[:8192]):
        return declared if declared in TEXT_TYPES else "text/plain"
    if declared.startswith(("audio/", "video/")) and not declared.startswith(ACTIVE_TYPES):
        return declared
    return "application/octet-stream"


def _signature(data: bytes, declared: str) -> str | None:
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"BM") and len(data) > 26 and int.from_bytes(data[2:6], "little") == len(data):
        return "image/bmp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        if declared in ("video/quicktime", "audio/mp4", "audio/x-m4a", "audio/aac", "video/x-m4v", "video/3gpp"):
            return declared
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return declared if declared in ("video/webm", "audio/webm", "video/x-matroska") else "video/webm"
    if head.startswith(b"OggS"):
        return "video/ogg" if declared == "video/ogg" else "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
                                   and head[1] & 0x06 != 0 and declared in ("audio/mpeg", "audio/mp3", "")):
        return "audio/mpeg"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0 and declared in ("audio/aac", "audio/x-aac"):
        return "audio/aac"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _is_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.start >= len(sample) - 3  # cut at the sample's end
    return True


def served_type(stored: str) -> str:
    """The Content-Type a file goes out with: never one a browser runs as a document (rows stored before
    the server sniffed types may name one)."""
    ctype = stored.split(";")[0].strip().lower()
    if not ctype or ctype.startswith(ACTIVE_TYPES) or "xml" in ctype or "html" in ctype:
        return "application/octet-stream"
    return ctype


def disposition(content_type: str, name: str | None, file_id: str) -> str:
    """`inline` for media a browser only shows; `attachment` (a download) for everything else."""
    if content_type in INLINE_TYPES:
        return "inline"
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or file_id + EXTENSIONS.get(content_type, "")
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in base)[:200]
    out = f'attachment; filename="{ascii_name}"'
    if ascii_name != base:
        out += "; filename*=UTF-8''" + quote(base[:200], safe="")
    return out


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
    #: the Content-Disposition to answer with (`inline` for media only; else `attachment`)
    disposition: str = "attachment"


class FileService:
    def __init__(self, db: Database, blobs: BlobStore, *, secret_key: str, clock: Clock, ttl_seconds: int,
                 spill_dir: Path | None = None, files_url: str | None = None):
        self.db = db
        self.blobs = blobs
        self.clock = clock
        self.ttl = ttl_seconds
        #: the origin signed links point at (NODELOOM_FILES_URL): files apart from the API's origin; else the
        #: base URL each caller passes
        self.files_url = files_url.rstrip("/") if files_url else None
        #: where `local_path` writes blobs of a store that keeps none on disk (made on first use when None)
        self.spill_dir = spill_dir
        self._key = hashlib.sha256(b"nodeloom-file-urls\0" + secret_key.encode()).digest()

    # storing --------------------------------------------------------------------------------------
    def store(self, *, account_id: str, data: bytes, content_type: str, name: str | None = None,
              execution_id: str | None = None, width: int | None = None, height: int | None = None,
              duration_s: float | None = None) -> StoredFile:
        """Store bytes under the type the server finds in them (`sniff_content_type`), whatever was declared."""
        stored, row = self.prepare(account_id=account_id, data=data, content_type=content_type, name=name,
                                   execution_id=execution_id, width=width, height=height, duration_s=duration_s)
        with self.db.write() as s:
            s.add(row)
        return stored

    def prepare(self, *, account_id: str, data: bytes, content_type: str, name: str | None = None,
                execution_id: str | None = None, width: int | None = None, height: int | None = None,
                duration_s: float | None = None) -> tuple[StoredFile, File]:
        """`store` without its transaction: the blob is written, the row is the caller's to add to a transaction of
        its own (a run's outputs commit with the events that name them)."""
        content_type = sniff_content_type(data, content_type)
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
        return StoredFile(row.id, content_type, len(data), width, height, duration_s), row

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
        ttl = min(max(1, int(exp or 0) - int(self.clock.time())), 7 * 24 * 3600)
        ctype = served_type(row.content_type)
        how = disposition(ctype, row.name, row.id)
        url = self.blobs.presign(row.blob_key, ttl=ttl, content_type=ctype)
        if url is not None:
            return Download(content_type=ctype, redirect_url=url, disposition=how)
        try:
            path = self.blobs.local_path(row.blob_key)
            if path is not None:
                return Download(content_type=ctype, path=path, disposition=how)
            return Download(content_type=ctype, data=self.blobs.read(row.blob_key), disposition=how)
        except BlobNotFound as exc:
            raise NotFound("file not found") from exc

    # signing ----------------------------------------------------------------------------------------
    def _sig(self, file_id: str, exp: int) -> str:
        mac = hmac.new(self._key, f"{file_id}:{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def signed_path(self, file_id: str, *, ttl: int | None = None) -> str:
        exp = int(self.clock.time()) + (ttl or self.ttl)
        return f"/api/v1/files/{file_id}?exp={exp}&sig={self._sig(file_id, exp)}"

    def url(self, file_id: str, base_url: str = "") -> str:
        """An absolute signed link: on the files origin when one is configured, else on `base_url`."""
        return (self.files_url or base_url) + self.signed_path(file_id)

    def verify(self, file_id: str, exp: str | None, sig: str | None) -> File:
        """The file of a valid, unexpired link; InvalidSignature for anything else — a malformed `exp` or
        `sig` (non-ASCII, not digits, too long) included."""
        if (not exp or not sig or len(exp) > _MAX_EXP_DIGITS or len(sig) > 128 or not exp.isascii()
                or not exp.isdigit() or not set(sig) <= _SIG_CHARS):
            raise InvalidSignature("missing or malformed signature")
        if not hmac.compare_digest(self._sig(file_id, int(exp)).encode(), sig.encode()):
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
                out = {"url": self.url(value[FILE_MARKER], base_url), "fileId": value[FILE_MARKER],
                       "contentType": value.get("contentType")}
                for k in ("width", "height", "durationS"):
                    if k in value:
                        out[k] = value[k]
                return out
            return {k: self.render(v, base_url) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, base_url) for v in value]
        return value
