"""Utility nodes: canvas notes, guarded HTTP requests, hashes, UUIDs, timestamps."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port, too_deep
from nodeloom.media.urlguard import FetchError

MAX_RESPONSE_BYTES = 5 * 1024 * 1024


class Note(Node):
    type = "util.note"
    display_name = "Note"
    description = "A comment on the canvas. It has no ports and does nothing when the workflow runs."
    params = (Param("text", "text", default="", multiline=True, max_length=10_000),)
    resources = "cpu"

    async def run(self, ctx: Context, text: str = "") -> dict[str, Any]:
        return {}


class HttpRequest(Node):
    type = "util.http_request"
    display_name = "HTTP request"
    description = ("Calls a URL and returns its status, headers and body (parsed as JSON when it is JSON). The URL "
                   "goes through the address guard: private, loopback, link-local and metadata addresses are refused.")
    inputs = (Port("url", "text"), Port("body", "json", required=False))
    params = (Param("method", "text", default="GET", enum=("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")),
              Param("headers", "json", default={}),
              Param("timeout", "number", default=30.0, min=1, max=120),
              Param("failOnError", "boolean", default=True, description="Fail the node on a 4xx/5xx answer"))
    outputs = (Port("status", "integer"), Port("body", "any"), Port("headers", "json"))
    resources = "io"
    deterministic = False

    async def run(self, ctx: Context, *, url: str, method: str, headers: Any, timeout: float, failOnError: bool,
                  body: Any = None) -> dict[str, Any]:
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise NodeError("headers must be an object of strings", code="invalid_input")
        try:
            res = await ctx.service("http").fetch(url, method=method, headers=headers, timeout=timeout,
                                                  max_bytes=MAX_RESPONSE_BYTES,
                                                  json=body if body is not None and method != "GET" else None)
        except FetchError as exc:
            raise NodeError(f"request to {url} failed: {exc}", code="fetch_failed") from exc
        if failOnError and res.status_code >= 400:
            raise NodeError(f"{method} {url} answered HTTP {res.status_code}", code="http_error")
        text = res.content.decode("utf-8", errors="replace")
        parsed: Any = text
        if (res.content_type or "").endswith("json"):
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                pass
            if too_deep(parsed):  # kept as the text it came as
                parsed = text
        return {"status": res.status_code, "body": parsed, "headers": dict(res.headers)}


class Hash(Node):
    type = "util.hash"
    display_name = "Hash"
    description = "A hex digest of a text (or of any JSON value, canonicalised) with SHA-256, SHA-1 or MD5."
    inputs = (Port("value", "any"),)
    params = (Param("algorithm", "text", default="sha256", enum=("sha256", "sha1", "md5", "sha512")),)
    outputs = (Port("hash", "text"),)

    async def run(self, ctx: Context, *, value: Any, algorithm: str) -> dict[str, Any]:
        data = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
        return {"hash": hashlib.new(algorithm, data.encode()).hexdigest()}


class Uuid(Node):
    type = "util.uuid"
    display_name = "UUID"
    description = "A random UUID (version 4), new on every run."
    inputs = (Port("trigger", "any", required=False),)
    outputs = (Port("uuid", "text"),)
    deterministic = False

    async def run(self, ctx: Context, trigger: Any = None) -> dict[str, Any]:
        return {"uuid": str(uuid.uuid4())}


class Timestamp(Node):
    type = "util.timestamp"
    display_name = "Timestamp"
    description = "The current time: ISO 8601 UTC text, unix seconds, or formatted with a strftime pattern."
    inputs = (Port("trigger", "any", required=False),)
    params = (Param("format", "text", default="", description="strftime pattern; empty: ISO 8601"),)
    outputs = (Port("text", "text"), Port("unix", "number"))
    deterministic = False

    async def run(self, ctx: Context, *, format: str, trigger: Any = None) -> dict[str, Any]:
        now = datetime.now(UTC)
        text = now.strftime(format) if format else now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"text": text, "unix": now.timestamp()}


def nodes() -> list[type[Node]]:
    return [Note, HttpRequest, Hash, Uuid, Timestamp]
