"""The retention sweeper removes expired executions, their events and files, and old uploads."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image
from tests.support.server import publish, run_to_end

from nodeloom.clock import FrozenClock


def test_expired_executions_and_files_are_swept(make_server: Any) -> None:
    clock = FrozenClock(start=__import__("time").time())
    server = make_server(clock=clock, retention_days=30)
    _a, key = server.account()
    with server.client(key) as c:
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, "PNG")
        up = c.post("/api/v1/uploads", files={"file": ("a.png", buf.getvalue(), "image/png")}).json()
        wid = publish(c, {"nodes": [{"id": "i", "type": "input.image", "params": {"name": "image"}},
                                    {"id": "o", "type": "output.image", "params": {"name": "img"},
                                     "inputs": {"image": {"from": "i", "output": "image"}}}]})
        done = run_to_end(c, wid, {"image": up["fileId"]})
        out_url = done["outputs"]["img"]["url"]
        clock.advance(29 * 86400)
        assert server.services.retention.sweep()["executions"] == 0
        assert c.get(f"/api/v1/workflows/executions/{done['executionId']}/poll").status_code == 200
        clock.advance(2 * 86400)
        removed = server.services.retention.sweep()
        assert removed["executions"] == 1 and removed["files"] == 1
        assert c.get(f"/api/v1/workflows/executions/{done['executionId']}/poll").status_code == 404
        assert httpx.get(out_url).status_code in (403, 404)  # the file row is gone (and the link expired)
        assert server.services.files.get_any(up["fileId"]) is None
        assert c.get(f"/api/v1/workflows/{wid}").status_code == 200  # workflows are kept
