"""HTTP plumbing every adapter shares: deadlines as timeouts, vendor errors as ProviderError,
Retry-After, and turning URLs and base64 in vendors' answers into `Media`."""

from __future__ import annotations

import base64
import binascii
import email.utils
import mimetypes
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard
from urllib.parse import unquote_to_bytes

import httpx

from nodeloom.providers.base import Clock, Media
from nodeloom.providers.errors import ProviderError, ProviderTimeout, is_retryable_status

Describe = Callable[[httpx.Response], str]
RetryHint = Callable[[httpx.Response], float | None]


class VendorHTTP:
    """One vendor's endpoint: its base URL, auth headers and how it words its errors."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        http: httpx.AsyncClient,
        describe: Describe,
        clock: Clock,
        timeout: float,
        retry_hint: RetryHint | None = None,
    ):
        """`retry_hint` reads a wait from an error body, for vendors that put it there, not in Retry-After."""
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._base = httpx.URL(self.base_url)
        self._headers = dict(headers)
        self._http = http
        self._describe = describe
        self._clock = clock
        self._timeout = timeout
        self._retry_hint = retry_hint

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def same_host(self, url: str) -> bool:
        try:
            other = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        return (other.scheme, other.host, other.port) == (self._base.scheme, self._base.host, self._base.port)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        deadline: float | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        timeout = self._timeout
        if deadline is not None:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise ProviderTimeout("the deadline passed", provider=self.provider, request_id=request_id)
            timeout = min(timeout, remaining)
        try:
            response = await self._http.request(
                method, url, json=json, params=params, headers=self._headers, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(
                f"no answer from {httpx.URL(url).host} within {timeout:.3g}s",
                provider=self.provider,
                request_id=request_id,
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderError(
                f"could not reach {httpx.URL(url).host}: {exc.__class__.__name__} {exc}".strip(),
                provider=self.provider,
                retryable=True,
                request_id=request_id,
            ) from exc
        if response.is_error:
            wait = retry_after(response.headers.get("retry-after"))
            if wait is None and self._retry_hint is not None:
                wait = self._retry_hint(response)
            raise ProviderError(
                self._describe(response) or response.reason_phrase,
                provider=self.provider,
                status=response.status_code,
                retryable=is_retryable_status(response.status_code),
                retry_after=wait,
                request_id=request_id,
            )
        return response

    async def json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                f"answered {method} {httpx.URL(url).path} with something that is not JSON",
                provider=self.provider,
                status=response.status_code,
                retryable=True,
                request_id=kwargs.get("request_id"),
            ) from exc

    def media_from_url(self, url: str, content_type: str | None = None) -> Media:
        if url.startswith("data:"):
            data, inline_type = decode_data_uri(url)
            return Media(data=data, content_type=content_type or inline_type)
        return Media(url=url, content_type=content_type or guess_type(url), same_host=self.same_host(url))


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def decode_data_uri(uri: str) -> tuple[bytes, str | None]:
    header, _, payload = uri.partition(",")
    content_type = header[len("data:") :].split(";")[0] or None
    try:
        if header.endswith(";base64"):
            return base64.b64decode(payload, validate=True), content_type
    except binascii.Error as exc:
        raise ValueError("a data: URI with broken base64") from exc
    return unquote_to_bytes(payload), content_type


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def guess_type(url: str) -> str | None:
    return mimetypes.guess_type(httpx.URL(url).path)[0]


def is_media_url(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith(("https://", "http://", "data:"))


async def fetch_media(http: httpx.AsyncClient, media: Media, *, max_bytes: int = 512 * 1024 * 1024) -> bytes:
    """The bytes of `media`: inline data, or a download when the URL is on the vendor's own host.

    Any other host is refused here: such URLs belong to the media layer's guarded fetcher.
    """
    if media.data is not None:
        return media.data
    if media.url is None or not media.same_host:
        raise ValueError(f"{media.url!r} is not on the vendor's host; fetch it through the guarded fetcher")
    host = httpx.URL(media.url).host
    chunks: list[bytes] = []
    size = 0
    try:
        async with http.stream("GET", media.url) as response:
            if response.is_error:
                raise ProviderError(
                    f"could not download {media.url}",
                    provider=host,
                    status=response.status_code,
                    retryable=is_retryable_status(response.status_code),
                )
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ProviderError(f"{media.url} is larger than {max_bytes} bytes", provider=host)
                chunks.append(chunk)
    except httpx.TransportError as exc:
        raise ProviderError(f"could not download {media.url}: {exc}", provider=host, retryable=True) from exc
    return b"".join(chunks)
