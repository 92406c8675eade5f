"""The video pack: local video and audio editing with the ffmpeg binary that imageio-ffmpeg ships.

Every node runs ffmpeg as a child process (argument lists, never a shell), writes its result into the
execution's work dir (`ctx.service("workdir")`) and returns it as a `MediaFile`. Inputs are opened with a
protocol whitelist (`file`, `pipe`) and a demuxer whitelist, so a crafted upload (an HLS playlist or a
concat script named `.mp4`) cannot make ffmpeg read other files or reach the network.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.media.images import check_pixels
from nodeloom.media.values import MediaFile

#: demuxers ffmpeg may use on media we are handed (no hls, concat, image2, subfile, lavfi, ...)
SAFE_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,gif,mp3,wav,ogg,flac,aac,flv,mpegts,mpeg,asf"
VIDEO_CODEC = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
AUDIO_CODEC = ["-c:a", "aac", "-b:a", "192k"]
MP4 = ["-map_metadata", "-1", "-fflags", "+bitexact", "-movflags", "+faststart", "-f", "mp4"]
MAX_FRAMES_OUT = 2000
#: the most memory the frames `video.to_frames` decodes may take together (a decoded RGB frame holds 4 bytes a
#: pixel in Pillow); frames are counted against it before they are decoded, so a tiny file of huge frames fails
#: `node_memory` instead of filling the host's memory
MAX_DECODED_FRAME_BYTES = 1 << 30
BYTES_PER_PIXEL = 4
MAX_REVERSE_BYTES = 1_500_000_000
AUDIO_FORMATS = {"wav": ("audio/wav", ["-c:a", "pcm_s16le"], "wav"),
                 "mp3": ("audio/mpeg", ["-c:a", "libmp3lame", "-b:a", "192k"], "mp3"),
                 "m4a": ("audio/mp4", ["-c:a", "aac", "-b:a", "192k"], "ipod")}
TRANSITIONS = ("fade", "dissolve", "fadeblack", "fadewhite", "wipeleft", "wiperight", "wipeup", "wipedown",
               "slideleft", "slideright", "slideup", "slidedown", "smoothleft", "smoothright", "circleopen",
               "circleclose", "radial", "pixelize", "distance")


# --------------------------------------------------------------------------------------------- ffmpeg


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_unavailable() -> str | None:
    try:
        exe = ffmpeg_exe()
    except (ImportError, RuntimeError, OSError) as exc:  # imageio-ffmpeg missing, or no binary
        return f"the ffmpeg binary was not found ({exc}); install imageio-ffmpeg==0.8.1"
    return None if Path(exe).is_file() else f"ffmpeg binary {exe} does not exist; reinstall imageio-ffmpeg"


def workdir(ctx: Context) -> Path:
    """The execution's work dir, or a fresh temporary folder when the environment has none."""
    try:
        folder = ctx.service("workdir")
    except LookupError:
        folder = None
    path = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="nodeloom-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def out_path(ctx: Context, suffix: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", ctx.node_id)[:40] or "node"
    return workdir(ctx) / f"{stem}-{uuid.uuid4().hex[:12]}{suffix}"


def media_in(*paths: Path, loop: bool = False) -> list[str]:
    """`-i` arguments for files we were handed, locked to local files and known container formats."""
    args: list[str] = []
    for p in paths:
        if loop:
            args += ["-stream_loop", "-1"]
        args += ["-protocol_whitelist", "file,pipe", "-format_whitelist", SAFE_DEMUXERS, "-i", str(p)]
    return args


async def run_ffmpeg(
    ctx: Context | None,
    args: Sequence[str],
    *,
    expected_s: float | None = None,
    stdin: AsyncIterator[bytes] | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> dict[str, str]:
    """Run ffmpeg with `args`; report progress over `span` from its `-progress` stream.

    Returns the last progress block (frame, out_time_us, ...); raises NodeError with ffmpeg's last error
    lines when it fails. The child is killed if the node is cancelled or times out.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-nostats", "-progress", "pipe:1", *args]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    last: dict[str, str] = {}
    block: dict[str, str] = {}
    lo, hi = span
    reported = -1.0

    async def read_progress() -> None:
        nonlocal reported, last, block
        assert proc.stdout is not None
        async for raw in proc.stdout:
            key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
            block[key] = value
            if key != "progress":
                continue
            last, block = block, {}
            if ctx is not None and expected_s and expected_s > 0:
                us = last.get("out_time_us", "")
                done = min(1.0, max(0.0, int(us) / 1e6 / expected_s)) if us.lstrip("-").isdigit() else 0.0
                fraction = lo + (hi - lo) * done
                if fraction - reported >= 0.01:
                    reported = fraction
                    await ctx.progress(fraction)

    async def read_errors() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            tail.append(raw.decode("utf-8", "replace").rstrip())

    async def feed() -> None:
        assert proc.stdin is not None and stdin is not None
        try:
            async for chunk in stdin:
                if ctx is not None and ctx.cancelled():
                    break
                proc.stdin.write(chunk)
                await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # ffmpeg stopped reading; its exit status tells why
        finally:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.close()

    jobs = [asyncio.ensure_future(j) for j in
            [read_progress(), read_errors(), *([feed()] if stdin is not None else [])]]
    try:
        await asyncio.gather(*jobs)
        rc = await proc.wait()
    finally:
        if proc.returncode is None:  # cancelled, timed out or failed while ffmpeg still runs
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
    if rc != 0:
        lines = [ln for ln in tail if ln and not ln.startswith(("  ", "Stream mapping", "Press "))]
        detail = " | ".join(lines[-4:]) or f"exit status {rc}"
        raise NodeError(f"ffmpeg failed: {without_paths(detail)}", code="ffmpeg_failed")
    return last


#: an absolute path in a message (not the path of a URL: no scheme, host or word just before it)
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\":|]+/)+([^\s/'\":|]+)")


def without_paths(text: str) -> str:
    """A tool's message fit for a user: file paths on this server shortened to their last part."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


# ------------------------------------------------------------------------------------------------ probe


@dataclass(frozen=True)
class Probe:
    duration: float = 0.0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    frames: int = 0
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int = 0
    channels: int = 0

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def video_duration(self) -> float:
        """The video stream's own length (frames / fps for constant-rate video), else the container's."""
        if self.frames and self.fps:
            return self.frames / self.fps
        return self.duration

    def public(self, size: int) -> dict[str, Any]:
        return {"duration": round(self.duration, 6), "fps": round(self.fps, 6), "width": self.width,
                "height": self.height, "frames": self.frames, "hasVideo": self.has_video,
                "hasAudio": self.has_audio, "videoCodec": self.video_codec, "audioCodec": self.audio_codec,
                "sampleRate": self.sample_rate, "channels": self.channels, "bytes": size}


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #0:\d+.*?: Video: (\w+)(.*)")
_AUDIO = re.compile(r"Stream #0:\d+.*?: Audio: (\w+)(.*)")
_SIZE = re.compile(r", (\d{1,5})x(\d{1,5})\b")
_FPS = re.compile(r", (\d+(?:\.\d+)?)(k?) (fps|tbr)")
_RATE = re.compile(r", (\d+) Hz")
_LAYOUT = re.compile(r"Hz, ([^,]+)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}


def parse_probe(stderr: str, frames: int) -> Probe:
    """Read `ffmpeg -i` output (first video and audio stream) plus a counted number of frames."""
    duration = 0.0
    if m := _DURATION.search(stderr):
        duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    width = height = 0
    fps = 0.0
    vcodec = acodec = None
    rate = channels = 0
    if v := _VIDEO.search(stderr):
        vcodec, rest = v[1], v[2]
        if s := _SIZE.search(rest):
            width, height = int(s[1]), int(s[2])
        rates = {unit: float(num) * (1000 if k else 1) for num, k, unit in _FPS.findall(rest)}
        fps = rates.get("fps") or rates.get("tbr") or 0.0
        after = stderr[v.end():]
        nxt = after.find("Stream #")
        if (r := _ROTATION.search(after if nxt < 0 else after[:nxt])) and round(abs(float(r[1]))) % 180 == 90:
            width, height = height, width
    if a := _AUDIO.search(stderr):
        acodec, rest = a[1], a[2]
        if r := _RATE.search(rest):
            rate = int(r[1])
        if lay := _LAYOUT.search(rest):
            name = lay[1].strip().split("(")[0].strip()
            if name in _CHANNELS:
                channels = _CHANNELS[name]
            elif n := re.match(r"(\d+) channels", name):
                channels = int(n[1])
    return Probe(duration=duration, width=width, height=height, fps=fps, frames=frames, video_codec=vcodec,
                 audio_codec=acodec, sample_rate=rate, channels=channels)


async def probe(path: Path) -> Probe:
    """Describe a media file by letting ffmpeg open it and count its video packets (no decoding)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-progress", "pipe:1", *media_in(path),
           "-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy", "-f", "null", "-"]
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    text = err.decode("utf-8", "replace")
    if proc.returncode != 0:
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith(" ")]
        raise NodeError(f"cannot read media file: {without_paths(' | '.join(lines[-2:])) or 'unknown format'}",
                        code="invalid_media")
    frames = [int(v) for k, _, v in (ln.partition("=") for ln in out.decode().splitlines())
              if k == "frame" and v.isdigit()]
    info = parse_probe(text, frames[-1] if frames else 0)
    if not info.has_video and not info.has_audio:
        raise NodeError("the file has neither a video nor an audio stream", code="invalid_media")
    return info


def as_media(value: Any, port: str, kind: str = "video") -> MediaFile:
    if not isinstance(value, MediaFile):
        raise NodeError(f"input '{port}' must be a {kind} file, got {type(value).__name__}", code="invalid_input")
    if not value.path.is_file():
        raise NodeError(f"input '{port}': file {value.path.name} is missing", code="invalid_input")
    return value


async def video_info(value: Any, port: str = "video") -> tuple[MediaFile, Probe]:
    media = as_media(value, port)
    info = await probe(media.path)
    if not info.has_video:
        raise NodeError(f"input '{port}' has no video stream", code="invalid_media")
    return media, info


def even(n: float) -> int:
    return max(2, int(n) - int(n) % 2)


async def media_out(path: Path, content_type: str = "video/mp4") -> MediaFile:
    """The result file with the facts the file store records (width, height, durationS) in its meta."""
    info = await probe(path)
    meta: dict[str, Any] = {"durationS": round(info.duration, 3)}
    if info.has_video:
        meta.update(width=info.width, height=info.height, fps=info.fps, frames=info.frames)
    return MediaFile.from_path(path, content_type, **meta)


def silence_or_audio(index: int, info: Probe, seconds: float, label: str) -> str:
    """A filter chain giving input `index`'s first audio stream in a common format, or silence as long."""
    fmt = "aformat=sample_fmts=fltp:sample_rates=44100:channel_layouts=stereo"
    if info.has_audio:
        return f"[{index}:a:0]{fmt},apad,atrim=0:{seconds:.6f},asetpts=N/SR/TB[{label}]"
    return f"aevalsrc=0:c=stereo:s=44100:d={seconds:.6f},{fmt}[{label}]"


def fit_chain(width: int, height: int, fps: float) -> str:
    """Letterbox any video into width×height at a fixed frame rate (so clips can be joined)."""
    return (f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps:g},format=yuv420p")


# ------------------------------------------------------------------------------------------- helpers


def rgb_bytes(image: Image.Image, size: tuple[int, int]) -> bytes:
    """An image as raw RGB of exactly `size` (alpha composited on black)."""
    rgb = image.convert("RGB")
    if rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    return rgb.tobytes()


def load_images(paths: list[Path], max_bytes: int | None = None) -> list[Image.Image]:
    """Decode image files as RGB; each one's size (from its header) is counted against `max_bytes` before it
    is decoded: NodeError `node_memory` past it, `image_too_large` for a single image past the pixel limit."""
    out = []
    total = 0
    for p in paths:
        with Image.open(p) as im:
            check_pixels(im.size)
            total += im.size[0] * im.size[1] * BYTES_PER_PIXEL
            if max_bytes is not None and total > max_bytes:
                raise NodeError(f"the decoded frames would take more than {max_bytes} bytes of memory; "
                                "lower max_frames or fps", code="node_memory")
            out.append(im.convert("RGB"))
    return out


def pan_zoom_frame(image: Image.Image, size: tuple[int, int], zoom: float, px: float, py: float) -> bytes:
    """One Ken Burns frame: a window of the output's aspect, 1/zoom of the largest one, at (px, py) ∈ [0,1]²."""
    iw, ih = image.size
    ow, oh = size
    aspect = ow / oh
    base_w, base_h = (iw, iw / aspect) if iw / ih <= aspect else (ih * aspect, ih)
    w, h = base_w / zoom, base_h / zoom
    left, top = (iw - w) * px, (ih - h) * py
    return image.resize(size, Image.Resampling.BICUBIC, box=(left, top, left + w, top + h)).tobytes()


def atempo_chain(factor: float) -> str:
    parts = []
    while factor > 2.0:
        parts.append("atempo=2.0")
        factor /= 2.0
    while factor < 0.5:
        parts.append("atempo=0.5")
        factor /= 0.5
    parts.append(f"atempo={factor:.6f}")
    return ",".join(parts)


class FfmpegNode(Node):
    """Shared declaration of the local ffmpeg nodes."""

    resources = "cpu"
    deterministic = True

    @classmethod
    def availability(cls) -> str | None:
        return ffmpeg_unavailable()


# ----------------------------------------------------------------------------------------------- nodes

VIDEO_IN = Port("video", "video", description="A video file")
VIDEO_OUT = Port("video", "video", description="An H.264/AAC MP4 file")


class VideoFromFrames(FfmpegNode):
    type = "video.from_frames"
    display_name = "Frames to video"
    description = ("Encodes a list of images into an H.264 MP4 at `fps`. Every frame is resized to the first "
                   "frame's size (rounded down to even numbers).")
    inputs = (Port("frames", "list<image>"),)
    params = (Param("fps", "number", default=24, min=0.1, max=120),)
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, frames: list[Image.Image], fps: float) -> dict[str, Any]:
        if not frames:
            raise NodeError("no frames to encode", code="invalid_input")
        if len(frames) > 20 * MAX_FRAMES_OUT:
            raise NodeError(f"too many frames: {len(frames)} > {20 * MAX_FRAMES_OUT}", code="invalid_input")
        size = (even(frames[0].width), even(frames[0].height))

        async def chunks() -> AsyncIterator[bytes]:
            for frame in frames:
                yield await ctx.run_thread(rgb_bytes, frame, size)

        out = out_path(ctx, ".mp4")
        await run_ffmpeg(ctx, ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
                               "-framerate", f"{fps:g}", "-i", "pipe:0", *VIDEO_CODEC, "-r", f"{fps:g}", *MP4,
                               str(out)], expected_s=len(frames) / fps, stdin=chunks())
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoToFrames(FfmpegNode):
    type = "video.to_frames"
    display_name = "Video to frames"
    description = ("Decodes a video into a list of images: every frame (fps 0) or resampled to `fps`, from "
                   "`start` seconds, at most `max_frames`. Also outputs the frames' rate.")
    inputs = (VIDEO_IN,)
    params = (
        Param("max_frames", "integer", default=100, min=1, max=MAX_FRAMES_OUT),
        Param("fps", "number", default=0, min=0, max=120, description="0 keeps the video's own frame rate"),
        Param("start", "number", default=0, min=0),
    )
    outputs = (Port("frames", "list<image>"), Port("fps", "number"))

    async def run(self, ctx: Context, *, video: MediaFile, max_frames: int, fps: float,
                  start: float) -> dict[str, Any]:
        media, info = await video_info(video)
        rate = fps or info.fps or 25.0
        # the frames' memory, counted before anything is decoded: how many frames of this size fit the budget
        if info.width and info.height:
            check_pixels((info.width, info.height))
        frame_bytes = max(1, info.width * info.height) * BYTES_PER_PIXEL
        fitting = min(max_frames, MAX_DECODED_FRAME_BYTES // frame_bytes)
        if fitting < 1:
            raise NodeError(f"one {info.width}x{info.height} frame takes more than {MAX_DECODED_FRAME_BYTES} bytes "
                            "of memory", code="node_memory")
        # one frame past what fits tells that the video has more; ffmpeg never writes more than that
        decode = max_frames if fitting == max_frames else fitting + 1
        folder = out_path(ctx, ".frames")
        folder.mkdir()
        try:
            seek = ["-ss", f"{start:.6f}"] if start else []
            vf = ["-vf", f"fps={fps:g}"] if fps else []
            expected = min(max(info.video_duration - start, 0.0), decode / rate)
            await run_ffmpeg(ctx, [*seek, *media_in(media.path), "-map", "0:v:0", *vf, "-frames:v",
                                   str(decode), "-fps_mode", "passthrough" if not fps else "cfr",
                                   "-c:v", "png", "-f", "image2", str(folder / "%06d.png")],
                             expected_s=expected, span=(0.0, 0.8))
            paths = sorted(folder.glob("*.png"))
            if len(paths) > fitting:
                raise NodeError(f"{len(paths)} or more frames of {info.width}x{info.height} would take more than "
                                f"{MAX_DECODED_FRAME_BYTES} bytes of memory (at most {fitting} fit); lower max_frames "
                                "or fps", code="node_memory")
            images = await ctx.run_thread(load_images, paths, MAX_DECODED_FRAME_BYTES)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        await ctx.progress(1.0)
        return {"frames": images, "fps": rate}


class VideoTrim(FfmpegNode):
    type = "video.trim"
    display_name = "Trim video"
    description = "Keeps `duration` seconds starting at `start` (frame-accurate; 0 duration keeps the rest)."
    inputs = (VIDEO_IN,)
    params = (Param("start", "number", default=0, min=0), Param("duration", "number", default=0, min=0))
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, video: MediaFile, start: float, duration: float) -> dict[str, Any]:
        media, info = await video_info(video)
        if start >= info.video_duration:
            raise NodeError(f"start {start:g} s is past the video's end ({info.video_duration:g} s)",
                            code="invalid_input")
        length = min(duration or math.inf, info.video_duration - start)
        out = out_path(ctx, ".mp4")
        await run_ffmpeg(ctx, ["-ss", f"{start:.6f}", *media_in(media.path), "-t", f"{length:.6f}",
                               "-map", "0:v:0", "-map", "0:a:0?", *VIDEO_CODEC, *AUDIO_CODEC, *MP4, str(out)],
                         expected_s=length)
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoConcat(FfmpegNode):
    type = "video.concat"
    display_name = "Join videos"
    description = ("Plays videos one after another. Clips are letterboxed to the first clip's size (or "
                   "`width`×`height`) and frame rate; clips without sound get silence when others have it.")
    inputs = (Port("videos", "list<video>"),)
    params = (
        Param("width", "integer", default=0, min=0, max=4096, description="0: the first clip's width"),
        Param("height", "integer", default=0, min=0, max=4096, description="0: the first clip's height"),
    )
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, videos: list[MediaFile], width: int, height: int) -> dict[str, Any]:
        if not videos:
            raise NodeError("no videos to join", code="invalid_input")
        if len(videos) > 100:
            raise NodeError("at most 100 videos can be joined at once", code="invalid_input")
        probes = [await video_info(v, f"videos[{i}]") for i, v in enumerate(videos)]
        first = probes[0][1]
        w, h = even(width or first.width), even(height or first.height)
        fps = first.fps or 25.0
        audio = any(p.has_audio for _, p in probes)
        chains, labels = [], []
        for i, (_, p) in enumerate(probes):
            chains.append(f"[{i}:v:0]{fit_chain(w, h, fps)},trim=0:{p.video_duration:.6f},setpts=PTS-STARTPTS[v{i}]")
            labels.append(f"[v{i}]")
            if audio:
                chains.append(silence_or_audio(i, p, p.video_duration, f"a{i}"))
                labels.append(f"[a{i}]")
        chains.append(f"{''.join(labels)}concat=n={len(videos)}:v=1:a={int(audio)}[v]" + ("[a]" if audio else ""))
        out = out_path(ctx, ".mp4")
        total = sum(p.video_duration for _, p in probes)
        await run_ffmpeg(ctx, [*media_in(*(m.path for m, _ in probes)), "-filter_complex", ";".join(chains),
                               "-map", "[v]", *(["-map", "[a]", *AUDIO_CODEC] if audio else []), *VIDEO_CODEC,
                               *MP4, str(out)], expected_s=total)
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoResize(FfmpegNode):
    type = "video.resize"
    display_name = "Resize video"
    description = ("Resizes a video like image.resize: `fit` keeps the aspect ratio inside the box, `fill` "
                   "covers it and crops, `stretch` ignores the aspect ratio. Sizes are rounded to even numbers.")
    inputs = (VIDEO_IN,)
    params = (
        Param("width", "integer", default=1280, min=2, max=4096),
        Param("height", "integer", default=720, min=2, max=4096),
        Param("mode", "text", default="fit", enum=("fit", "fill", "stretch")),
    )
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, video: MediaFile, width: int, height: int, mode: str) -> dict[str, Any]:
        media, info = await video_info(video)
        w, h = even(width), even(height)
        if mode == "stretch":
            vf = f"scale={w}:{h}"
        elif mode == "fill":
            vf = f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}"
        else:
            vf = f"scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2"
        out = out_path(ctx, ".mp4")
        await run_ffmpeg(ctx, [*media_in(media.path), "-map", "0:v:0", "-map", "0:a:0?", "-vf",
                               f"{vf},setsar=1", *VIDEO_CODEC, *AUDIO_CODEC, *MP4, str(out)],
                         expected_s=info.duration)
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoFps(FfmpegNode):
    type = "video.fps"
    display_name = "Change frame rate"
    description = "Resamples a video to `fps` frames per second (duplicating or dropping frames; same duration)."
    inputs = (VIDEO_IN,)
    params = (Param("fps", "number", default=24, min=1, max=120),)
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, video: MediaFile, fps: float) -> dict[str, Any]:
        media, info = await video_info(video)
        out = out_path(ctx, ".mp4")
        await run_ffmpeg(ctx, [*media_in(media.path), "-map", "0:v:0", "-map", "0:a:0?", "-vf", f"fps={fps:g}",
                               *VIDEO_CODEC, *AUDIO_CODEC, *MP4, str(out)], expected_s=info.duration)
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoToGif(FfmpegNode):
    type = "video.to_gif"
    display_name = "Video to GIF"
    description = ("Makes an animated GIF with an optimised palette: `fps` frames per second, at most `width` "
                   "pixels wide (0 keeps the size), the first `max_seconds` seconds.")
    inputs = (VIDEO_IN,)
    params = (
        Param("fps", "number", default=10, min=1, max=50),
        Param("width", "integer", default=480, min=0, max=2048),
        Param("max_seconds", "number", default=30, min=0.1, max=600),
        Param("loop", "boolean", default=True, description="Repeat forever (else play once)"),
    )
    outputs = (Port("gif", "file", description="An animated GIF (image/gif)"),)

    async def run(self, ctx: Context, *, video: MediaFile, fps: float, width: int, max_seconds: float,
                  loop: bool) -> dict[str, Any]:
        media, info = await video_info(video)
        scale = f",scale='min({width},iw)':-1:flags=lanczos" if width else ""
        graph = (f"[0:v:0]fps={fps:g}{scale},split[a][b];[a]palettegen=stats_mode=diff[p];"
                 f"[b][p]paletteuse=dither=bayer:bayer_scale=5[g]")
        out = out_path(ctx, ".gif")
        await run_ffmpeg(ctx, [*media_in(media.path), "-t", f"{max_seconds:.6f}", "-filter_complex", graph,
                               "-map", "[g]", "-loop", "0" if loop else "-1", "-f", "gif", str(out)],
                         expected_s=min(info.duration, max_seconds))
        await ctx.progress(1.0)
        return {"gif": await media_out(out, "image/gif")}


class VideoThumbnail(FfmpegNode):
    type = "video.thumbnail"
    display_name = "Video frame"
    description = "Takes the frame shown at `time` seconds as an image (past the end: the last frame)."
    inputs = (VIDEO_IN,)
    params = (Param("time", "number", default=0, min=0),)
    outputs = (Port("image", "image"),)

    async def run(self, ctx: Context, *, video: MediaFile, time: float) -> dict[str, Any]:
        media, info = await video_info(video)
        fps = info.fps or 25.0
        last = max(0.0, info.video_duration - 1.0 / fps)
        at = min(math.floor(time * fps + 1e-6) / fps, last)  # the start of the frame on screen at `time`
        out = out_path(ctx, ".png")
        try:
            await run_ffmpeg(ctx, ["-ss", f"{at:.6f}", *media_in(media.path), "-map", "0:v:0", "-frames:v", "1",
                                   "-c:v", "png", "-f", "image2", "-update", "1", str(out)])
            if not out.is_file():
                raise NodeError(f"no frame at {at:g} s", code="ffmpeg_failed")
            (image,) = await ctx.run_thread(load_images, [out])
        finally:
            out.unlink(missing_ok=True)
        await ctx.progress(1.0)
        return {"image": image}


class VideoAddAudio(FfmpegNode):
    type = "video.add_audio"
    display_name = "Add audio to video"
    description = ("Replaces a video's soundtrack with `audio`. The result keeps the video's length: longer "
                   "audio is cut, shorter audio is followed by silence or, with `loop_audio`, repeated.")
    inputs = (VIDEO_IN, Port("audio", "audio"))
    params = (Param("volume", "number", default=1.0, min=0, max=4), Param("loop_audio", "boolean", default=False))
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, video: MediaFile, audio: MediaFile, volume: float,
                  loop_audio: bool) -> dict[str, Any]:
        media, info = await video_info(video)
        sound = as_media(audio, "audio", "audio")
        if not (await probe(sound.path)).has_audio:
            raise NodeError("input 'audio' has no audio stream", code="invalid_media")
        length = info.video_duration
        vcodec = ["-c:v", "copy"] if info.video_codec == "h264" else VIDEO_CODEC
        out = out_path(ctx, ".mp4")
        await run_ffmpeg(ctx, [*media_in(media.path), *media_in(sound.path, loop=loop_audio), "-map", "0:v:0",
                               "-map", "1:a:0", "-af", f"volume={volume:g},apad", "-t", f"{length:.6f}",
                               *vcodec, *AUDIO_CODEC, *MP4, str(out)], expected_s=length)
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoSpeed(FfmpegNode):
    type = "video.speed"
    display_name = "Change speed"
    description = "Plays a video `factor` times faster (2 halves its length; 0.5 doubles it), sound included."
    inputs = (VIDEO_IN,)
    params = (Param("factor", "number", default=2.0, min=0.1, max=10),)
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, video: MediaFile, factor: float) -> dict[str, Any]:
        media, info = await video_info(video)
        fps = info.fps or 25.0
        args = [*media_in(media.path), "-map", "0:v:0", "-vf", f"setpts=PTS/{factor:.6f},fps={fps:g}"]
        if info.has_audio:
            args += ["-map", "0:a:0", "-af", atempo_chain(factor), *AUDIO_CODEC]
        out = out_path(ctx, ".mp4")
        await run_ffmpeg(ctx, [*args, *VIDEO_CODEC, *MP4, str(out)], expected_s=info.duration / factor)
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoReverse(FfmpegNode):
    type = "video.reverse"
    display_name = "Reverse video"
    description = "Plays a video backwards, sound included (the clip is held in memory: keep it short)."
    inputs = (VIDEO_IN,)
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, video: MediaFile) -> dict[str, Any]:
        media, info = await video_info(video)
        need = info.frames * info.width * info.height * 1.5
        if need > MAX_REVERSE_BYTES:
            raise NodeError(f"video too long to reverse in memory ({info.frames} frames of {info.width}×"
                            f"{info.height}); trim it first", code="invalid_input")
        args = [*media_in(media.path), "-map", "0:v:0", "-vf", "reverse"]
        if info.has_audio:
            args += ["-map", "0:a:0", "-af", "areverse", *AUDIO_CODEC]
        out = out_path(ctx, ".mp4")
        await run_ffmpeg(ctx, [*args, *VIDEO_CODEC, *MP4, str(out)], expected_s=info.duration)
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoInfo(FfmpegNode):
    type = "video.info"
    display_name = "Video info"
    description = ("Describes a video or audio file: duration (s), fps, width, height, frames, hasAudio, "
                   "codecs, sampleRate, channels and bytes.")
    inputs = (Port("video", "video"),)
    outputs = (Port("info", "json"),)

    async def run(self, ctx: Context, *, video: MediaFile) -> dict[str, Any]:
        media = as_media(video, "video")
        info = await probe(media.path)
        return {"info": info.public(media.size)}


class VideoPanZoom(FfmpegNode):
    type = "video.pan_zoom"
    display_name = "Pan and zoom (Ken Burns)"
    description = ("Animates a still image into a video: the view zooms from `zoom_start` to `zoom_end` while "
                   "it pans in `direction`. Width/height 0 follow the image (even, at most 1920).")
    inputs = (Port("image", "image"),)
    params = (
        Param("duration", "number", default=5, min=0.2, max=120),
        Param("fps", "number", default=25, min=1, max=60),
        Param("width", "integer", default=0, min=0, max=3840),
        Param("height", "integer", default=0, min=0, max=3840),
        Param("zoom_start", "number", default=1.0, min=1, max=10),
        Param("zoom_end", "number", default=1.3, min=1, max=10),
        Param("direction", "text", default="center",
              enum=("center", "left_to_right", "right_to_left", "top_to_bottom", "bottom_to_top")),
        Param("easing", "text", default="ease_in_out", enum=("linear", "ease_in_out")),
    )
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, duration: float, fps: float, width: int,
                  height: int, zoom_start: float, zoom_end: float, direction: str, easing: str) -> dict[str, Any]:
        src = image.convert("RGB")
        if width and height:
            size = (even(width), even(height))
        else:
            scale = min(1.0, 1920 / max(src.size))
            w = width or (height * src.width / src.height if height else src.width * scale)
            h = height or (width * src.height / src.width if width else src.height * scale)
            size = (even(w), even(h))
        count = max(1, round(duration * fps))
        if count > 20 * MAX_FRAMES_OUT:
            raise NodeError("too many frames; lower duration or fps", code="invalid_input")

        def place(t: float) -> tuple[float, float, float]:
            e = t * t * (3 - 2 * t) if easing == "ease_in_out" else t
            zoom = zoom_start + (zoom_end - zoom_start) * e
            px = {"left_to_right": e, "right_to_left": 1 - e}.get(direction, 0.5)
            py = {"top_to_bottom": e, "bottom_to_top": 1 - e}.get(direction, 0.5)
            return zoom, px, py

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(count):
                zoom, px, py = place(i / (count - 1) if count > 1 else 0.0)
                yield await ctx.run_thread(pan_zoom_frame, src, size, zoom, px, py)

        out = out_path(ctx, ".mp4")
        await run_ffmpeg(ctx, ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
                               "-framerate", f"{fps:g}", "-i", "pipe:0", *VIDEO_CODEC, *MP4, str(out)],
                         expected_s=count / fps, stdin=chunks())
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoCrossfade(FfmpegNode):
    type = "video.crossfade"
    display_name = "Crossfade videos"
    description = ("Joins two videos with a `duration`-second transition (ffmpeg xfade); the second clip is "
                   "letterboxed to the first's size and rate. Length: first + second − duration.")
    inputs = (Port("first", "video"), Port("second", "video"))
    params = (
        Param("duration", "number", default=1.0, min=0.04, max=30),
        Param("transition", "text", default="fade", enum=TRANSITIONS),
    )
    outputs = (VIDEO_OUT,)

    async def run(self, ctx: Context, *, first: MediaFile, second: MediaFile, duration: float,
                  transition: str) -> dict[str, Any]:
        (ma, a), (mb, b) = await video_info(first, "first"), await video_info(second, "second")
        da, db = a.video_duration, b.video_duration
        if duration >= min(da, db):
            raise NodeError(f"transition ({duration:g} s) must be shorter than both clips ({da:g} s, {db:g} s)",
                            code="invalid_input")
        w, h, fps = even(a.width), even(a.height), a.fps or 25.0
        chains = [f"[0:v:0]{fit_chain(w, h, fps)}[v0]", f"[1:v:0]{fit_chain(w, h, fps)}[v1]",
                  f"[v0][v1]xfade=transition={transition}:duration={duration:.6f}:offset={da - duration:.6f}[v]"]
        audio = a.has_audio or b.has_audio
        if audio:
            chains += [silence_or_audio(0, a, da, "a0"), silence_or_audio(1, b, db, "a1"),
                       f"[a0][a1]acrossfade=d={duration:.6f}[a]"]
        out = out_path(ctx, ".mp4")
        await run_ffmpeg(ctx, [*media_in(ma.path, mb.path), "-filter_complex", ";".join(chains), "-map", "[v]",
                               *(["-map", "[a]", *AUDIO_CODEC] if audio else []), *VIDEO_CODEC, *MP4, str(out)],
                         expected_s=da + db - duration)
        await ctx.progress(1.0)
        return {"video": await media_out(out)}


class VideoExtractAudio(FfmpegNode):
    type = "video.extract_audio"
    display_name = "Extract audio"
    description = "Takes a video's soundtrack as an audio file (wav, mp3 or m4a)."
    inputs = (VIDEO_IN,)
    params = (Param("format", "text", default="wav", enum=tuple(AUDIO_FORMATS)),)
    outputs = (Port("audio", "audio"),)

    async def run(self, ctx: Context, *, video: MediaFile, format: str) -> dict[str, Any]:
        media = as_media(video, "video")
        info = await probe(media.path)
        if not info.has_audio:
            raise NodeError("the video has no audio stream", code="invalid_media")
        ctype, codec, muxer = AUDIO_FORMATS[format]
        out = out_path(ctx, f".{format}")
        await run_ffmpeg(ctx, [*media_in(media.path), "-map", "0:a:0", *codec, "-map_metadata", "-1",
                               "-fflags", "+bitexact", "-f", muxer, str(out)], expected_s=info.duration)
        await ctx.progress(1.0)
        return {"audio": await media_out(out, ctype)}


WAVEFORMS = {
    "sine": "sin(2*PI*{f}*t)",
    "square": "2*lt(mod({f}*t\\,1)\\,0.5)-1",
    "sawtooth": "2*mod({f}*t\\,1)-1",
    "triangle": "1-4*abs(mod({f}*t\\,1)-0.5)",
}


class AudioTone(FfmpegNode):
    type = "audio.tone"
    display_name = "Tone"
    description = "Generates a test tone: `waveform` at `frequency` Hz for `duration` seconds."
    params = (
        Param("frequency", "number", default=440, min=1, max=20000),
        Param("duration", "number", default=1.0, min=0.01, max=600),
        Param("volume", "number", default=0.5, min=0, max=1),
        Param("waveform", "text", default="sine", enum=tuple(WAVEFORMS)),
        Param("sample_rate", "integer", default=44100, enum=(8000, 16000, 22050, 24000, 32000, 44100, 48000)),
        Param("format", "text", default="wav", enum=tuple(AUDIO_FORMATS)),
    )
    outputs = (Port("audio", "audio"),)

    async def run(self, ctx: Context, *, frequency: float, duration: float, volume: float, waveform: str,
                  sample_rate: int, format: str) -> dict[str, Any]:
        expr = f"{volume:g}*(" + WAVEFORMS[waveform].format(f=f"{frequency:g}") + ")"
        ctype, codec, muxer = AUDIO_FORMATS[format]
        out = out_path(ctx, f".{format}")
        await run_ffmpeg(ctx, ["-f", "lavfi", "-i", f"aevalsrc={expr}:s={sample_rate}:d={duration:.6f}",
                               *codec, "-map_metadata", "-1", "-fflags", "+bitexact", "-f", muxer, str(out)],
                         expected_s=duration)
        await ctx.progress(1.0)
        return {"audio": await media_out(out, ctype)}


class AudioInfo(FfmpegNode):
    type = "audio.info"
    display_name = "Audio info"
    description = "Describes an audio file: duration (s), sampleRate, channels, codec and bytes."
    inputs = (Port("audio", "audio"),)
    outputs = (Port("info", "json"),)

    async def run(self, ctx: Context, *, audio: MediaFile) -> dict[str, Any]:
        media = as_media(audio, "audio", "audio")
        info = await probe(media.path)
        if not info.has_audio:
            raise NodeError("input 'audio' has no audio stream", code="invalid_media")
        return {"info": {"duration": round(info.duration, 6), "sampleRate": info.sample_rate,
                         "channels": info.channels, "codec": info.audio_codec, "bytes": media.size}}


def nodes() -> list[type[Node]]:
    return [VideoFromFrames, VideoToFrames, VideoTrim, VideoConcat, VideoResize, VideoFps, VideoToGif,
            VideoThumbnail, VideoAddAudio, VideoSpeed, VideoReverse, VideoInfo, VideoPanZoom, VideoCrossfade,
            VideoExtractAudio, AudioTone, AudioInfo]
