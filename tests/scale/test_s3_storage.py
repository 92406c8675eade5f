"""Files on an S3-compatible store (moto's S3 server speaks the protocol locally), with presigned URLs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from PIL import Image
from tests.support.server import free_port, publish, run_to_end


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    from moto.server import ThreadedMotoServer

    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="outputs")
    yield endpoint, client
    server.stop()


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 40), (10, 200, 10)).save(buf, "PNG")
    return buf.getvalue()


def test_uploads_and_outputs_live_in_the_bucket(make_server: Any, s3: tuple[str, Any]) -> None:
    endpoint, client = s3
    server = make_server(storage_url="s3://outputs/nodeloom", s3_endpoint_url=endpoint)
    _acct, key = server.account()
    with server.client(key) as c:
        up = c.post("/api/v1/uploads", files={"file": ("in.png", png(), "image/png")}).json()
        wid = publish(c, {"nodes": [
            {"id": "i", "type": "input.image", "params": {"name": "image"}},
            {"id": "r", "type": "image.resize", "inputs": {"image": {"from": "i", "output": "image"}},
             "params": {"width": 20, "height": 20, "mode": "fit"}},
            {"id": "o", "type": "output.image", "inputs": {"image": {"from": "r", "output": "image"}},
             "params": {"name": "small"}}]})
        done = run_to_end(c, wid, {"image": up["fileId"]})
        assert done["status"] == "COMPLETED", done
        keys = {o["Key"] for o in client.list_objects_v2(Bucket="outputs")["Contents"]}
        assert len(keys) == 2 and all(k.startswith("nodeloom/") for k in keys)
        url = done["outputs"]["small"]["url"]
        first = httpx.get(url)
        assert first.status_code == 307 and first.headers["location"].startswith(endpoint)
        got = httpx.get(url, follow_redirects=True)
        assert got.status_code == 200 and Image.open(io.BytesIO(got.content)).size == (20, 10)
        assert got.headers["content-type"] == "image/png"
        tampered = url.replace("sig=", "sig=x")
        assert httpx.get(tampered).status_code == 403
        assert c.delete(f"/api/v1/workflows/executions/{done['executionId']}").status_code == 204
        keys_after = {o["Key"] for o in client.list_objects_v2(Bucket="outputs").get("Contents", [])}
        assert len(keys_after) == 1  # the output is gone; the upload stays
        ready = httpx.get(server.url + "/readyz").json()
        assert ready["checks"]["storage"] == "ok"
