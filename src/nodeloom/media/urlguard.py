"""The address guard: users' and vendors' URLs never reach internal addresses (SSRF).

A URL is refused when its scheme is not http(s) or when any address its host resolves to is
private, loopback, link-local, multicast, reserved, unspecified, carrier-grade NAT or a cloud
metadata endpoint — however the host is spelled (decimal, octal, hex or short IPv4, IPv6 with an
embedded IPv4 address, trailing dots, IDNA).

Checking is only half of it: a second DNS answer could differ from the checked one (DNS rebinding).
`GuardedClient` therefore connects to the very addresses `AddressGuard.check_url` approved — its
network backend never resolves a name itself — while the Host header, TLS SNI and certificate
check still use the URL's host name. Every redirect hop is checked again.

Errors::

    FetchError                 url, reason
     ├── UnsafeURLError        the guard refused the URL (a 422 when the URL came from a user)
     ├── ResponseTooLargeError the answer exceeded max_bytes
     └── FetchTimeoutError     no complete answer within the timeout

Operators' own base URLs (vendor endpoints, S3, ComfyUI, a local LLM) are trusted by host name
(``trusted_hosts``) — but only for a call made for a vendor (``vendor=True``: a vendor's result
URL). A URL that came from a user (an input, a callback, ``util.http_request``) is always checked,
even when it names a trusted host: ``NODELOOM_OPENAI_BASE_URL=http://localhost:11434/v1`` must not
open ``localhost`` to every user. ``allow_private=True`` (``NODELOOM_ALLOW_PRIVATE_URLS=1``)
switches the address check off for development.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

import httpcore
import httpx

__all__ = [
    "AddressGuard",
    "FetchError",
    "FetchResult",
    "FetchTimeoutError",
    "GuardedClient",
    "ResolvedTarget",
    "Resolver",
    "ResponseTooLargeError",
    "UnsafeURLError",
    "address_problem",
    "guarded_fetch",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Maps a host name and port to its IP addresses, as text."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CARRIER_GRADE_NAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text)
    for text in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack…
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
_METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
_HOSTNAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$")


class FetchError(Exception):
    """A guarded fetch that did not produce an answer."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class UnsafeURLError(FetchError):
    """The address guard refused this URL; ``reason`` says why, for a person to read."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason)
        self.args = (f"refused {url}: {reason}",)


class ResponseTooLargeError(FetchError):
    def __init__(self, url: str, max_bytes: int) -> None:
        super().__init__(url, f"the answer is larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


class FetchTimeoutError(FetchError):
    pass


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A URL the guard approved, and where a connection for it may go."""

    url: httpx.URL
    host: str
    """The host as the connection names it: lower case, IDNA-encoded, no IPv6 brackets."""
    port: int
    addresses: tuple[IPAddress, ...]
    """The checked addresses, in the order to try; empty for a trusted host (connect by name)."""
    trusted: bool = False


@dataclass(frozen=True, slots=True)
class FetchResult:
    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str
    """The URL that answered, after redirects."""
    content_type: str | None
    """The media type, lower case and without parameters (``image/png``), if the answer named one."""


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class AddressGuard:
    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        trusted_hosts: Iterable[str] = (),
    ) -> None:
        """``trusted_hosts``: host names (or base URLs, whose host is taken) that skip the check for calls made
        for a vendor (``check_url(..., vendor=True)``), never for users' URLs."""
        self.allow_private = allow_private
        self._resolver = resolver or _system_resolver
        self._trusted_hosts = frozenset(_trusted_host(entry) for entry in trusted_hosts)

    async def check_url(self, url: str | httpx.URL, *, require_https: bool = False,
                        vendor: bool = False) -> ResolvedTarget:
        """Approve ``url`` and return the addresses a connection may use, or raise `UnsafeURLError`.

        ``require_https`` (callback URLs) refuses plain http unless private addresses are allowed.
        ``vendor``: the URL is a vendor's (a result URL of a hosted call), so a host of the operator's
        configured base URLs is trusted; a user's URL (the default) is checked whatever is configured.
        """
        text = str(url)
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UnsafeURLError(text, f"it is not a valid URL ({exc})") from None
        if parsed.scheme not in _DEFAULT_PORTS:
            raise UnsafeURLError(text, "only http and https URLs are allowed")
        if require_https and parsed.scheme != "https" and not self.allow_private:
            raise UnsafeURLError(text, "it must use https")
        host = parsed.raw_host.decode("ascii")
        if not host:
            raise UnsafeURLError(text, "it has no host")
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
        name = host.rstrip(".").lower()
        if vendor and name in self._trusted_hosts:
            return ResolvedTarget(url=parsed, host=host, port=port, addresses=(), trusted=True)

        addresses = await self._addresses(text, host, name, port)
        if not self.allow_private:
            for address in addresses:
                problem = address_problem(address)
                if problem is not None:
                    subject = str(address) if name == str(address) else f"{name} ({address})"
                    raise UnsafeURLError(text, f"{subject} {problem}")
        return ResolvedTarget(url=parsed, host=host, port=port, addresses=addresses)

    async def _addresses(self, url: str, host: str, name: str, port: int) -> tuple[IPAddress, ...]:
        """The addresses ``host`` stands for: parsed when it is a literal, else resolved once."""
        if ":" in name:
            try:
                return (ipaddress.IPv6Address(name.replace("%25", "%")),)
            except ValueError:
                raise UnsafeURLError(url, "its IPv6 address is malformed") from None
        literal = _parse_ipv4_host(url, name)
        if literal is not None:
            return (literal,)
        if not _HOSTNAME.match(name):
            raise UnsafeURLError(url, "its host name has characters a host name cannot have")
        if not self.allow_private:
            if name == "localhost" or name.endswith(".localhost"):
                raise UnsafeURLError(url, f"{name} is a loopback name")
            if name in _METADATA_NAMES:
                raise UnsafeURLError(url, f"{name} is a cloud metadata name")
        try:
            answers = await self._resolver(host, port)
        except OSError as exc:
            raise UnsafeURLError(url, f"{name} could not be resolved ({exc})") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                address = ipaddress.ip_address(answer)
            except ValueError:
                raise UnsafeURLError(url, f"{name} resolved to {answer!r}, which is not an address") from None
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UnsafeURLError(url, f"{name} does not resolve to any address")
        return tuple(addresses)


def address_problem(address: IPAddress) -> str | None:
    """Why a connection to ``address`` is not allowed (``"is a loopback address"``), or None."""
    if address in _METADATA_ADDRESSES:
        return "is a cloud metadata address"
    if address.is_unspecified:
        return "is the unspecified address"
    if address.is_loopback:
        return "is a loopback address"
    if isinstance(address, ipaddress.IPv6Address):
        for label, embedded in _embedded_ipv4(address):
            problem = address_problem(embedded)
            if problem is not None:
                return f"embeds {embedded} ({label}), which {problem}"
        if address.ipv4_mapped is not None or address in _NAT64_WELL_KNOWN:
            return None  # the embedded IPv4 address is the real destination, and it passed
    if address.is_link_local:
        return "is a link-local address"
    if address.is_multicast:
        return "is a multicast address"
    if address in _CARRIER_GRADE_NAT:
        return "is a carrier-grade NAT address"
    if address.is_private:
        return "is a private address"
    if address.is_reserved:
        return "is a reserved address"
    if not address.is_global:
        return "is not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> Iterator[tuple[str, ipaddress.IPv4Address]]:
    if address.ipv4_mapped is not None:
        yield "IPv4-mapped", address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        yield "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        yield "6to4", address.sixtofour
    if address.teredo is not None:
        server, client = address.teredo
        yield "Teredo server", server
        yield "Teredo client", client


def _parse_ipv4_host(url: str, name: str) -> ipaddress.IPv4Address | None:
    """Read a host that ends in a number the way browsers and inet_aton(3) do, or return None.

    ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` all mean 127.0.0.1 to the C resolver;
    treating them as names would let them slip past a check that only sees dotted quads.
    """
    parts = name.split(".")
    last = parts[-1]
    if not (last.isdigit() or _ipv4_number(last) is not None):
        return None  # an ordinary host name
    numbers = [_ipv4_number(part) for part in parts]
    if len(parts) > 4 or any(number is None for number in numbers):
        raise UnsafeURLError(url, f"{name} is a malformed numeric address")
    values = [number for number in numbers if number is not None]
    *leading, final = values
    if any(value > 255 for value in leading) or final >= 256 ** (5 - len(values)):
        raise UnsafeURLError(url, f"{name} is a malformed numeric address")
    packed = final
    for index, value in enumerate(leading):
        packed += value << (8 * (3 - index))
    return ipaddress.IPv4Address(packed)


def _ipv4_number(part: str) -> int | None:
    if not part.isascii():
        return None
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if digits == "" and base == 16:
        return 0
    try:
        return int(digits, base) if digits.isalnum() else None
    except ValueError:
        return None


def _trusted_host(entry: str) -> str:
    host = httpx.URL(entry).raw_host.decode("ascii") if "://" in entry else entry
    return host.strip("[]").rstrip(".").lower()


# The target the current task is connecting for. The connection pool connects in the task that
# sends the request, so the backend sees it; anywhere else it is unset and the connection refused.
_current_target: contextvars.ContextVar[ResolvedTarget | None] = contextvars.ContextVar(
    "nodeloom_urlguard_target", default=None
)


class _PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to the addresses the guard checked for this request."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = _current_target.get()
        if target is None or (target.host, target.port) != (host, port):
            raise UnsafeURLError(f"{host}:{port}", "the address guard did not check this connection")
        if target.trusted:
            return await self._inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                                 socket_options=socket_options)
        failure: Exception | None = None
        for address in target.addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout=timeout,
                                                     local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None, "a checked target always has an address"
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURLError(path, "guarded connections never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, verify: ssl.SSLContext | bool) -> None:
        super().__init__(verify=verify, trust_env=False)
        # httpx 0.28 takes no network backend; its transport sends everything through `_pool`.
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise TypeError("this httpx version is not supported by the address guard")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_PinnedNetworkBackend(),
        )


class GuardedClient:
    """An HTTP client whose every connection goes to an address `AddressGuard` approved.

    One instance may serve many fetches, concurrently, and keeps connections alive between them;
    use it as an async context manager or call `aclose`.
    """

    def __init__(self, guard: AddressGuard, *, verify: ssl.SSLContext | bool = True, vendor: bool = False) -> None:
        """``verify``: TLS verification as httpx takes it (an `ssl.SSLContext` trusts a private CA).
        ``vendor``: the default of `fetch`'s ``vendor`` (False: every URL is a user's unless a call says so)."""
        self.guard = guard
        self.vendor = vendor
        self._client = httpx.AsyncClient(
            transport=_PinnedTransport(verify=verify), trust_env=False, follow_redirects=False
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        max_bytes: int,
        timeout: float,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        follow_redirects: bool = True,
        max_redirects: int = 5,
        require_https: bool = False,
        vendor: bool | None = None,
    ) -> FetchResult:
        """Fetch ``url`` through the guard; every redirect hop is checked like the first URL.

        ``timeout`` bounds the whole fetch (resolving, connecting, redirects and reading), so a
        server that trickles bytes cannot hold it open. ``content`` sends exact bytes (a signed body).
        ``vendor=True`` only for a vendor's result URL: then the operator's configured vendor hosts are
        trusted (`AddressGuard.check_url`); users' URLs leave it False.
        """
        try:
            async with asyncio.timeout(timeout):
                return await self._fetch(
                    url,
                    max_bytes=max_bytes,
                    request=self._client.build_request(
                        method, url, headers=headers, json=json, content=content, timeout=timeout
                    ),
                    follow_redirects=follow_redirects,
                    max_redirects=max_redirects,
                    require_https=require_https,
                    vendor=self.vendor if vendor is None else vendor,
                )
        except TimeoutError:
            raise FetchTimeoutError(url, f"no complete answer within {timeout:g} s") from None
        except httpx.TimeoutException as exc:
            raise FetchTimeoutError(url, f"timed out ({type(exc).__name__})") from exc
        except httpx.InvalidURL as exc:
            raise UnsafeURLError(url, f"it is not a valid URL ({exc})") from None
        except httpx.HTTPError as exc:
            raise FetchError(url, str(exc) or type(exc).__name__) from exc

    async def _fetch(
        self,
        url: str,
        *,
        max_bytes: int,
        request: httpx.Request,
        follow_redirects: bool,
        max_redirects: int,
        require_https: bool,
        vendor: bool = False,
    ) -> FetchResult:
        redirects = 0
        while True:
            target = await self.guard.check_url(request.url, require_https=require_https, vendor=vendor)
            token = _current_target.set(target)
            try:
                response = await self._client.send(request, stream=True)
            finally:
                _current_target.reset(token)
            try:
                if follow_redirects and response.next_request is not None:
                    redirects += 1
                    if redirects > max_redirects:
                        raise FetchError(url, f"more than {max_redirects} redirects")
                    request = response.next_request
                    continue
                body = await _read_at_most(response, max_bytes=max_bytes, url=url)
            finally:
                await response.aclose()
            return FetchResult(
                status_code=response.status_code,
                headers=response.headers,
                content=body,
                url=str(response.url),
                content_type=_media_type(response.headers.get("content-type")),
            )


async def guarded_fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    content: bytes | None = None,
    follow_redirects: bool = True,
    max_redirects: int = 5,
    require_https: bool = False,
    guard: AddressGuard | None = None,
    vendor: bool = False,
) -> FetchResult:
    """One fetch through a fresh `GuardedClient`; ``guard`` defaults to the strict guard."""
    async with GuardedClient(guard or AddressGuard()) as client:
        return await client.fetch(
            url,
            max_bytes=max_bytes,
            timeout=timeout,
            method=method,
            headers=headers,
            json=json,
            content=content,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            require_https=require_https,
            vendor=vendor,
        )


async def _read_at_most(response: httpx.Response, *, max_bytes: int, url: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in response.headers:
        raise ResponseTooLargeError(url, max_bytes)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise ResponseTooLargeError(url, max_bytes)
    return bytes(body)


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    return header.split(";", 1)[0].strip().lower() or None
