"""Media hardening (issue #15): the trusted-host case of the address guard, exact image decode limits,
`video.to_frames` bounded by a memory budget, and tool messages without server paths or object reprs."""

from __future__ import annotations

import asyncio
import io
import ipaddress
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from nodeloom.engine.context import LocalEnvironment, NodeContext
from nodeloom.engine.errors import NodeError
from nodeloom.media import images
from nodeloom.media.images import MAX_IMAGE_PIXELS, decode_image
from nodeloom.media.urlguard import AddressGuard, GuardedClient, UnsafeURLError
from nodeloom.media.values import MediaFile
from nodeloom.nodes import video as V


class Resolver:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return {"localhost": ["127.0.0.1"], "public.test": ["93.184.216.34"]}.get(host, ["10.0.0.9"])


# the address guard: operator base URLs are trusted for vendor calls only --------------------------------
async def test_a_configured_vendor_host_is_trusted_only_for_vendor_calls() -> None:
    resolver = Resolver()
    # the documented local-LLM setup: NODELOOM_OPENAI_BASE_URL=http://localhost:11434/v1
    guard = AddressGuard(resolver=resolver, trusted_hosts=["http://localhost:11434/v1", "http://10.0.0.9:8188"])
    for url in ("http://localhost:11434/v1/chat/completions", "http://localhost:8000/api/v1/keys",
                "https://localhost/", "http://10.0.0.9:8188/prompt", "http://10.0.0.9:22/"):
        with pytest.raises(UnsafeURLError):
            await guard.check_url(url)  # a user's URL: checked whatever the operator configured
        with pytest.raises(UnsafeURLError):
            await guard.check_url(url, require_https=False)
    vendor = await guard.check_url("http://localhost:11434/v1/files/result.png", vendor=True)
    assert vendor.trusted and vendor.addresses == ()
    # a public host is fine either way, and never trusted blindly
    public = await guard.check_url("https://public.test/a.png")
    assert not public.trusted and public.addresses == (ipaddress.ip_address("93.184.216.34"),)
    # vendor trust is per configured host: another private host is still refused on a vendor call
    with pytest.raises(UnsafeURLError):
        await guard.check_url("http://internal.test/", vendor=True)


async def test_a_guarded_client_refuses_a_trusted_host_for_user_fetches() -> None:
    guard = AddressGuard(resolver=Resolver(), trusted_hosts=["http://127.0.0.1:9/v1"])
    async with GuardedClient(guard) as client:
        with pytest.raises(UnsafeURLError, match="loopback"):
            await client.fetch("http://127.0.0.1:9/v1/anything", max_bytes=100, timeout=5)


# images: the pixel limit is exact and checked from the header --------------------------------------------
def png_of(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("1", size).save(buf, "PNG")  # one bit a pixel: a big image, a tiny file
    return buf.getvalue()


@pytest.mark.parametrize("size", [(11000, 11000), (8001, 8000), (MAX_IMAGE_PIXELS + 1, 1)])
def test_images_over_the_pixel_limit_are_refused_before_decoding(size: tuple[int, int],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = png_of(size)
    assert len(data) < 200_000 and size[0] * size[1] > MAX_IMAGE_PIXELS
    decoded: list[object] = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with pytest.raises(NodeError) as refused:
        decode_image(data)
    assert refused.value.code == "image_too_large"
    assert decoded == []  # refused from the header: nothing was decoded


def test_images_within_the_limit_decode() -> None:
    assert decode_image(png_of((300, 200))).size == (300, 200)
    with pytest.raises(NodeError) as refused:
        images.check_pixels((10, 11), limit=100)
    assert refused.value.code == "image_too_large"
    images.check_pixels((10, 10), limit=100)


def test_undecodable_images_name_no_object_reprs() -> None:
    for data in (b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40):
        with pytest.raises(NodeError) as refused:
            decode_image(data)
        assert refused.value.code == "invalid_image"
        assert " at 0x" not in refused.value.message and "<_io" not in refused.value.message


# video.to_frames: decoded frames count against a memory budget --------------------------------------------
pytestmark_video = pytest.mark.skipif(V.ffmpeg_unavailable() is not None, reason="imageio-ffmpeg binary missing")


class Ctx:
    def __init__(self, tmp_path: Path):
        self.env = LocalEnvironment({"workdir": tmp_path})

    async def _emit(self, node_id: str, fraction: float, message: str | None) -> None:
        pass

    def __call__(self) -> NodeContext:
        return NodeContext(execution_id="e1", account_id="acc", node_id="n1", inputs={}, env=self.env,
                           emit_progress=self._emit, cancel_event=asyncio.Event())


async def clip(ctx: Ctx, n: int = 10, size: tuple[int, int] = (64, 48)) -> MediaFile:
    frames = [Image.new("RGB", size, (i * 20, 100, 200 - i * 20)) for i in range(n)]
    return (await V.VideoFromFrames().run(ctx(), frames=frames, fps=10))["video"]


@pytestmark_video
async def test_to_frames_counts_frames_against_the_memory_budget(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Ctx(tmp_path)
    video = await clip(ctx, 10)
    frame = 64 * 48 * V.BYTES_PER_PIXEL
    monkeypatch.setattr(V, "MAX_DECODED_FRAME_BYTES", 4 * frame)  # four frames fit
    loaded: list[int] = []
    real_load = V.load_images
    monkeypatch.setattr(V, "load_images", lambda paths, *a: loaded.append(len(paths)) or real_load(paths, *a))
    with pytest.raises(NodeError) as refused:
        await V.VideoToFrames().run(ctx(), video=video, max_frames=100, fps=0, start=0)
    assert refused.value.code == "node_memory"
    assert loaded == []  # refused before a frame was decoded into memory
    assert not list(tmp_path.glob("*.frames"))  # nor are the frames left on disk
    fits = await V.VideoToFrames().run(ctx(), video=video, max_frames=4, fps=0, start=0)
    assert len(fits["frames"]) == 4
    monkeypatch.setattr(V, "MAX_DECODED_FRAME_BYTES", frame - 1)  # not even one frame
    with pytest.raises(NodeError) as refused:
        await V.VideoToFrames().run(ctx(), video=video, max_frames=1, fps=0, start=0)
    assert refused.value.code == "node_memory"


def test_loading_frames_counts_each_against_the_budget(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (10, 10)).save(path)
        paths.append(path)
    assert len(V.load_images(paths, max_bytes=3 * 10 * 10 * V.BYTES_PER_PIXEL)) == 3
    with pytest.raises(NodeError) as refused:
        V.load_images(paths, max_bytes=2 * 10 * 10 * V.BYTES_PER_PIXEL)
    assert refused.value.code == "node_memory"


@pytestmark_video
async def test_media_errors_carry_no_server_paths(tmp_path: Path) -> None:
    bad = tmp_path / "deep" / "folder" / "upload.mp4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(NodeError) as refused:
        await V.probe(bad)
    assert str(tmp_path) not in refused.value.message and "/deep/" not in refused.value.message
    with pytest.raises(NodeError) as failed:
        await V.run_ffmpeg(None, [*V.media_in(bad), "-f", "null", "-"])
    assert str(tmp_path) not in failed.value.message and "/deep/" not in failed.value.message
    assert V.without_paths("see https://example.com/a/b.mp4 and /srv/data/work/x.mp4") == \
        "see https://example.com/a/b.mp4 and x.mp4"
