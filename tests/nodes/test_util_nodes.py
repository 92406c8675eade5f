"""util.* nodes through a real server: notes, guarded HTTP requests, hashes, UUIDs, timestamps."""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.server import publish, run_to_end


def graph_for(node: dict[str, Any], outputs: dict[str, str]) -> dict[str, Any]:
    return {"nodes": [node, {"id": "note", "type": "util.note", "params": {"text": "explains the graph"}},
                      *[{"id": f"o_{name}", "type": "output.json", "params": {"name": name},
                         "inputs": {"value": {"from": node["id"], "output": port}}} for name, port in outputs.items()]]}


def test_http_request_is_guarded(make_server: Any) -> None:
    strict = make_server()
    _a, key = strict.account()
    with strict.client(key) as c:
        wid = publish(c, graph_for({"id": "h", "type": "util.http_request",
                                    "inputs": {"url": f"{strict.url}/healthz"}}, {"status": "status"}))
        res = run_to_end(c, wid)
        assert res["status"] == "FAILED" and res["error"]["code"] == "fetch_failed"
        assert "loopback" in res["error"]["message"] or "private" in res["error"]["message"]
    dev = make_server(allow_private_urls=True)
    _a, key = dev.account()
    with dev.client(key) as c:
        wid = publish(c, graph_for({"id": "h", "type": "util.http_request", "inputs": {"url": f"{dev.url}/healthz"}},
                                   {"status": "status", "body": "body"}))
        res = run_to_end(c, wid)
        assert res["outputs"] == {"status": 200, "body": {"status": "ok"}}
        wid = publish(c, graph_for({"id": "h", "type": "util.http_request",
                                    "inputs": {"url": f"{dev.url}/api/v1/workflows"}}, {"status": "status"}))
        res = run_to_end(c, wid)  # no key sent: 401, and failOnError fails the node
        assert res["status"] == "FAILED" and res["error"]["code"] == "http_error"


def test_http_request_keeps_too_deeply_nested_json_as_text(make_server: Any) -> None:
    body = b"[" * 200 + b"]" * 200

    class Deep(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Deep)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        dev = make_server(allow_private_urls=True)
        _a, key = dev.account()
        with dev.client(key) as c:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/deep"
            wid = publish(c, graph_for({"id": "h", "type": "util.http_request", "inputs": {"url": url}},
                                       {"body": "body"}))
            res = run_to_end(c, wid)
        assert res["status"] == "COMPLETED", res
        assert res["outputs"]["body"] == body.decode()  # more than 64 levels: not parsed, passed on as text
    finally:
        httpd.shutdown()


def test_hash_uuid_timestamp(api: tuple[Any, str]) -> None:
    c, _ = api
    wid = publish(c, {"nodes": [
        {"id": "t", "type": "input.text", "params": {"name": "t", "default": "abc"}},
        {"id": "h", "type": "util.hash", "inputs": {"value": {"from": "t", "output": "text"}}},
        {"id": "m", "type": "util.hash", "params": {"algorithm": "md5"}, "inputs": {"value": {"k": [1, 2]}}},
        {"id": "u", "type": "util.uuid"},
        {"id": "s", "type": "util.timestamp"},
        {"id": "f", "type": "util.timestamp", "params": {"format": "%Y"}},
        {"id": "oh", "type": "output.text", "params": {"name": "sha"}, "inputs": {"text": {"from": "h", "output": "hash"}}},
        {"id": "om", "type": "output.text", "params": {"name": "md5"}, "inputs": {"text": {"from": "m", "output": "hash"}}},
        {"id": "ou", "type": "output.text", "params": {"name": "uuid"}, "inputs": {"text": {"from": "u", "output": "uuid"}}},
        {"id": "os", "type": "output.text", "params": {"name": "iso"}, "inputs": {"text": {"from": "s", "output": "text"}}},
        {"id": "ox", "type": "output.json", "params": {"name": "unix"}, "inputs": {"value": {"from": "s", "output": "unix"}}},
        {"id": "of", "type": "output.text", "params": {"name": "year"}, "inputs": {"text": {"from": "f", "output": "text"}}},
    ]})
    first = run_to_end(c, wid)["outputs"]
    second = run_to_end(c, wid)["outputs"]
    assert first["sha"] == hashlib.sha256(b"abc").hexdigest()
    assert first["md5"] == hashlib.md5(b'{"k":[1,2]}').hexdigest()
    assert uuid.UUID(first["uuid"]).version == 4 and first["uuid"] != second["uuid"]  # never cached
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["iso"])
    assert abs(first["unix"] - datetime.now(UTC).timestamp()) < 120
    assert first["year"] == str(datetime.now(UTC).year)
