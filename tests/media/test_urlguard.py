"""The address guard: every spelling of an internal address is refused, and fetches connect to
the address that was checked. Servers here listen on 127.0.0.1 only; nothing leaves the machine."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nodeloom.media import urlguard
from nodeloom.media.urlguard import (
    AddressGuard,
    FetchError,
    FetchTimeoutError,
    GuardedClient,
    ResponseTooLargeError,
    UnsafeURLError,
    address_problem,
    guarded_fetch,
)

PUBLIC_IP = "93.184.215.14"  # a public address; check_url never connects to it

DNS = {
    "public.test": [PUBLIC_IP],
    "xn--bcher-kva.test": [PUBLIC_IP],  # bücher.test, IDNA-encoded
    "rebind.test": ["10.0.0.5"],
    "meta.test": ["169.254.169.254"],
    "meta6.test": ["fd00:ec2::254"],
    "mixed.test": [PUBLIC_IP, "10.1.2.3"],
    "cgnat.test": ["100.64.0.7"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "loopback.test": ["127.0.0.1"],
}


class FakeResolver:
    """Answers from a table and remembers every question."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = DNS if table is None else table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver()


@pytest.fixture
def guard(resolver: FakeResolver) -> AddressGuard:
    return AddressGuard(resolver=resolver)


# ---------------------------------------------------------------- check_url: refusals


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://2130706433/", "loopback"),  # decimal
        ("http://0x7f000001/", "loopback"),  # hex
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://0177.1/", "loopback"),  # octal, short form
        ("http://0177.0.0.1/", "not a valid URL"),  # dotted-quad octal: httpx refuses it outright
        ("http://127.1/", "loopback"),  # short form
        ("http://127.0.1/", "loopback"),
        ("http://127.0.0.1./", "loopback"),  # trailing dot
        ("http://evil.test@127.0.0.1/", "loopback"),  # userinfo trick
        ("http://user:pw@127.0.0.1:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),  # NAT64-embedded 169.254.169.254
        ("http://[64:ff9b::10.0.0.1]/", "private"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4-embedded 127.0.0.1
        ("http://[2002:a00:1::1]/", "private"),  # 6to4-embedded 10.0.0.1
        ("http://[::127.0.0.1]/", "reserved"),  # deprecated IPv4-compatible
        ("http://[fe80::1]/", "link-local"),
        ("http://[fe80::1%25eth0]/", "link-local"),
        ("http://[fc00::1]/", "private"),
        ("http://[ff02::1]/", "multicast"),
        ("http://[::]/", "unspecified"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://0xc0a80101/", "private"),  # 192.168.1.1 in hex
        ("http://169.254.10.10/", "link-local"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://2852039166/", "metadata"),  # 169.254.169.254 in decimal
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "private|reserved"),
        ("http://255.255.255.255/", "private|reserved"),
        ("http://198.18.0.1/", "private"),
        ("http://localhost/", "loopback name"),
        ("http://LOCALHOST./", "loopback name"),
        ("http://api.localhost/", "loopback name"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata name"),
        ("http://metadata.google.internal./", "metadata name"),
        ("http://rebind.test/", r"rebind.test \(10.0.0.5\) is a private address"),
        ("http://meta.test/", "metadata"),
        ("http://meta6.test/", "metadata"),
        ("http://mixed.test/", r"10\.1\.2\.3"),  # one public and one private answer: refused
        ("http://cgnat.test/", "carrier-grade NAT"),
        ("http://mapped.test/", "loopback"),
        ("http://1.2.3.4.5/", "malformed numeric"),
        ("http://4294967296/", "malformed numeric"),
        ("http://256.1/", "malformed numeric"),
        ("http://example.09/", "malformed numeric"),
        ("http://１２７.０.０.１/", "not a valid URL"),  # full-width digits
        ("http://a%2eb/", "characters a host name cannot have"),
        ("http://unknown.test/", "could not be resolved"),
        ("ftp://public.test/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://public.test/", "only http and https"),
        ("http:///nohost", "no host|not a valid URL"),
        ("not a url", "only http and https|not a valid URL"),
    ],
)
async def test_internal_addresses_are_refused_however_spelled(
    guard: AddressGuard, url: str, reason: str
) -> None:
    with pytest.raises(UnsafeURLError, match=reason) as caught:
        await guard.check_url(url)
    assert caught.value.url == url
    assert caught.value.reason


async def test_resolver_with_no_answer_or_garbage_is_refused() -> None:
    guard = AddressGuard(resolver=FakeResolver({"empty.test": [], "junk.test": ["not-an-ip"]}))
    with pytest.raises(UnsafeURLError, match="does not resolve"):
        await guard.check_url("http://empty.test/")
    with pytest.raises(UnsafeURLError, match="not an address"):
        await guard.check_url("http://junk.test/")


# ---------------------------------------------------------------- check_url: what passes


async def test_public_addresses_pass_without_connecting(guard: AddressGuard, resolver: FakeResolver) -> None:
    target = await guard.check_url("https://public.test:8443/a?b=c")
    assert (target.host, target.port, target.trusted) == ("public.test", 8443, False)
    assert target.addresses == (ipaddress.ip_address(PUBLIC_IP),)
    assert resolver.asked == ["public.test"]

    for literal in (
        "http://8.8.8.8/",
        "http://[2606:4700:4700::1111]/",
        "http://[::ffff:8.8.8.8]/",
        "http://[64:ff9b::808:808]/",
        "http://[2002:808:808::1]/",
    ):
        assert (await guard.check_url(literal)).addresses
    assert resolver.asked == ["public.test"]  # literals are never looked up


async def test_idna_host_is_resolved_in_its_ascii_form(guard: AddressGuard, resolver: FakeResolver) -> None:
    target = await guard.check_url("http://BÜCHER.test/")
    assert target.host == "xn--bcher-kva.test"
    assert resolver.asked == ["xn--bcher-kva.test"]


async def test_userinfo_does_not_change_the_checked_host(guard: AddressGuard) -> None:
    target = await guard.check_url("http://127.0.0.1:80@public.test/")
    assert target.host == "public.test"


async def test_require_https_refuses_plain_http_unless_private_allowed(resolver: FakeResolver) -> None:
    strict = AddressGuard(resolver=resolver)
    with pytest.raises(UnsafeURLError, match="https"):
        await strict.check_url("http://public.test/hook", require_https=True)
    assert (await strict.check_url("https://public.test/hook", require_https=True)).port == 443
    assert (await strict.check_url("http://public.test/hook")).port == 80

    dev = AddressGuard(resolver=resolver, allow_private=True)
    assert (await dev.check_url("http://public.test/hook", require_https=True)).port == 80


async def test_allow_private_lets_internal_addresses_through(resolver: FakeResolver) -> None:
    dev = AddressGuard(resolver=resolver, allow_private=True)
    assert (await dev.check_url("http://127.0.0.1:8000/")).addresses == (ipaddress.ip_address("127.0.0.1"),)
    assert (await dev.check_url("http://rebind.test/")).addresses == (ipaddress.ip_address("10.0.0.5"),)
    with pytest.raises(UnsafeURLError, match="only http and https"):
        await dev.check_url("file:///etc/passwd")


async def test_trusted_hosts_skip_the_check(resolver: FakeResolver) -> None:
    guard = AddressGuard(
        resolver=resolver, trusted_hosts=["comfyui.internal", "http://LLM.internal.:8080/v1", "[::1]"]
    )
    for url in (
        "http://comfyui.internal:8188/prompt",
        "http://llm.internal:8080/v1/chat",
        "http://[::1]:9000/",
    ):
        target = await guard.check_url(url, vendor=True)
        assert target.trusted and target.addresses == ()
    assert resolver.asked == []
    with pytest.raises(UnsafeURLError):
        await guard.check_url("http://other.internal/")  # trust is per host, not per network


def test_address_problem_names_the_reason() -> None:
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert address_problem(ipaddress.ip_address("169.254.169.254")) == "is a cloud metadata address"
    assert address_problem(ipaddress.ip_address("::ffff:10.0.0.1")) == (
        "embeds 10.0.0.1 (IPv4-mapped), which is a private address"
    )


# ---------------------------------------------------------------- a real local server


class _Handler(BaseHTTPRequestHandler):
    server_version = "test"

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        try:
            if path == "/hello":
                self._send(b"hello", content_type="text/plain; charset=UTF-8")
            elif path == "/host":
                self._send(self.headers["Host"].encode())
            elif path == "/echo":
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._send(self.command.encode() + b" " + body)
            elif path == "/redirect":
                self.send_response(int(params.get("status", "302")))
                self.send_header("Location", params["to"])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/loop":
                self.send_response(302)
                self.send_header("Location", "/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/bytes":
                self._send_bytes(int(params["n"]), declare_length=params.get("length") != "no")
            elif path == "/slow":
                self._send_slowly()
            else:
                self.send_error(404)
        except OSError:
            pass  # the client hung up, as the size and time limit tests make it do

    def _send(self, body: bytes, *, content_type: str = "application/octet-stream") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_bytes(self, size: int, *, declare_length: bool) -> None:
        self.send_response(200)
        if declare_length:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        for offset in range(0, size, 1024):  # HTTP/1.0 without a length: the body ends at close
            self.wfile.write(b"x" * min(1024, size - offset))

    def _send_slowly(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "40")
        self.end_headers()
        for _ in range(40):  # one byte every 0.1 s: no single read waits long, the whole takes 4 s
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.1)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a plain HTTP server."""
    yield from _serve()


@pytest.fixture
def local_guard() -> AddressGuard:
    """A strict guard that trusts 127.0.0.1 alone, the way an operator trusts a configured base URL."""
    return AddressGuard(resolver=FakeResolver(), trusted_hosts={"127.0.0.1"})


async def test_strict_guard_refuses_the_local_server_before_connecting(server: str) -> None:
    port = server.split(":")[1]
    for url in (
        f"http://{server}/hello",
        f"http://localhost:{port}/hello",
        f"http://2130706433:{port}/hello",
    ):
        with pytest.raises(UnsafeURLError):
            await guarded_fetch(url, max_bytes=1000, timeout=5)


async def test_allow_private_fetches_the_local_server(server: str) -> None:
    result = await guarded_fetch(
        f"http://{server}/hello", max_bytes=1000, timeout=5, guard=AddressGuard(allow_private=True)
    )
    assert result.status_code == 200
    assert result.content == b"hello"
    assert result.content_type == "text/plain"
    assert result.headers["content-length"] == "5"
    assert result.url == f"http://{server}/hello"


async def test_post_sends_exact_bytes_or_json(server: str, local_guard: AddressGuard) -> None:
    async with GuardedClient(local_guard, vendor=True) as client:
        raw = await client.fetch(
            f"http://{server}/echo", method="POST", content=b'{"a": 1}', max_bytes=1000, timeout=5
        )
        encoded = await client.fetch(
            f"http://{server}/echo", method="POST", json={"a": 1}, max_bytes=1000, timeout=5
        )
    assert raw.content == b'POST {"a": 1}'
    assert encoded.content == b'POST {"a":1}'


async def test_redirects_are_followed_and_each_hop_is_checked(server: str, local_guard: AddressGuard) -> None:
    async with GuardedClient(local_guard, vendor=True) as client:
        followed = await client.fetch(f"http://{server}/redirect?to=/hello", max_bytes=1000, timeout=5)
        assert (followed.content, followed.url) == (b"hello", f"http://{server}/hello")

        not_followed = await client.fetch(
            f"http://{server}/redirect?to=/hello", max_bytes=1000, timeout=5, follow_redirects=False
        )
        assert not_followed.status_code == 302
        assert not_followed.headers["location"] == "/hello"

        port = server.split(":")[1]
        for evil in (
            "http://169.254.169.254/latest/meta-data/iam/",
            f"http://localhost:{port}/hello",
            f"http://2130706433:{port}/hello",
            "http://rebind.test/",
        ):
            quoted = urllib.parse.quote(evil, safe="")
            with pytest.raises(UnsafeURLError) as caught:
                await client.fetch(f"http://{server}/redirect?to={quoted}", max_bytes=1000, timeout=5)
            assert caught.value.url == evil  # the refused hop is named
        with pytest.raises(UnsafeURLError, match="only http and https"):
            await client.fetch(f"http://{server}/redirect?to=file:///etc/passwd", max_bytes=1000, timeout=5)

        with pytest.raises(FetchError, match="more than 3 redirects"):
            await client.fetch(f"http://{server}/loop", max_bytes=1000, timeout=5, max_redirects=3)


async def test_max_bytes_is_enforced_with_and_without_a_declared_length(
    server: str, local_guard: AddressGuard
) -> None:
    async with GuardedClient(local_guard, vendor=True) as client:
        exact = await client.fetch(f"http://{server}/bytes?n=5000&length=no", max_bytes=5000, timeout=5)
        assert len(exact.content) == 5000
        for length in ("yes", "no"):
            with pytest.raises(ResponseTooLargeError, match="larger than 4096 bytes") as caught:
                await client.fetch(
                    f"http://{server}/bytes?n=200000&length={length}", max_bytes=4096, timeout=5
                )
            assert caught.value.max_bytes == 4096


async def test_timeout_bounds_the_whole_fetch_not_each_read(server: str, local_guard: AddressGuard) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError, match="within 0.5 s"):
        await guarded_fetch(f"http://{server}/slow", max_bytes=1000, timeout=0.5, guard=local_guard, vendor=True)
    assert time.monotonic() - started < 3  # the server would have taken 4 s


# ---------------------------------------------------------------- connecting to the checked address


class RebindingResolver:
    """First answer 127.0.0.1 (where the test server is), every later answer 127.0.0.2 (nothing there)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        assert host == "rebind.test"
        self.calls += 1
        return ["127.0.0.1"] if self.calls == 1 else ["127.0.0.2"]


@pytest.fixture
def system_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host the process asks the system resolver about while the test runs."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def recording(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(host.decode() if isinstance(host, bytes) else str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    return asked


async def test_fetch_connects_to_the_checked_address_without_a_second_lookup(
    server: str, system_lookups: list[str]
) -> None:
    port = server.split(":")[1]
    resolver = RebindingResolver()
    guard = AddressGuard(allow_private=True, resolver=resolver)
    result = await guarded_fetch(f"http://rebind.test:{port}/host", max_bytes=1000, timeout=5, guard=guard)

    # Had anything looked the name up again, it would have got 127.0.0.2, where nothing listens.
    assert resolver.calls == 1
    assert "rebind.test" not in system_lookups
    assert result.content == f"rebind.test:{port}".encode()  # the Host header keeps the name


async def test_each_fetch_and_each_hop_is_resolved_and_checked_once(server: str) -> None:
    port = server.split(":")[1]
    resolver = RebindingResolver()
    guard = AddressGuard(allow_private=True, resolver=resolver)
    async with GuardedClient(guard) as client:
        first = await client.fetch(f"http://rebind.test:{port}/hello", max_bytes=100, timeout=5)
        assert first.content == b"hello"
        # The second fetch is checked again and gets the new answer: it must go there, not to a
        # connection or address remembered from the first (127.0.0.2 refuses connections).
        with pytest.raises(FetchError):
            await client.fetch(f"http://rebind.test:{port}/hello", max_bytes=100, timeout=5)
    assert resolver.calls == 2


async def test_unchecked_connections_are_refused_by_the_network_backend(server: str) -> None:
    host, port = server.split(":")
    backend = urlguard._PinnedNetworkBackend()
    with pytest.raises(UnsafeURLError, match="did not check"):
        await backend.connect_tcp(host, int(port))


# ---------------------------------------------------------------- https: the name is kept for SNI and certificates


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_https_connects_to_the_checked_ip_but_verifies_the_name(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed(tmp_path, "pinned.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_path, key_path)
    sni_seen: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _ctx: sni_seen.append(name)
    client_tls = ssl.create_default_context(cafile=str(cert_path))

    for address in _serve(server_tls):
        port = address.split(":")[1]
        guard = AddressGuard(allow_private=True, resolver=FakeResolver({"pinned.test": ["127.0.0.1"]}))
        async with GuardedClient(guard, verify=client_tls) as client:
            result = await client.fetch(f"https://pinned.test:{port}/host", max_bytes=100, timeout=5)
            assert result.content == f"pinned.test:{port}".encode()
            assert sni_seen == ["pinned.test"]

            # The same server by IP: the certificate does not name 127.0.0.1, so TLS must fail.
            with pytest.raises(FetchError):
                await client.fetch(f"https://{address}/host", max_bytes=100, timeout=5)
