"""Files are served so that no browser runs them on our origin (issue #15, API.md "Files").

An upload is stored under the type the server sniffs from its bytes, never the client's word; every file
response carries `nosniff` and a sandboxing CSP; anything but plain media is an attachment; a link may point
at a separate files origin; and a malformed signed link is a 403, never a 500. The browser test opens HTML
and SVG uploads (and rows stored before the server sniffed types) in Chromium and proves no script runs.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.support.server import IN_CI, LiveServer, publish, run_to_end
from tests.web.helpers import CHROMIUM, CHROMIUM_ARGS

from nodeloom.services.files import sniff_content_type
from nodeloom.storage.models import File

HTML = (b"<!doctype html><html><body><h1>hi</h1>"
        b"<script>fetch('/pwned?from=html-script');document.title='pwned'</script>"
        b"<img src=x onerror=\"fetch('/pwned?from=html-onerror')\"></body></html>")
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="fetch(\'/pwned?from=svg-onload\')">'
       b"<script>fetch('/pwned?from=svg-script')</script><rect width='10' height='10'/></svg>")


def png(w: int = 8, h: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


def upload(c: httpx.Client, name: str, data: bytes, ctype: str) -> dict[str, Any]:
    r = c.post("/api/v1/uploads", files={"file": (name, data, ctype)})
    assert r.status_code == 201, r.text
    return r.json()


def link(srv: LiveServer, url: str) -> str:
    return url if url.startswith("http") else srv.url + url


def assert_safe_headers(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "sandbox" in [d.strip().split(" ")[0] for d in csp.split(";")]
    assert "default-src 'none'" in csp


# sniffing --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "declared", "stored"), [
    (HTML, "text/html", "text/plain"),
    (SVG, "image/svg+xml", "text/plain"),
    (HTML, "image/png", "text/plain"),          # the client's word is not taken
    (b"\x00\x01binary\xff", "image/png", "application/octet-stream"),
    (png(), "application/octet-stream", "image/png"),
    (png(), "text/html", "image/png"),
    (b"a,b\n1,2\n", "text/csv", "text/csv"),
    (b'{"a": 1}', "application/json", "application/json"),
    (b"%PDF-1.7\n...", "application/pdf", "application/pdf"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "video/mp4", "video/mp4"),
])
def test_the_server_sniffs_the_type(data: bytes, declared: str, stored: str) -> None:
    assert sniff_content_type(data, declared) == stored


def test_uploads_are_stored_under_the_sniffed_type_and_served_safely(api: tuple[httpx.Client, str],
                                                                      server: LiveServer) -> None:
    c, _ = api
    html = upload(c, "evil.html", HTML, "text/html")
    svg = upload(c, "evil.svg", SVG, "image/svg+xml")
    image = upload(c, "ok.png", png(), "image/png")
    assert html["contentType"] == "text/plain" and svg["contentType"] == "text/plain"
    assert image["contentType"] == "image/png"
    with httpx.Client(timeout=30) as anon:  # signed links need no key
        for item in (html, svg):
            r = anon.get(link(server, item["url"]))
            assert r.status_code == 200
            assert_safe_headers(r)
            assert r.headers["content-type"].split(";")[0] == "text/plain"
            assert r.headers["content-disposition"].startswith("attachment")
            assert r.content in (HTML, SVG)
        r = anon.get(link(server, image["url"]))
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.headers["content-disposition"] == "inline"  # plain media may be shown, still sandboxed
        assert_safe_headers(r)


def test_rows_stored_under_an_active_type_are_never_served_as_one(api: tuple[httpx.Client, str],
                                                                   server: LiveServer) -> None:
    """Files stored before the server sniffed types may carry the client's `text/html` or SVG type."""
    c, account_id = api
    files = server.services.files
    for ctype, data in (("text/html", HTML), ("image/svg+xml", SVG), ("application/xhtml+xml", HTML)):
        stored = files.store(account_id=account_id, data=data, content_type="text/plain", name="legacy")
        with server.services.db.write() as s:
            row = s.get(File, stored.id)
            assert row is not None
            row.content_type = ctype  # as an older server wrote it
        r = httpx.get(files.url(stored.id, server.url), timeout=30)
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] == "application/octet-stream"
        assert r.headers["content-disposition"].startswith("attachment")
        assert_safe_headers(r)


def test_node_outputs_are_served_with_the_same_headers(api: tuple[httpx.Client, str], server: LiveServer) -> None:
    c, _ = api
    wid = publish(c, {"nodes": [
        {"id": "img", "type": "input.image", "params": {"name": "image", "required": True}},
        {"id": "out", "type": "output.image", "inputs": {"image": {"from": "img", "output": "image"}},
         "params": {"name": "same"}},
    ]})
    done = run_to_end(c, wid, {"image": upload(c, "a.png", png(), "image/png")["fileId"]})
    assert done["status"] == "COMPLETED", done
    r = httpx.get(link(server, done["outputs"]["same"]["url"]), timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert_safe_headers(r)


# signed links ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("query", [
    "exp=1&sig=%C3%A9",
    "exp=%C2%B2&sig=a",
    "exp=%EF%BC%91&sig=a",            # a full-width digit: str.isdigit() says yes, int() would take it
    "exp=99999999999999999999999999&sig=a",
    "exp=1&sig=" + "a" * 5000,
    "exp=-1&sig=a",
    "exp=&sig=",
    "sig=a",
])
def test_malformed_signed_links_are_403(server: LiveServer, query: str) -> None:
    r = httpx.get(f"{server.url}/api/v1/files/file_x?{query}", timeout=30)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "invalid_signature"


def test_non_ascii_signature_of_a_real_file_is_403(api: tuple[httpx.Client, str], server: LiveServer) -> None:
    c, _ = api
    url = link(server, upload(c, "a.png", png(), "image/png")["url"])
    tampered = url.rsplit("sig=", 1)[0] + "sig=%C3%A9%C3%A9"
    r = httpx.get(tampered, timeout=30)
    assert r.status_code == 403 and r.json()["error"]["code"] == "invalid_signature"


# a separate files origin -------------------------------------------------------------------------------
def test_files_url_serves_links_from_their_own_origin(make_server: Callable[..., LiveServer]) -> None:
    srv = make_server(files_url="http://files.example.test/")
    _acct, key = srv.account()
    with srv.client(key) as c:
        up = upload(c, "a.png", png(), "image/png")
        assert up["url"].startswith("http://files.example.test/api/v1/files/" + up["fileId"] + "?")
        wid = publish(c, {"nodes": [
            {"id": "img", "type": "input.image", "params": {"name": "image", "required": True}},
            {"id": "out", "type": "output.image", "inputs": {"image": {"from": "img", "output": "image"}},
             "params": {"name": "same"}},
        ]})
        done = run_to_end(c, wid, {"image": up["fileId"]})
        assert done["status"] == "COMPLETED", done
        out_url = done["outputs"]["same"]["url"]
        assert out_url.startswith("http://files.example.test/api/v1/files/")
        # the same server answers there (an operator points the files host at it)
        path = out_url.removeprefix("http://files.example.test")
        r = httpx.get(srv.url + path, headers={"Host": "files.example.test"}, timeout=30)
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"


# in a real browser ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        if IN_CI:
            pytest.fail(f"Chromium is not installed at {CHROMIUM} (required in CI)")
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.browser
def test_html_and_svg_uploads_run_no_script_in_chromium(chromium: Any, api: tuple[httpx.Client, str],
                                                        server: LiveServer) -> None:
    from playwright.sync_api import Error as PlaywrightError

    c, account_id = api
    links = {name: link(server, upload(c, name, data, ctype)["url"])
             for name, data, ctype in (("evil.html", HTML, "text/html"), ("evil.svg", SVG, "image/svg+xml"),
                                       ("evil-as-png.png", HTML, "image/png"))}
    files = server.services.files
    for ctype, data in (("text/html", HTML), ("image/svg+xml", SVG)):  # rows an older server stored as given
        stored = files.store(account_id=account_id, data=data, content_type="text/plain", name="legacy")
        with server.services.db.write() as s:
            row = s.get(File, stored.id)
            assert row is not None
            row.content_type = ctype
        links[f"legacy {ctype}"] = files.url(stored.id, server.url)

    context = chromium.new_context(accept_downloads=True)
    hits: list[str] = []

    def record(route: Any) -> None:
        hits.append(route.request.url)
        route.fulfill(status=204, body="")

    context.route("**/pwned*", record)
    # the control: the same HTML served as a page does run, so the detector sees a script that runs
    context.route(f"{server.url}/control.html",
                  lambda route: route.fulfill(status=200, body=HTML, content_type="text/html"))
    try:
        page = context.new_page()
        page.goto(f"{server.url}/control.html")
        page.wait_for_function("document.title === 'pwned'")
        page.wait_for_timeout(200)
        assert any("from=html-script" in hit for hit in hits), hits
        hits.clear()
        # plain media still shows, opened directly and embedded
        picture = link(server, upload(c, "ok.png", png(), "image/png")["url"])
        page.goto(picture)
        assert page.evaluate("document.querySelector('img').naturalWidth") == 8
        embedding = context.new_page()
        embedding.set_content(f'<img id="p" src="{picture}">')
        embedding.wait_for_function("document.getElementById('p').naturalWidth === 8")
        embedding.close()

        for name, url in links.items():
            page = context.new_page()
            try:  # an attachment is a download: Chromium never renders it
                with page.expect_download() as download:
                    try:
                        page.goto(url)
                    except PlaywrightError as exc:
                        assert "Download is starting" in str(exc), (name, str(exc))
                assert download.value.suggested_filename, name
            finally:
                page.close()
            # framed by another page, it still runs nothing
            host = context.new_page()
            host.set_content(f'<iframe src="{url}"></iframe><object data="{url}" type="image/svg+xml"></object>'
                             f'<embed src="{url}" type="text/html">')
            host.wait_for_timeout(300)
            assert host.title() != "pwned"
            host.close()
        assert hits == [], hits
    finally:
        context.close()
