"""The video pack on real media: every node runs the real ffmpeg binary and its output is measured."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from nodeloom.engine import events as ev
from nodeloom.engine.context import LocalEnvironment, NodeContext
from nodeloom.engine.errors import NodeCancelled, NodeError
from nodeloom.engine.executor import run
from nodeloom.engine.graph import validate
from nodeloom.engine.node import Context, Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Param, Port
from nodeloom.media.values import MediaFile
from nodeloom.nodes import core
from nodeloom.nodes import video as V

pytestmark = pytest.mark.skipif(V.ffmpeg_unavailable() is not None, reason="imageio-ffmpeg binary missing")


def colour(i: int) -> tuple[int, int, int]:
    """Frame i of the test clips: a colour far from its neighbours so order can be read back."""
    return (i * 25 % 256, 255 - i * 25 % 256, (i * 70) % 256)


def frames(n: int, size: tuple[int, int] = (64, 48)) -> list[Image.Image]:
    return [Image.new("RGB", size, colour(i)) for i in range(n)]


def near(pixel: Any, expected: tuple[int, int, int], tol: int = 14) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel[:3], expected, strict=True))


class Ctx:
    """A real NodeContext over a LocalEnvironment whose work dir is the test's tmp_path."""

    def __init__(self, tmp_path: Path):
        self.env = LocalEnvironment({"workdir": tmp_path})
        self.progress: list[float] = []
        self.cancel = asyncio.Event()

    async def _emit(self, node_id: str, fraction: float, message: str | None) -> None:
        self.progress.append(fraction)

    def __call__(self, node_id: str = "n1") -> NodeContext:
        return NodeContext(execution_id="e1", account_id="acc", node_id=node_id, inputs={}, env=self.env,
                           emit_progress=self._emit, cancel_event=self.cancel)


@pytest.fixture
def ctx(tmp_path: Path) -> Ctx:
    return Ctx(tmp_path)


async def info(c: Ctx, media: MediaFile) -> dict[str, Any]:
    return (await V.VideoInfo().run(c(), video=media))["info"]


async def clip(c: Ctx, n: int = 10, fps: float = 10, size: tuple[int, int] = (64, 48)) -> MediaFile:
    return (await V.VideoFromFrames().run(c(), frames=frames(n, size), fps=fps))["video"]


async def tone(c: Ctx, seconds: float, **kw: Any) -> MediaFile:
    args = {"frequency": 440, "duration": seconds, "volume": 0.5, "waveform": "sine", "sample_rate": 44100,
            "format": "wav", **kw}
    return (await V.AudioTone().run(c(), **args))["audio"]


async def with_sound(c: Ctx, n: int = 10, fps: float = 10) -> MediaFile:
    return (await V.VideoAddAudio().run(c(), video=await clip(c, n, fps), audio=await tone(c, 3), volume=1.0,
                                        loop_audio=False))["video"]


# ------------------------------------------------------------------------------------------- encode


async def test_from_frames_encodes_every_frame_at_the_rate(ctx: Ctx, tmp_path: Path) -> None:
    v = await clip(ctx, 10, 10)
    assert v.content_type == "video/mp4" and v.path.parent == tmp_path and v.path.stat().st_size > 0
    i = await info(ctx, v)
    assert (i["frames"], i["duration"], i["fps"], i["width"], i["height"]) == (10, 1.0, 10.0, 64, 48)
    assert i["videoCodec"] == "h264" and not i["hasAudio"]
    assert ctx.progress[-1] == 1.0
    # what the file store records beside the file
    assert v.meta == {"durationS": 1.0, "width": 64, "height": 48, "fps": 10.0, "frames": 10}


async def test_from_frames_rounds_odd_sizes_and_resizes_mismatched_frames(ctx: Ctx) -> None:
    mixed = frames(3, (65, 49)) + frames(2, (200, 100))
    v = (await V.VideoFromFrames().run(ctx(), frames=mixed, fps=5))["video"]
    i = await info(ctx, v)
    assert (i["width"], i["height"], i["frames"], i["duration"]) == (64, 48, 5, 1.0)


async def test_from_frames_is_deterministic(ctx: Ctx) -> None:
    a, b = await clip(ctx), await clip(ctx)
    assert a.path != b.path
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


async def test_from_frames_refuses_an_empty_list(ctx: Ctx) -> None:
    with pytest.raises(NodeError, match="no frames"):
        await V.VideoFromFrames().run(ctx(), frames=[], fps=10)


# ------------------------------------------------------------------------------------------- decode


async def test_to_frames_reads_back_every_frame_in_order(ctx: Ctx) -> None:
    out = await V.VideoToFrames().run(ctx(), video=await clip(ctx), max_frames=100, fps=0, start=0)
    assert len(out["frames"]) == 10 and out["fps"] == 10.0
    for i, im in enumerate(out["frames"]):
        assert im.size == (64, 48) and im.mode == "RGB"
        assert near(im.getpixel((32, 24)), colour(i)), (i, im.getpixel((32, 24)))


async def test_to_frames_limits_resamples_and_seeks(ctx: Ctx) -> None:
    v = await clip(ctx)
    assert len((await V.VideoToFrames().run(ctx(), video=v, max_frames=4, fps=0, start=0))["frames"]) == 4
    half = await V.VideoToFrames().run(ctx(), video=v, max_frames=100, fps=5, start=0)
    assert len(half["frames"]) == 5 and half["fps"] == 5
    late = (await V.VideoToFrames().run(ctx(), video=v, max_frames=100, fps=0, start=0.5))["frames"]
    assert len(late) == 5 and near(late[0].getpixel((5, 5)), colour(5))


async def test_thumbnail_takes_the_frame_on_screen(ctx: Ctx) -> None:
    v = await clip(ctx)
    img = (await V.VideoThumbnail().run(ctx(), video=v, time=0.55))["image"]
    assert isinstance(img, Image.Image) and img.size == (64, 48)
    assert near(img.getpixel((10, 10)), colour(5))
    end = (await V.VideoThumbnail().run(ctx(), video=v, time=99))["image"]
    assert near(end.getpixel((10, 10)), colour(9))


async def test_info_describes_video_and_audio_files(ctx: Ctx) -> None:
    i = await info(ctx, await with_sound(ctx))
    assert i["hasAudio"] and i["audioCodec"] == "aac" and i["sampleRate"] == 44100 and i["channels"] == 1
    a = await info(ctx, await tone(ctx, 0.5))
    assert not a["hasVideo"] and a["frames"] == 0 and a["duration"] == pytest.approx(0.5, abs=0.01)


# --------------------------------------------------------------------------------------------- edit


async def test_trim_is_frame_accurate_and_keeps_sound(ctx: Ctx) -> None:
    v = await with_sound(ctx)
    out = (await V.VideoTrim().run(ctx(), video=v, start=0.3, duration=0.5))["video"]
    i = await info(ctx, out)
    assert i["frames"] == 5 and i["duration"] == pytest.approx(0.5, abs=0.03) and i["hasAudio"]
    first = (await V.VideoThumbnail().run(ctx(), video=out, time=0))["image"]
    assert near(first.getpixel((5, 5)), colour(3))
    rest = (await V.VideoTrim().run(ctx(), video=v, start=0.6, duration=0))["video"]
    assert (await info(ctx, rest))["frames"] == 4
    with pytest.raises(NodeError, match="past the video's end"):
        await V.VideoTrim().run(ctx(), video=v, start=5, duration=1)


async def test_concat_joins_clips_of_different_sizes_rates_and_sound(ctx: Ctx) -> None:
    a = await with_sound(ctx, 10, 10)                 # 1 s, 64×48, with audio
    b = await clip(ctx, 5, 5, size=(32, 32))          # 1 s, 32×32, 5 fps, silent
    out = (await V.VideoConcat().run(ctx(), videos=[a, b], width=0, height=0))["video"]
    i = await info(ctx, out)
    assert (i["width"], i["height"], i["fps"], i["frames"]) == (64, 48, 10.0, 20)
    assert i["duration"] == pytest.approx(2.0, abs=0.05) and i["hasAudio"]
    second = (await V.VideoThumbnail().run(ctx(), video=out, time=1.05))["image"]
    assert near(second.getpixel((32, 24)), colour(0))          # b's first frame, letterboxed in the middle
    assert second.getpixel((2, 2))[:3] == pytest.approx((0, 0, 0), abs=20)   # the pad bar is black


async def test_resize_modes(ctx: Ctx) -> None:
    v = await clip(ctx)  # 64×48 (4:3)
    sizes = {}
    for mode in ("fit", "fill", "stretch"):
        out = (await V.VideoResize().run(ctx(), video=v, width=100, height=100, mode=mode))["video"]
        i = await info(ctx, out)
        sizes[mode] = (i["width"], i["height"])
        assert i["frames"] == 10
    assert sizes == {"fit": (100, 76), "fill": (100, 100), "stretch": (100, 100)}


async def test_fps_resamples_without_changing_duration(ctx: Ctx) -> None:
    out = (await V.VideoFps().run(ctx(), video=await clip(ctx), fps=25))["video"]
    i = await info(ctx, out)
    assert (i["fps"], i["frames"], i["duration"]) == (25.0, 25, 1.0)


async def test_to_gif_has_the_requested_frames_size_and_loop(ctx: Ctx) -> None:
    out = (await V.VideoToGif().run(ctx(), video=await clip(ctx), fps=5, width=32, max_seconds=30,
                                    loop=True))["gif"]
    assert out.content_type == "image/gif"
    with Image.open(out.path) as gif:
        assert gif.format == "GIF" and gif.size == (32, 24) and gif.n_frames == 5
        assert gif.info.get("loop") == 0
        gif.seek(2)
        assert near(gif.convert("RGB").getpixel((16, 12)), colour(4), tol=40)
    short = (await V.VideoToGif().run(ctx(), video=await clip(ctx), fps=10, width=0, max_seconds=0.5,
                                      loop=False))["gif"]
    with Image.open(short.path) as gif:
        assert gif.size == (64, 48) and gif.n_frames == 5 and "loop" not in gif.info


async def test_add_audio_keeps_the_video_length_and_loops_on_request(ctx: Ctx) -> None:
    v = await clip(ctx, 20, 10)  # 2 s
    long = (await V.VideoAddAudio().run(ctx(), video=v, audio=await tone(ctx, 5), volume=1, loop_audio=False))
    i = await info(ctx, long["video"])
    assert i["hasAudio"] and i["frames"] == 20 and i["duration"] == pytest.approx(2.0, abs=0.05)
    short = await tone(ctx, 0.5)
    for loop in (False, True):
        out = (await V.VideoAddAudio().run(ctx(), video=v, audio=short, volume=1, loop_audio=loop))["video"]
        wav = (await V.VideoExtractAudio().run(ctx(), video=out, format="wav"))["audio"]
        samples = read_wav(wav.path)
        assert len(samples) / 44100 == pytest.approx(2.0, abs=0.05)
        late = np.abs(samples[int(1.2 * 44100):int(1.8 * 44100)]).max()
        assert (late > 0.3) if loop else (late < 0.01)  # looped tone, or silence after the tone ends
    with pytest.raises(NodeError, match="no audio stream"):
        await V.VideoAddAudio().run(ctx(), video=v, audio=v, volume=1, loop_audio=False)


async def test_speed_changes_length_and_frames(ctx: Ctx) -> None:
    v = await with_sound(ctx)
    fast = await info(ctx, (await V.VideoSpeed().run(ctx(), video=v, factor=2))["video"])
    assert fast["frames"] == 5 and fast["duration"] == pytest.approx(0.5, abs=0.05) and fast["hasAudio"]
    slow = await info(ctx, (await V.VideoSpeed().run(ctx(), video=await clip(ctx), factor=0.25))["video"])
    assert slow["frames"] == 40 and slow["duration"] == pytest.approx(4.0, abs=0.05)


async def test_reverse_plays_backwards(ctx: Ctx) -> None:
    out = (await V.VideoReverse().run(ctx(), video=await with_sound(ctx)))["video"]
    i = await info(ctx, out)
    assert i["frames"] == 10 and i["hasAudio"]
    got = (await V.VideoToFrames().run(ctx(), video=out, max_frames=100, fps=0, start=0))["frames"]
    assert [near(f.getpixel((5, 5)), colour(9 - k)) for k, f in enumerate(got)] == [True] * 10


async def test_pan_zoom_zooms_into_the_image(ctx: Ctx) -> None:
    img = Image.new("RGB", (400, 300), "white")
    img.paste((255, 0, 0), (150, 100, 250, 200))  # a red square in the middle
    out = (await V.VideoPanZoom().run(ctx(), image=img, duration=2, fps=10, width=0, height=0, zoom_start=1,
                                      zoom_end=2, direction="center", easing="linear"))["video"]
    i = await info(ctx, out)
    assert (i["width"], i["height"], i["frames"], i["duration"]) == (400, 300, 20, 2.0)
    got = (await V.VideoToFrames().run(ctx(), video=out, max_frames=100, fps=0, start=0))["frames"]
    red = [float((np.asarray(f)[..., 0] > 200).mean() - (np.asarray(f)[..., 1] > 200).mean()) for f in got]
    assert red[0] == pytest.approx(10000 / 120000, abs=0.01)   # the square's share of the whole image
    assert red[-1] == pytest.approx(4 * 10000 / 120000, abs=0.02)  # zoom 2: four times the share
    assert all(b >= a - 0.005 for a, b in itertools.pairwise(red))


async def test_pan_zoom_pans_across_a_wide_image(ctx: Ctx) -> None:
    img = Image.new("RGB", (800, 200), "white")
    img.paste((0, 0, 255), (0, 0, 100, 200))     # blue left edge
    img.paste((0, 200, 0), (700, 0, 800, 200))   # green right edge
    out = (await V.VideoPanZoom().run(ctx(), image=img, duration=1, fps=10, width=200, height=200, zoom_start=1,
                                      zoom_end=1, direction="left_to_right", easing="ease_in_out"))["video"]
    got = (await V.VideoToFrames().run(ctx(), video=out, max_frames=100, fps=0, start=0))["frames"]
    assert got[0].size == (200, 200) and len(got) == 10
    assert near(got[0].getpixel((20, 100)), (0, 0, 255), tol=30)
    assert near(got[-1].getpixel((180, 100)), (0, 200, 0), tol=30)


async def test_crossfade_blends_and_shortens(ctx: Ctx) -> None:
    red = (await V.VideoFromFrames().run(ctx(), frames=[Image.new("RGB", (64, 48), (255, 0, 0))] * 10,
                                         fps=10))["video"]
    blue = (await V.VideoFromFrames().run(ctx(), frames=[Image.new("RGB", (32, 24), (0, 0, 255))] * 10,
                                          fps=10))["video"]
    out = (await V.VideoCrossfade().run(ctx(), first=red, second=blue, duration=0.6, transition="fade"))["video"]
    i = await info(ctx, out)
    assert (i["frames"], i["width"], i["height"]) == (14, 64, 48) and i["duration"] == pytest.approx(1.4, abs=0.05)
    mid = (await V.VideoThumbnail().run(ctx(), video=out, time=0.7))["image"].getpixel((32, 24))
    assert 60 < mid[0] < 200 and 60 < mid[2] < 200          # half red, half blue
    end = (await V.VideoThumbnail().run(ctx(), video=out, time=1.35))["image"].getpixel((32, 24))
    assert near(end, (0, 0, 255), tol=30)
    with pytest.raises(NodeError, match="shorter than both"):
        await V.VideoCrossfade().run(ctx(), first=red, second=blue, duration=2, transition="fade")


# -------------------------------------------------------------------------------------------- audio


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
        return data.reshape(-1, w.getnchannels())[:, 0]


@pytest.mark.parametrize("waveform", ["sine", "square", "sawtooth", "triangle"])
async def test_tone_has_the_frequency_length_and_volume(ctx: Ctx, waveform: str) -> None:
    a = await tone(ctx, 1.0, frequency=250, volume=0.8, waveform=waveform, sample_rate=16000)
    assert a.content_type == "audio/wav" and a.meta == {"durationS": 1.0}
    s = read_wav(a.path)
    assert len(s) == 16000
    spectrum = np.abs(np.fft.rfft(s))
    assert int(np.argmax(spectrum)) == 250                      # 1 Hz bins over 1 s
    assert np.abs(s).max() == pytest.approx(0.8, abs=0.02)


async def test_tone_formats_and_audio_info(ctx: Ctx) -> None:
    for fmt, codec in (("wav", "pcm_s16le"), ("mp3", "mp3"), ("m4a", "aac")):
        a = await tone(ctx, 1.5, format=fmt, sample_rate=48000)
        i = (await V.AudioInfo().run(ctx(), audio=a))["info"]
        assert i["codec"] == codec and i["sampleRate"] == 48000 and i["channels"] == 1
        assert i["duration"] == pytest.approx(1.5, abs=0.06) and i["bytes"] == a.size


async def test_extract_audio_needs_a_soundtrack(ctx: Ctx) -> None:
    with pytest.raises(NodeError, match="no audio stream"):
        await V.VideoExtractAudio().run(ctx(), video=await clip(ctx), format="wav")


@pytest.mark.parametrize(("ext", "codecs"), [
    ("webm", ["-c:v", "libvpx", "-c:a", "libopus"]), ("mkv", ["-c:v", "libx264", "-c:a", "aac"]),
    ("avi", ["-c:v", "mpeg4", "-c:a", "libmp3lame"]), ("mov", ["-c:v", "libx264", "-c:a", "aac"]),
    ("gif", ["-an"]),
])
async def test_common_containers_are_read(ctx: Ctx, tmp_path: Path, ext: str, codecs: list[str]) -> None:
    src = tmp_path / f"src.{ext}"
    await V.run_ffmpeg(None, ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i",
                              "sine=frequency=440", "-t", "1", *codecs, str(src)])
    media = MediaFile.from_path(src)
    i = await info(ctx, media)
    assert (i["frames"], i["width"], i["height"], i["fps"]) == (10, 64, 48, 10.0)
    assert i["hasAudio"] is (ext != "gif")
    trimmed = await info(ctx, (await V.VideoTrim().run(ctx(), video=media, start=0.5, duration=0))["video"])
    assert trimmed["frames"] == 5 and trimmed["videoCodec"] == "h264"


# ------------------------------------------------------------------------------ safety and plumbing


async def test_inputs_must_be_media_files(ctx: Ctx, tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="must be a video file"):
        await V.VideoInfo().run(ctx(), video=str(tmp_path / "x.mp4"))
    with pytest.raises(NodeError, match="missing"):
        await V.VideoInfo().run(ctx(), video=MediaFile.from_path(tmp_path / "gone.mp4"))


async def test_a_playlist_disguised_as_mp4_is_refused(ctx: Ctx, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read\n")
    evil = tmp_path / "evil.mp4"
    evil.write_text(f"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\nfile://{secret}\n#EXT-X-ENDLIST\n")
    concat = tmp_path / "evil2.mp4"
    concat.write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
    for f in (evil, concat):
        with pytest.raises(NodeError) as err:
            await V.VideoInfo().run(ctx(), video=MediaFile.from_path(f, "video/mp4"))
        assert err.value.code == "invalid_media"


def ffmpeg_children() -> list[int]:
    """Live ffmpeg processes started by this test process (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"ffmpeg" in cmd:
                found.append(int(entry.name))
    return found


async def test_cancel_stops_ffmpeg(ctx: Ctx) -> None:
    ctx.cancel.set()
    with pytest.raises(NodeCancelled):
        await V.VideoPanZoom().run(ctx(), image=Image.new("RGB", (64, 64)), duration=60, fps=30, width=64,
                                   height=64, zoom_start=1, zoom_end=2, direction="center", easing="linear")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
async def test_cancelling_mid_run_kills_the_ffmpeg_child(ctx: Ctx) -> None:
    big = Image.new("RGB", (1920, 1080), "gray")
    job = asyncio.ensure_future(V.VideoPanZoom().run(
        ctx(), image=big, duration=120, fps=30, width=1280, height=720, zoom_start=1, zoom_end=3,
        direction="center", easing="linear"))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if ffmpeg_children():
            break
    assert ffmpeg_children(), "ffmpeg should be running"
    ctx.cancel.set()
    started = time.monotonic()
    with pytest.raises(NodeCancelled):
        await job
    assert time.monotonic() - started < 10
    assert ffmpeg_children() == []


async def test_a_timeout_kills_the_ffmpeg_child(ctx: Ctx) -> None:
    big = Image.new("RGB", (1920, 1080), "gray")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(V.VideoPanZoom().run(
            ctx(), image=big, duration=120, fps=30, width=1280, height=720, zoom_start=1, zoom_end=3,
            direction="center", easing="linear"), 1.0)
    assert ffmpeg_children() == []


async def test_workdir_falls_back_to_a_temporary_folder() -> None:
    async def emit(*_: Any) -> None: ...

    c = NodeContext(execution_id="e", account_id="a", node_id="weird/id", inputs={}, env=LocalEnvironment(),
                    emit_progress=emit, cancel_event=asyncio.Event())
    out = (await V.AudioTone().run(c, frequency=440, duration=0.1, volume=0.5, waveform="sine",
                                   sample_rate=8000, format="wav"))["audio"]
    assert out.path.is_file() and "/" not in out.path.name and out.path.name.startswith("weird_id-")


def test_availability_reports_a_missing_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    assert all(t.availability() is None for t in V.nodes())

    def missing() -> str:
        raise RuntimeError("No ffmpeg exe could be found")

    monkeypatch.setattr(V, "ffmpeg_exe", missing)
    reason = V.VideoTrim.availability()
    assert reason and "imageio-ffmpeg" in reason


def test_parse_probe_handles_rotation_and_channel_layouts() -> None:
    text = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 1 kb/s
  Stream #0:0[0x1](und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv), 1920x1080, 29.97 fps, 30 tbr
      Side data:
        displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1, fltp, 317 kb/s
"""
    p = V.parse_probe(text, frames=1873)
    assert (p.width, p.height, p.fps, p.duration) == (1080, 1920, 29.97, 62.5)
    assert (p.video_codec, p.audio_codec, p.sample_rate, p.channels) == ("hevc", "aac", 48000, 6)


# ------------------------------------------------------------------------------ through the executor


class TestFrames(Node):
    """A test-only source of frames, so a graph can start without media uploads."""

    __test__ = False
    type = "test.frames"
    params = (Param("count", "integer", default=6),)
    outputs = (Port("frames", "list<image>"),)

    async def run(self, ctx: Context, *, count: int) -> dict[str, Any]:
        return {"frames": frames(count)}


async def test_a_graph_of_video_nodes_runs_in_the_executor(tmp_path: Path) -> None:
    registry = Registry([*core.nodes(), *V.nodes(), TestFrames])
    graph = validate({"nodes": [
        {"id": "src", "type": "test.frames", "params": {"count": 12}},
        {"id": "enc", "type": "video.from_frames", "inputs": {"frames": {"from": "src"}}, "params": {"fps": 6}},
        {"id": "fast", "type": "video.speed", "inputs": {"video": {"from": "enc"}}, "params": {"factor": 2}},
        {"id": "gif", "type": "video.to_gif", "inputs": {"video": {"from": "fast"}}, "params": {"fps": 6}},
        {"id": "info", "type": "video.info", "inputs": {"video": {"from": "fast"}}},
        {"id": "out", "type": "output.json", "inputs": {"value": {"from": "info"}}, "params": {"name": "info"}},
    ]}, registry)
    seen: list[ev.Event] = []
    async for event in run(graph, execution_id="x1", inputs={}, env=LocalEnvironment({"workdir": tmp_path})):
        seen.append(event)
    kinds = [e.type for e in seen]
    assert kinds[-1] == ev.EXECUTION_COMPLETED, seen[-2:]
    outputs = seen[-1].outputs or {}
    assert outputs["info"]["frames"] == 6 and outputs["info"]["duration"] == pytest.approx(1.0, abs=0.05)
    assert any(e.type == ev.NODE_PROGRESS for e in seen)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".gif", ".mp4", ".mp4"]
