"""A stand-in for the Gemini API (generativelanguage.googleapis.com) `models/{model}:generateContent`,
faithful to what `google-genai` sends and parses (any of v1, v1beta, v1alpha).

Answers a text part describing what it received and, unless `responseModalities` is `["TEXT"]`,
one PNG as `inlineData`. `block_reason` answers with no candidates and `promptFeedback`, as Google
does for a blocked prompt.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._server import PNG, Scripted, pause


@dataclass
class GeminiBehaviour:
    errors: list[Scripted] = field(default_factory=list)
    delay: float = 0.0
    block_reason: str | None = None


class GeminiStandIn:
    def __init__(self, key: str = "AIza-test"):
        self.key = key
        self.epoch = 0
        self.reset()
        self.app = Starlette(routes=[Route("/{version}/models/{target}", self._call, methods=["POST"])])

    def reset(self) -> None:
        self.epoch += 1  # answers still in flight from the previous test are dropped
        self.behaviour = GeminiBehaviour()
        self.requests: list[dict[str, Any]] = []

    async def _call(self, request: Request) -> Response:
        version, target = request.path_params["version"], request.path_params["target"]
        model, _, method = target.partition(":")
        if version not in ("v1", "v1beta", "v1alpha") or method != "generateContent":
            return _error(404, f"Method {target} is not found for API version {version}", "NOT_FOUND")
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if key is None:
            return _error(
                403, "Method doesn't allow unregistered callers. Please use an API key.", "PERMISSION_DENIED"
            )
        if key != self.key:
            return _error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
        if self.behaviour.errors:
            return self.behaviour.errors.pop(0).response()
        started = self.epoch
        await pause(self.behaviour.delay)
        if started != self.epoch:  # the test that wanted this slow answer is over: record nothing
            return Response(status_code=503)
        body = await request.json()
        self.requests.append({"version": version, "model": model, "body": body})
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return _error(
                400, "* GenerateContentRequest.contents: contents is not specified", "INVALID_ARGUMENT"
            )
        if self.behaviour.block_reason:
            return JSONResponse(
                {
                    "promptFeedback": {"blockReason": self.behaviour.block_reason},
                    "modelVersion": model,
                    "responseId": uuid.uuid4().hex,
                }
            )
        text, images = "", 0
        for part in contents[-1].get("parts") or []:
            if "text" in part:
                text += part["text"]
            inline = part.get("inlineData")
            if inline is not None:
                try:
                    base64.b64decode(inline.get("data", ""), validate=True)
                except binascii.Error:
                    return _error(400, "Unable to process input image.", "INVALID_ARGUMENT")
                images += 1
        config = body.get("generationConfig") or {}
        modalities = [m.upper() for m in config.get("responseModalities") or ["TEXT"]]
        parts: list[dict[str, Any]] = [
            {"text": f"echo: {text}" + (f" [{images} image(s)]" if images else "")}
        ]
        if "IMAGE" in modalities:
            parts.append({"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}})
        return JSONResponse(
            {
                "candidates": [
                    {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
                ],
                "usageMetadata": {
                    "promptTokenCount": 8,
                    "candidatesTokenCount": 1290,
                    "totalTokenCount": 1298,
                },
                "modelVersion": model,
                "responseId": uuid.uuid4().hex,
            }
        )


def _error(code: int, message: str, status: str, details: list[dict[str, Any]] | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=code)


def exhausted(retry_delay_s: int) -> Scripted:
    """Google's 429: the wait is in a RetryInfo detail, not a Retry-After header."""
    return Scripted(
        429,
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay_s}s"}
                ],
            }
        },
    )
