"""Blob stores: content-addressed bytes. The local directory is the embedded default.

The `BlobStore` protocol is what every store can honour, so callers (through FileService) never ask a
store what kind it is: `read` gives the bytes; `local_path` a file on this machine when the store has one
(tools such as ffmpeg want a path); `presign` a URL the client can fetch the bytes from directly when the
store is object storage, else None ("serve it yourself"). tests/contracts runs one set of cases over each
store (local directory, S3 via moto, memory).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

__all__ = ["BlobNotFound", "BlobStore", "LocalBlobStore", "MemoryBlobStore", "S3BlobStore", "check_key",
           "make_blob_store"]


class BlobNotFound(FileNotFoundError):
    """No blob is stored under this key. A FileNotFoundError, as reading a missing local file always was."""

    def __init__(self, key: str):
        super().__init__(f"no blob {key!r}")
        self.key = key


def check_key(key: str) -> str:
    """Keys are `sha256 hex + suffix`, never paths: refuse anything that could leave the store's namespace."""
    if not key or "/" in key or "\\" in key or key.startswith("."):
        raise ValueError("bad blob key")
    return key


def _key(digest: str, suffix: str) -> str:
    return check_key(digest + suffix)


class BlobStore(Protocol):
    def put(self, data: bytes, *, suffix: str = "") -> str:
        """Store bytes; return their content-addressed key (sha256 hex + suffix). Idempotent."""
        ...

    def put_file(self, path: Path, *, suffix: str = "") -> str:
        """`put` for a file's contents, without holding them all in memory where the store allows."""
        ...

    def read(self, key: str) -> bytes:
        """The blob's bytes; BlobNotFound when there is none."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A file on this machine holding the blob (object storage fills its local cache first), for tools
        that need a path; read it, never write it. None when the store keeps nothing on disk: `read` it.
        BlobNotFound when there is no such blob."""
        ...

    def presign(self, key: str, *, ttl: int, content_type: str) -> str | None:
        """A URL the client can GET the blob from for `ttl` seconds, served as `content_type`; None when the
        store is not object storage (serve the bytes yourself)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; no error when it is already gone."""
        ...

    def exists(self, key: str) -> bool: ...

    def check(self) -> None:
        """Raise if the store is unreachable (readiness)."""
        ...


class LocalBlobStore:
    """A directory: `root/ab/abcdef….png`, written atomically (temp file, then rename)."""

    def __init__(self, root: Path, *, fsync: bool = True):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        #: flush each new blob to the disk before it is renamed into place: a file then survives power loss, as a
        #: database commit does under SQLite's synchronous=FULL; without it a blob survives any process crash (the
        #: page cache keeps it), as a commit does under NORMAL — the two follow NODELOOM_SQLITE_SYNCHRONOUS
        self.fsync = fsync

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    def put(self, data: bytes, *, suffix: str = "") -> str:
        key = _key(hashlib.sha256(data).hexdigest(), suffix)
        dest = self._path(key)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, dest)
        return key

    def put_file(self, path: Path, *, suffix: str = "") -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        key = _key(h.hexdigest(), suffix)
        dest = self._path(key)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent)
            os.close(fd)
            with open(path, "rb") as src, open(tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.replace(tmp, dest)
        return key

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFound(key)
        return path

    def location(self, key: str) -> Path:
        """Where the blob is (or would be) stored, without checking it is there (the S3 store's cache)."""
        return self._path(key)

    def presign(self, key: str, *, ttl: int, content_type: str) -> None:
        """Not object storage: the API serves the file itself."""
        check_key(key)
        return None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def check(self) -> None:
        probe = self.root / ".ready"
        probe.write_text("ok")


class S3BlobStore:
    """An S3-compatible bucket (AWS, MinIO, R2, Ceph …) behind the same content-addressed interface.

    `NODELOOM_STORAGE_URL=s3://bucket/prefix`; `NODELOOM_S3_ENDPOINT_URL` points at a non-AWS store.
    Reads go through a local cache directory (nodes want files on disk); downloads are presigned URLs.
    boto3 is optional and ships no type information: it is imported on demand and handled as `Any`.
    """

    def __init__(self, url: str, *, cache_dir: Path, endpoint_url: str | None = None, region: str | None = None):
        import boto3
        from botocore.config import Config

        rest = url.removeprefix("s3://")
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ValueError(f"bad storage URL {url!r}: expected s3://bucket/prefix")
        self.prefix = prefix.strip("/")
        self.client: Any = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
            config=Config(signature_version="s3v4", retries={"max_attempts": 5}))
        self.cache = LocalBlobStore(cache_dir)

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _missing(self, exc: Exception) -> bool:
        """A ClientError that means "no such object" (HEAD answers a bare 404, GET a NoSuchKey)."""
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def put(self, data: bytes, *, suffix: str = "") -> str:
        key = _key(hashlib.sha256(data).hexdigest(), suffix)
        self.client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data)
        self.cache.put(data, suffix=suffix)
        return key

    def put_file(self, path: Path, *, suffix: str = "") -> str:
        key = self.cache.put_file(path, suffix=suffix)
        self.client.upload_file(str(self.cache.local_path(key)), self.bucket, self._object(key))
        return key

    def read(self, key: str) -> bytes:
        return self.local_path(key).read_bytes()

    def local_path(self, key: str) -> Path:
        """The cached copy, downloaded first when this machine has none."""
        local = self.cache.location(key)
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=local.parent)
            os.close(fd)
            try:
                self.client.download_file(self.bucket, self._object(key), tmp)
            except self.client.exceptions.ClientError as exc:
                os.unlink(tmp)
                if self._missing(exc):
                    raise BlobNotFound(key) from exc
                raise
            except BaseException:
                os.unlink(tmp)
                raise
            os.replace(tmp, local)
        return local

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object(key))
            return True
        except self.client.exceptions.ClientError:
            return False

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
        self.cache.delete(key)

    def presign(self, key: str, *, ttl: int, content_type: str) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._object(key),
                                  "ResponseContentType": content_type}, ExpiresIn=ttl)
        return url

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


class MemoryBlobStore:
    """Blobs in a dict: for tests and runs that keep nothing on disk. Keys and errors as the other stores;
    `local_path` and `presign` answer None (read the bytes, serve them yourself)."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, data: bytes, *, suffix: str = "") -> str:
        key = _key(hashlib.sha256(data).hexdigest(), suffix)
        with self._lock:
            self._blobs.setdefault(key, bytes(data))
        return key

    def put_file(self, path: Path, *, suffix: str = "") -> str:
        return self.put(Path(path).read_bytes(), suffix=suffix)

    def read(self, key: str) -> bytes:
        check_key(key)
        with self._lock:
            data = self._blobs.get(key)
        if data is None:
            raise BlobNotFound(key)
        return data

    def local_path(self, key: str) -> None:
        if not self.exists(key):
            raise BlobNotFound(key)
        return None

    def presign(self, key: str, *, ttl: int, content_type: str) -> None:
        check_key(key)
        return None

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._lock:
            return key in self._blobs

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._blobs.pop(key, None)

    def check(self) -> None:
        """Always ready: nothing to reach."""


def make_blob_store(storage_url: str | None, *, files_dir: Path, endpoint_url: str | None = None,
                    region: str | None = None, fsync: bool = True) -> BlobStore:
    if not storage_url or storage_url.startswith("file://"):
        return LocalBlobStore(Path(storage_url.removeprefix("file://")) if storage_url else files_dir, fsync=fsync)
    if storage_url.startswith("s3://"):
        return S3BlobStore(storage_url, cache_dir=files_dir / "s3-cache", endpoint_url=endpoint_url, region=region)
    raise ValueError(f"unsupported NODELOOM_STORAGE_URL {storage_url!r} (use s3://bucket/prefix or a local path)")
