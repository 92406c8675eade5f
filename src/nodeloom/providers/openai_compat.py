"""OpenAI-compatible HTTP: chat completions and image generation.

One adapter serves OpenAI, OpenRouter, vLLM, Ollama (`/v1`) and llama.cpp's server, which all speak

    POST {base}/chat/completions    {"model", "messages", ...} -> {"choices": [{"message": {"content"}}]}
    POST {base}/images/generations  {"model", "prompt", ...}   -> {"data": [{"b64_json"} | {"url"}]}

Vision goes through `user_message(text, images=[...])`: image parts are `image_url` content parts
whose URL may be a `data:` URI. Errors are `{"error": {"message", "type", "code"}}` (Ollama and
llama.cpp also send `{"error": "text"}`). The answer arrives on the request itself: there is no
job, so `run` neither reports a request id nor resumes one.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from nodeloom.providers._http import VendorHTTP, data_uri
from nodeloom.providers.base import Clock, Media, OnProgress, OnSubmitted, ProviderResult
from nodeloom.providers.errors import ProviderError, ProviderUnavailable

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAICompatProvider:
    name = "openai"
    key_setting = "OPENAI_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None,
        http: httpx.AsyncClient,
        base_url: str = DEFAULT_BASE_URL,
        require_key: bool = True,
        clock: Clock = time.monotonic,
        request_timeout: float = 180.0,
    ):
        """`require_key=False` suits a local server (Ollama, vLLM, llama.cpp) that takes no key."""
        self._api_key = api_key
        self._require_key = require_key
        self._http = VendorHTTP(
            provider=self.name,
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            http=http,
            describe=describe_error,
            clock=clock,
            timeout=request_timeout,
        )

    @property
    def unavailable_reason(self) -> str | None:
        if self._api_key or not self._require_key:
            return None
        return (
            f"set {self.key_setting} (or point NODELOOM_OPENAI_BASE_URL at a local OpenAI-compatible "
            "server) or store the account's own OpenAI key"
        )

    async def run(
        self,
        model: str,
        arguments: Mapping[str, Any],
        *,
        on_progress: OnProgress | None = None,
        on_submitted: OnSubmitted | None = None,
        resume_request_id: str | None = None,
        deadline: float | None = None,
    ) -> ProviderResult:
        """Arguments with `messages` are a chat completion; otherwise an image generation."""
        if "messages" in arguments:
            return await self.chat(model, arguments, deadline=deadline)
        return await self.generate_images(model, arguments, deadline=deadline)

    async def chat(
        self, model: str, arguments: Mapping[str, Any], *, deadline: float | None = None
    ) -> ProviderResult:
        body = await self._post("/chat/completions", {**arguments, "model": model}, deadline=deadline)
        choices = body.get("choices") or []
        if not choices:
            raise ProviderError("the chat completion came back without choices", provider=self.name)
        message = choices[0].get("message") or {}
        return ProviderResult(
            provider=self.name,
            model=model,
            data=body,
            text=_message_text(message.get("content")),
            request_id=body.get("id"),
        )

    async def generate_images(
        self, model: str, arguments: Mapping[str, Any], *, deadline: float | None = None
    ) -> ProviderResult:
        body = await self._post("/images/generations", {**arguments, "model": model}, deadline=deadline)
        content_type = f"image/{body.get('output_format') or arguments.get('output_format') or 'png'}"
        media = []
        for item in body.get("data") or []:
            if item.get("b64_json"):
                try:
                    media.append(Media(data=base64.b64decode(item["b64_json"]), content_type=content_type))
                except (binascii.Error, ValueError) as exc:
                    raise ProviderError("an image came back with broken base64", provider=self.name) from exc
            elif item.get("url"):
                media.append(self._http.media_from_url(item["url"]))
        if not media:
            raise ProviderError("the image generation came back without images", provider=self.name)
        return ProviderResult(provider=self.name, model=model, data=body, media=tuple(media))

    async def _post(self, path: str, body: Mapping[str, Any], *, deadline: float | None) -> dict[str, Any]:
        if reason := self.unavailable_reason:
            raise ProviderUnavailable(reason, provider=self.name)
        answer = await self._http.json("POST", self._http.url(path), json=dict(body), deadline=deadline)
        if not isinstance(answer, dict):
            raise ProviderError(f"{path} answered something that is not an object", provider=self.name)
        return answer


def user_message(text: str, *, images: Sequence[tuple[bytes, str] | str] = ()) -> dict[str, Any]:
    """A user chat message; `images` are (bytes, content type) pairs or URLs (https or data:)."""
    if not images:
        return {"role": "user", "content": text}
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for image in images:
        url = image if isinstance(image, str) else data_uri(*image)
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return {"role": "user", "content": parts}


def _message_text(content: Any) -> str:
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def describe_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    if error:
        return str(error)
    return response.text.strip()[:500]
