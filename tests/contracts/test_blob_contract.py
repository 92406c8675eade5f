"""One set of cases for the BlobStore contract, run over every store: the local directory, S3 (moto's S3
server speaks the protocol locally, as in tests/scale/test_s3_storage.py) and memory. Then FileService
over each store: callers get bytes, a path or a download answer without knowing which store it is.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from tests.support.server import free_port

from nodeloom.clock import FrozenClock, SystemClock
from nodeloom.errors import InvalidSignature, NotFound
from nodeloom.services.files import FileService
from nodeloom.storage.blobs import BlobNotFound, BlobStore, LocalBlobStore, MemoryBlobStore, S3BlobStore
from nodeloom.storage.db import Database
from nodeloom.storage.migrate import upgrade
from nodeloom.storage.models import Account, File

STORES = ["local", "s3", "memory"]
BUCKET = "contract-blobs"
DATA = b"\x89PNG not really, but bytes all the same"


AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto S3 server for the run; each test gets its own prefix in the bucket."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        admin = S3BlobStore(f"s3://{BUCKET}", cache_dir=tmp_path_factory.mktemp("s3-admin"), endpoint_url=endpoint)
        admin.client.create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    if request.param == "memory":
        return MemoryBlobStore()
    endpoint = request.getfixturevalue("moto_endpoint")
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    return S3BlobStore(f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}", cache_dir=tmp_path / "s3-cache",
                       endpoint_url=endpoint)


def forget_cache(store: BlobStore) -> None:
    """S3 keeps a local cache: empty it, so reads really go to the bucket."""
    if isinstance(store, S3BlobStore):
        for path in store.cache.root.rglob("*"):
            if path.is_file():
                path.unlink()


# --- the contract -------------------------------------------------------------------------------------------

def test_put_is_content_addressed_and_idempotent(store: BlobStore) -> None:
    key = store.put(DATA, suffix=".png")
    assert key == hashlib.sha256(DATA).hexdigest() + ".png"
    assert store.put(DATA, suffix=".png") == key
    assert store.put(DATA) == hashlib.sha256(DATA).hexdigest()
    assert store.exists(key)
    forget_cache(store)
    assert store.read(key) == DATA


def test_put_file_stores_the_same_blob_as_put(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "upload.bin"
    payload = DATA * 50_000  # a few MB: streamed where the store can
    src.write_bytes(payload)
    key = store.put_file(src, suffix=".bin")
    assert key == hashlib.sha256(payload).hexdigest() + ".bin"
    forget_cache(store)
    assert store.read(key) == payload
    assert store.put(payload, suffix=".bin") == key


def test_local_path_is_a_file_with_the_bytes_or_none(store: BlobStore) -> None:
    key = store.put(DATA, suffix=".png")
    forget_cache(store)
    path = store.local_path(key)
    if isinstance(store, MemoryBlobStore):
        assert path is None  # nothing on disk: read it
    else:
        assert path is not None and path.read_bytes() == DATA


def test_a_missing_blob_is_blob_not_found(store: BlobStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest() + ".png"
    assert not store.exists(missing)
    with pytest.raises(BlobNotFound) as caught:
        store.read(missing)
    assert isinstance(caught.value, FileNotFoundError) and caught.value.key == missing
    with pytest.raises(BlobNotFound):
        store.local_path(missing)


def test_delete_removes_the_blob_and_may_repeat(store: BlobStore) -> None:
    key = store.put(DATA, suffix=".png")
    other = store.put(b"other bytes")
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(BlobNotFound):
        store.read(key)
    store.delete(key)
    assert store.read(other) == b"other bytes"


def test_presign_is_a_fetchable_url_or_none(store: BlobStore) -> None:
    key = store.put(DATA, suffix=".png")
    url = store.presign(key, ttl=60, content_type="image/png")
    if isinstance(store, S3BlobStore):
        assert url is not None
        got = httpx.get(url)
        assert got.status_code == 200 and got.content == DATA
        assert got.headers["content-type"] == "image/png"
    else:
        assert url is None  # not object storage: the API serves it itself


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "a/b", "a\\b", ".hidden"])
def test_keys_are_never_paths(store: BlobStore, bad: str) -> None:
    for call in (store.read, store.exists, store.delete, store.local_path,
                 lambda k: store.presign(k, ttl=60, content_type="image/png")):
        with pytest.raises(ValueError):
            call(bad)
    with pytest.raises(ValueError):
        store.put(DATA, suffix="/x")


def test_check_passes_when_the_store_is_reachable(store: BlobStore) -> None:
    store.check()


# --- FileService over each store ------------------------------------------------------------------------------

@pytest.fixture
def files(store: BlobStore, tmp_path: Path) -> Iterator[tuple[FileService, str]]:
    url = f"sqlite:///{tmp_path / 'files.db'}"
    upgrade(url)
    db = Database(url)
    with db.write() as s:
        s.add(Account(id="acct_files", name="files", plan="pro", webhook_secret="x", limits={},
                      created_at=datetime.now(UTC)))
    yield FileService(db, store, secret_key="contract-secret", clock=SystemClock(), ttl_seconds=600,
                      spill_dir=tmp_path / "spill"), "acct_files"
    db.dispose()


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 4), (10, 200, 10)).save(buf, "PNG")
    return buf.getvalue()


def signed(fs: FileService, file_id: str) -> tuple[str | None, str | None]:
    query = parse_qs(urlsplit(fs.signed_path(file_id)).query)
    return query["exp"][0], query["sig"][0]


def test_files_read_bytes_and_local_path_whatever_the_store(files: tuple[FileService, str]) -> None:
    fs, account = files
    stored = fs.store(account_id=account, data=png(), content_type="image/png", name="a.png")
    assert (stored.width, stored.height) == (8, 4)
    row = fs.get(account_id=account, file_id=stored.id)
    forget_cache(fs.blobs)
    assert fs.read_bytes(stored.id) == png() == fs.read_bytes(row)
    path = fs.local_path(row)
    assert path.read_bytes() == png()
    assert fs.local_path(stored.id) == path
    with pytest.raises(NotFound):
        fs.read_bytes("file_missing")


def test_files_download_answers_with_a_redirect_a_path_or_the_bytes(files: tuple[FileService, str]) -> None:
    fs, account = files
    stored = fs.store(account_id=account, data=png(), content_type="image/png")
    exp, sig = signed(fs, stored.id)
    found = fs.download(stored.id, exp, sig)
    assert found.content_type == "image/png"
    answers = [found.redirect_url, found.path, found.data]
    assert sum(a is not None for a in answers) == 1
    if isinstance(fs.blobs, S3BlobStore):
        assert found.redirect_url is not None and httpx.get(found.redirect_url).content == png()
    elif isinstance(fs.blobs, LocalBlobStore):
        assert found.path is not None and found.path.read_bytes() == png()
    else:
        assert found.data == png()

    with pytest.raises(InvalidSignature):
        fs.download(stored.id, exp, "x" + (sig or ""))
    with pytest.raises(InvalidSignature):
        fs.download(stored.id, None, None)


def test_files_download_of_a_vanished_blob_is_not_found(files: tuple[FileService, str]) -> None:
    fs, account = files
    stored = fs.store(account_id=account, data=b'{"a": 1}', content_type="application/json")
    row = fs.get(account_id=account, file_id=stored.id)
    fs.blobs.delete(row.blob_key)
    exp, sig = signed(fs, stored.id)
    if isinstance(fs.blobs, S3BlobStore):
        return  # a presigned URL is only a signature: the bucket answers 404 to the client itself
    with pytest.raises(NotFound):
        fs.download(stored.id, exp, sig)


def test_files_delete_file_keeps_a_blob_another_row_shares(files: tuple[FileService, str]) -> None:
    fs, account = files
    a = fs.store(account_id=account, data=png(), content_type="image/png")
    b = fs.store(account_id=account, data=png(), content_type="image/png")
    key = fs.get(account_id=account, file_id=a.id).blob_key
    with fs.db.write() as s:
        fs.delete_file(s, s.get_one(File, a.id))
    assert fs.blobs.exists(key) and fs.get_any(a.id) is None
    with fs.db.write() as s:
        fs.delete_file(s, s.get_one(File, b.id))
    assert not fs.blobs.exists(key)


def test_expired_links_are_refused(files: tuple[FileService, str]) -> None:
    fs, account = files
    clock = FrozenClock(start=SystemClock().time())
    frozen = FileService(fs.db, fs.blobs, secret_key="contract-secret", clock=clock, ttl_seconds=60)
    stored = frozen.store(account_id=account, data=b"x", content_type="text/plain")
    exp, sig = signed(frozen, stored.id)
    clock.advance(61)
    with pytest.raises(InvalidSignature):
        frozen.download(stored.id, exp, sig)
