"""Blob stores: content-addressed bytes. The local directory is the embedded default."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol


class BlobStore(Protocol):
    def put(self, data: bytes, *, suffix: str = "") -> str:
        """Store bytes; return a content-addressed key."""
        ...

    def put_file(self, path: Path, *, suffix: str = "") -> str: ...

    def path(self, key: str) -> Path:
        """A local path to read the blob from."""
        ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def check(self) -> None:
        """Raise if the store is unreachable (readiness)."""
        ...


class LocalBlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if "/" in key or "\\" in key or key.startswith("."):
            raise ValueError("bad blob key")
        return self.root / key[:2] / key

    def put(self, data: bytes, *, suffix: str = "") -> str:
        key = hashlib.sha256(data).hexdigest() + suffix
        dest = self._path(key)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        return key

    def put_file(self, path: Path, *, suffix: str = "") -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        key = h.hexdigest() + suffix
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

    def path(self, key: str) -> Path:
        return self._path(key)

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
    """

    def __init__(self, url: str, *, cache_dir: Path, endpoint_url: str | None = None, region: str | None = None):
        import boto3
        from botocore.config import Config

        rest = url.removeprefix("s3://")
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ValueError(f"bad storage URL {url!r}: expected s3://bucket/prefix")
        self.prefix = prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
                                   config=Config(signature_version="s3v4", retries={"max_attempts": 5}))
        self.cache = LocalBlobStore(cache_dir)

    def _object(self, key: str) -> str:
        if "/" in key or key.startswith("."):
            raise ValueError("bad blob key")
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, data: bytes, *, suffix: str = "") -> str:
        key = hashlib.sha256(data).hexdigest() + suffix
        self.client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data)
        self.cache.put(data, suffix=suffix)
        return key

    def put_file(self, path: Path, *, suffix: str = "") -> str:
        key = self.cache.put_file(path, suffix=suffix)
        self.client.upload_file(str(self.cache.path(key)), self.bucket, self._object(key))
        return key

    def path(self, key: str) -> Path:
        local = self.cache.path(key)
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=local.parent)
            os.close(fd)
            self.client.download_file(self.bucket, self._object(key), tmp)
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
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._object(key),
                                  "ResponseContentType": content_type}, ExpiresIn=ttl)

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


def make_blob_store(storage_url: str | None, *, files_dir: Path, endpoint_url: str | None = None,
                    region: str | None = None) -> BlobStore:
    if not storage_url or storage_url.startswith("file://"):
        return LocalBlobStore(Path(storage_url.removeprefix("file://")) if storage_url else files_dir)
    if storage_url.startswith("s3://"):
        return S3BlobStore(storage_url, cache_dir=files_dir / "s3-cache", endpoint_url=endpoint_url, region=region)
    raise ValueError(f"unsupported NODELOOM_STORAGE_URL {storage_url!r} (use s3://bucket/prefix or a local path)")
