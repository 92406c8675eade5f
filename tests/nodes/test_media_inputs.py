"""input.video / input.audio / input.file: uploaded media reach video nodes as files, through the API."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import imageio_ffmpeg
from tests.support.server import publish, run_to_end


def make_mp4(path: Path, frames: int = 12, fps: int = 6) -> bytes:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc=size=64x48:rate={fps}", "-frames:v", str(frames), "-pix_fmt", "yuv420p", "-y",
                    str(path)], check=True)
    return path.read_bytes()


def make_wav(path: Path, seconds: float = 0.5) -> bytes:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-y", str(path)], check=True)
    return path.read_bytes()


def test_uploaded_video_feeds_video_nodes(api: tuple[Any, str], tmp_path: Path) -> None:
    c, _ = api
    data = make_mp4(tmp_path / "clip.mp4")
    fid = c.post("/api/v1/uploads", files={"file": ("clip.mp4", data, "video/mp4")}).json()["fileId"]
    wid = publish(c, {"nodes": [
        {"id": "v", "type": "input.video", "params": {"name": "clip", "required": True}},
        {"id": "info", "type": "video.info", "inputs": {"video": {"from": "v", "output": "video"}}},
        {"id": "o", "type": "output.json", "params": {"name": "info"}, "inputs": {"value": {"from": "info", "output": "info"}}},
        {"id": "ov", "type": "output.video", "params": {"name": "same"}, "inputs": {"video": {"from": "v", "output": "video"}}},
    ]})
    done = run_to_end(c, wid, {"clip": fid})
    assert done["status"] == "COMPLETED", done
    info = done["outputs"]["info"]
    assert (info["width"], info["height"]) == (64, 48) and info["frames"] == 12
    assert done["outputs"]["same"]["contentType"] == "video/mp4"
    # an image is not a video
    png = c.post("/api/v1/uploads", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png")}).json()
    failed = run_to_end(c, wid, {"clip": png["fileId"]})
    assert failed["status"] == "FAILED" and "expected a video" in failed["error"]["message"]


def test_uploaded_audio_and_generic_file(api: tuple[Any, str], tmp_path: Path) -> None:
    c, _ = api
    wav = make_wav(tmp_path / "tone.wav")
    fid = c.post("/api/v1/uploads", files={"file": ("tone.wav", wav, "audio/wav")}).json()["fileId"]
    wid = publish(c, {"nodes": [
        {"id": "a", "type": "input.audio", "params": {"name": "sound"}},
        {"id": "info", "type": "audio.info", "inputs": {"audio": {"from": "a", "output": "audio"}}},
        {"id": "o", "type": "output.json", "params": {"name": "info"}, "inputs": {"value": {"from": "info", "output": "info"}}},
        {"id": "f", "type": "input.file", "params": {"name": "doc"}},
        {"id": "of", "type": "output.file", "params": {"name": "doc"}, "inputs": {"file": {"from": "f", "output": "file"}}},
    ]})
    doc = "data:text/plain;base64,aGVsbG8gbm9kZWxvb20="
    done = run_to_end(c, wid, {"sound": fid, "doc": doc})
    assert done["status"] == "COMPLETED", done
    assert abs(done["outputs"]["info"]["duration"] - 0.5) < 0.05 and done["outputs"]["info"]["sampleRate"] == 44100
    import httpx

    got = httpx.get(done["outputs"]["doc"]["url"])
    assert got.status_code == 200 and got.content == b"hello nodeloom"
