"""Google's Gemini API (generativelanguage.googleapis.com), generateContent for images and text.

    POST {base}/v1beta/models/{model}:generateContent     header x-goog-api-key
    {"contents": [{"role": "user", "parts": [{"text"}, {"inlineData": {"mimeType", "data"}}]}],
     "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio", "imageSize"}}}
    -> {"candidates": [{"content": {"parts": [{"text"} | {"inlineData": {"mimeType", "data"}}]},
                        "finishReason"}], "promptFeedback"?: {"blockReason"}}
Errors: {"error": {"code", "message", "status", "details": [{"@type": ...RetryInfo, "retryDelay": "30s"}]}}.

`run` takes either a ready request body (with `contents`) or the short form
`{"prompt", "images": [data: URI | (bytes, type)], "aspect_ratio", "image_size"}`.
The answer arrives on the request itself: no job id, nothing to resume.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from typing import Any

import httpx

from nodeloom.providers._http import VendorHTTP, decode_data_uri, retry_after
from nodeloom.providers.base import Clock, Media, OnProgress, OnSubmitted, ProviderResult
from nodeloom.providers.errors import ProviderError, ProviderUnavailable

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"


class GeminiProvider:
    name = "gemini"
    key_setting = "GEMINI_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None,
        http: httpx.AsyncClient,
        base_url: str = DEFAULT_BASE_URL,
        clock: Clock = time.monotonic,
        request_timeout: float = 180.0,
    ):
        self._api_key = api_key
        self._http = VendorHTTP(
            provider=self.name,
            base_url=base_url,
            headers={"x-goog-api-key": api_key} if api_key else {},
            http=http,
            describe=describe_error,
            clock=clock,
            timeout=request_timeout,
            retry_hint=retry_delay,
        )

    @property
    def unavailable_reason(self) -> str | None:
        if self._api_key:
            return None
        return f"set {self.key_setting} (a Google AI Studio key) or store the account's own Gemini key"

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
        if reason := self.unavailable_reason:
            raise ProviderUnavailable(reason, provider=self.name)
        url = self._http.url(f"/{API_VERSION}/models/{model}:generateContent")
        body = await self._http.json("POST", url, json=self._request_body(arguments), deadline=deadline)
        return self._result(model, body)

    def _request_body(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        if "contents" in arguments:
            return dict(arguments)
        parts: list[dict[str, Any]] = [{"text": str(arguments.get("prompt", ""))}]
        for image in arguments.get("images") or ():
            parts.append({"inlineData": self._inline(image)})
        image_config = {
            key: arguments[name]
            for name, key in (("aspect_ratio", "aspectRatio"), ("image_size", "imageSize"))
            if arguments.get(name)
        }
        config: dict[str, Any] = {
            "responseModalities": list(arguments.get("response_modalities") or ("TEXT", "IMAGE"))
        }
        if image_config:
            config["imageConfig"] = image_config
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}

    def _inline(self, image: Any) -> dict[str, str]:
        if isinstance(image, tuple):
            data, content_type = image
        elif isinstance(image, str) and image.startswith("data:"):
            data, content_type = decode_data_uri(image)
        else:
            raise ProviderError(
                "Gemini takes images inline: pass bytes or a data: URI, not a link", provider=self.name
            )
        return {"mimeType": content_type or "image/png", "data": base64.b64encode(data).decode("ascii")}

    def _result(self, model: str, body: Any) -> ProviderResult:
        candidates = body.get("candidates") if isinstance(body, dict) else None
        if not candidates:
            feedback = body.get("promptFeedback") if isinstance(body, dict) else None
            reason = (feedback or {}).get("blockReason")
            raise ProviderError(
                f"the prompt was blocked ({reason})" if reason else "the model returned no candidates",
                provider=self.name,
            )
        candidate = candidates[0]
        media: list[Media] = []
        texts: list[str] = []
        for part in (candidate.get("content") or {}).get("parts") or ():
            inline = part.get("inlineData")
            if inline:
                try:
                    data = base64.b64decode(inline.get("data", ""))
                except (binascii.Error, ValueError) as exc:
                    raise ProviderError("an image came back with broken base64", provider=self.name) from exc
                media.append(Media(data=data, content_type=inline.get("mimeType")))
            elif "text" in part and not part.get("thought"):
                texts.append(part["text"])
        if not media and not texts:
            reason = candidate.get("finishReason") or "no reason given"
            raise ProviderError(f"the model finished with {reason} and returned nothing", provider=self.name)
        return ProviderResult(
            provider=self.name,
            model=model,
            data=body,
            media=tuple(media),
            text="".join(texts) or None,
            request_id=body.get("responseId"),
        )


def retry_delay(response: httpx.Response) -> float | None:
    """Google puts the wait in a google.rpc.RetryInfo detail ("retryDelay": "30s"), not a header."""
    try:
        details = response.json()["error"]["details"]
    except (ValueError, KeyError, TypeError):
        return None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            return retry_after(delay.rstrip("s"))
    return None


def describe_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return response.text.strip()[:500]
    status = error.get("status")
    message = error.get("message") or ""
    return f"{status}: {message}" if status else message
