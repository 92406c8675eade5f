"""A stand-in for an OpenAI-compatible server (`/v1/chat/completions`, `/v1/images/generations`),
faithful to what the `openai` client sends and parses.

Chat answers are deterministic: "echo: <last user text>", plus " [n image(s)]" when the message
carried image parts (whose data: URIs must be base64 images). gpt-image models
answer with `b64_json`; others with a `url` on this host unless `response_format` is `b64_json`.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._server import PNG, Scripted, base_url, pause


@dataclass
class OpenAIBehaviour:
    errors: list[Scripted] = field(default_factory=list)
    """Answered, in order, to the next requests of either endpoint."""
    delay: float = 0.0


class OpenAIStandIn:
    def __init__(self, key: str = "sk-test"):
        self.key = key
        self.epoch = 0
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/files/{name}", self._file, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/images/generations", self._images, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        self.epoch += 1  # answers still in flight from the previous test are dropped
        self.behaviour = OpenAIBehaviour()
        self.requests: list[dict[str, Any]] = []

    async def _chat(self, request: Request) -> Response:
        body, refusal = await self._accept(request)
        if refusal is not None:
            return refusal
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not body.get("model"):
            return _error(400, "'messages' and 'model' are required", "invalid_request_error")
        text, images = "", 0
        for part in _parts(messages[-1].get("content")):
            if part.get("type") == "text":
                text += part.get("text", "")
            elif part.get("type") == "image_url":
                url = (part.get("image_url") or {}).get("url", "")
                if url.startswith("data:") and not _valid_data_uri(url):
                    return _error(400, "Invalid image data", "invalid_request_error", code="invalid_image")
                images += 1
        content = f"echo: {text}" + (f" [{images} image(s)]" if images else "")
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    async def _images(self, request: Request) -> Response:
        body, refusal = await self._accept(request)
        if refusal is not None:
            return refusal
        if not body.get("prompt"):
            return _error(400, "'prompt' is required", "invalid_request_error")
        model = body.get("model") or "dall-e-2"
        count = int(body.get("n") or 1)
        inline = model.startswith("gpt-image") or body.get("response_format") == "b64_json"
        data = [
            {"b64_json": base64.b64encode(PNG).decode()}
            if inline
            else {"url": f"{base_url(request)}/files/{uuid.uuid4().hex}.png"}
            for _ in range(count)
        ]
        answer: dict[str, Any] = {"created": int(time.time()), "data": data}
        if model.startswith("gpt-image"):
            answer.update(output_format="png", size=body.get("size") or "1024x1024", quality="medium")
        return JSONResponse(answer)

    async def _file(self, request: Request) -> Response:
        return Response(PNG, media_type="image/png")

    async def _accept(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return {}, _error(
                401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key"
            )
        if self.behaviour.errors:
            return {}, self.behaviour.errors.pop(0).response()
        started = self.epoch
        await pause(self.behaviour.delay)
        if started != self.epoch:  # the test that wanted this slow answer is over: record nothing
            return {}, Response(status_code=503)
        body = await request.json()
        self.requests.append({"path": request.url.path, "body": body})
        return body, None


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [part for part in content or [] if isinstance(part, dict)]


def _valid_data_uri(url: str) -> bool:
    header, _, payload = url.partition(",")
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error:
        return False
    return header.startswith("data:image/") and header.endswith(";base64") and bool(data)


def _error(status: int, message: str, kind: str, *, code: str | None = None) -> Response:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status
    )


def rate_limited(retry_after: int) -> Scripted:
    return Scripted(
        429,
        {
            "error": {
                "message": "Rate limit reached for requests",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        {"retry-after": str(retry_after)},
    )
