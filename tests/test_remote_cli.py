"""`nodeloom remote …` as a user runs it (a real `nodeloom` process) against a live server: a run with an uploaded
image, a bar per node and the downloaded outputs; the lists; the settings file; errors; ComfyUI imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin
from tests.support.server import ROOT, LiveServer, text_graph

OBJECT_INFO = ROOT / "tests" / "comfyui" / "data" / "object_info_core.json"
COMFY_API = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 16711680},
          "_meta": {"title": "EmptyImage"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "Invert Image"}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "remote"},
          "_meta": {"title": "Save Image"}},
}


def remote(*args: str, env: dict[str, str] | None = None, home: Path | None = None, check: bool = True,
           full_cli: bool = False) -> subprocess.CompletedProcess[str]:
    """`nodeloom remote ARGS` in a process of its own (`python -m nodeloom.remote`, which skips loading the
    server's modules; `full_cli` goes through the `nodeloom` command itself)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NODELOOM_") and k != "XDG_CONFIG_HOME"}
    full = {**base, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    if home is not None:
        full["HOME"] = str(home)
    command = ["-m", "nodeloom.cli", "remote"] if full_cli else ["-m", "nodeloom.remote"]
    out = subprocess.run([sys.executable, *command, *args], env=full, cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def poster_graph() -> dict[str, Any]:
    """An uploaded image resized to 16×8, and a greeting: one media and one text output."""
    return {"nodes": [
        {"id": "photo", "type": "input.image", "params": {"name": "image", "required": True}},
        {"id": "resize", "type": "image.resize", "inputs": {"image": {"from": "photo", "output": "image"}},
         "params": {"width": 16, "height": 8, "mode": "stretch"}},
        {"id": "picture", "type": "output.image", "inputs": {"image": {"from": "resize", "output": "image"}},
         "params": {"name": "image"}},
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "world"}},
        {"id": "tpl", "type": "text.template", "inputs": {"text": {"from": "prompt", "output": "text"}},
         "params": {"template": "Hello {{ text }}!"}},
        {"id": "greeting", "type": "output.text", "inputs": {"text": {"from": "tpl", "output": "text"}},
         "params": {"name": "greeting"}},
    ]}


def publish(client: httpx.Client, graph: dict[str, Any], name: str) -> str:
    wid = client.post("/api/v1/workflows", json={"name": name, "graph": graph}).json()["id"]
    assert client.post(f"/api/v1/workflows/{wid}/publish").status_code == 201
    return str(wid)


def test_remote_run_uploads_shows_every_node_and_downloads_the_outputs(server: LiveServer, tmp_path: Path) -> None:
    _account, key = server.account()
    with server.client(key) as c:
        wid = publish(c, poster_graph(), "Remote poster")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(photo)
    env = {"NODELOOM_URL": server.url, "NODELOOM_API_KEY": key}
    out_dir = tmp_path / "out"
    # by name, with a file input and a text input that looks like a number (a text input keeps it as typed)
    shown = remote("run", "Remote poster", "-i", f"image=@{photo}", "-i", "prompt=42", "--download", str(out_dir),
                   env=env, full_cli=True)
    for node in ("photo", "resize", "picture", "prompt", "tpl", "greeting"):  # a bar per node
        assert node in shown.stdout, node
    assert "COMPLETED" in shown.stdout and "Hello 42!" in shown.stdout
    saved = out_dir / "image.png"
    assert f"saved image: {saved.resolve()}" in shown.stdout
    with Image.open(saved) as img:
        assert img.size == (16, 8) and img.getpixel((3, 3))[:3] == (200, 10, 10)

    as_json = json.loads(remote("run", wid, "-i", f"image=@{photo}", "--json", "--download", str(tmp_path / "j"),
                                env=env).stdout)
    assert as_json["status"] == "COMPLETED" and as_json["outputs"]["greeting"] == "Hello world!"
    assert Path(as_json["files"]["image"]).is_file() and as_json["executionId"].startswith("ex_")


def test_remote_lists_from_the_settings_file(server: LiveServer, tmp_path: Path) -> None:
    _account, key = server.account()
    with server.client(key) as c:
        wid = publish(c, text_graph(), "Listed greeter")
        ran = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {"prompt": "x"}},
                     headers={"Prefer": "wait=20"}).json()
    home = tmp_path / "home"
    (home / ".config" / "nodeloom").mkdir(parents=True)
    (home / ".config" / "nodeloom" / "config.toml").write_text(f'url = "{server.url}"\napi_key = "{key}"\n')

    listed = remote("workflows", home=home).stdout
    assert wid in listed and "Listed greeter" in listed and "prompt" in listed
    assert json.loads(remote("workflows", "--json", "-q", "Listed", home=home).stdout)["data"][0]["id"] == wid
    executions = json.loads(remote("executions", "--json", "--workflow", wid, home=home).stdout)["data"]
    assert [e["executionId"] for e in executions] == [ran["executionId"]]
    assert ran["executionId"] in remote("executions", home=home).stdout
    usage = remote("usage", home=home).stdout
    assert "plan pro" in usage and "concurrency" in usage and "executions today" in usage
    assert json.loads(remote("usage", "--json", home=home).stdout)["executions"]["today"] == 1
    # the environment wins over the file, and a flag over both
    bad = remote("usage", env={"NODELOOM_API_KEY": "sk-wrong"}, home=home, check=False)
    assert bad.returncode == 1 and "401" in bad.stderr and "NODELOOM_API_KEY" in bad.stderr
    assert remote("--api-key", key, "usage", env={"NODELOOM_API_KEY": "sk-wrong"}, home=home).returncode == 0


def test_remote_errors_are_one_clear_line(server: LiveServer, tmp_path: Path) -> None:
    _account, key = server.account()
    with server.client(key) as c:
        wid = publish(c, text_graph(), "Errors")
        failing = publish(c, {"nodes": [
            {"id": "p", "type": "input.text", "params": {"name": "p", "default": "x"}},
            {"id": "boom", "type": "test.fail", "inputs": {"value": {"from": "p", "output": "text"}},
             "params": {"message": "it broke"}}]}, "Failing")
    env = {"NODELOOM_URL": server.url, "NODELOOM_API_KEY": key}
    no_key = remote("usage", env={"NODELOOM_URL": server.url}, home=tmp_path, check=False)
    assert no_key.returncode == 2 and "no API key" in no_key.stderr
    invalid = remote("run", wid, "-i", "nope=1", env=env, check=False)
    assert invalid.returncode == 1 and "422 invalid_inputs" in invalid.stderr and "inputs.nope" in invalid.stderr
    missing = remote("run", "wf_missing", env=env, check=False)
    assert missing.returncode == 1 and "404 not_found" in missing.stderr
    unknown = remote("run", "No such workflow", env=env, check=False)
    assert unknown.returncode == 1 and "no workflow named" in unknown.stderr
    failed = remote("run", failing, env=env, check=False)
    assert failed.returncode == 1 and "FAILED" in failed.stdout and "boom" in failed.stdout
    gone = remote("usage", env={"NODELOOM_URL": "http://127.0.0.1:9", "NODELOOM_API_KEY": key}, check=False)
    assert gone.returncode == 1 and "cannot reach" in gone.stderr


class StubComfy:
    """Enough of a ComfyUI server for the pool's checks: /system_stats, /queue and /object_info."""

    def __init__(self) -> None:
        info = OBJECT_INFO.read_bytes()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = {"/system_stats": b'{"system": {"comfyui_version": "stub"}, "devices": []}',
                        "/queue": b'{"queue_running": [], "queue_pending": []}', "/object_info": info}.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def comfy_stub() -> Iterator[StubComfy]:
    stub = StubComfy()
    yield stub
    stub.stop()


def test_remote_import_comfyui_from_json_and_png(make_server: Callable[..., LiveServer], comfy_stub: StubComfy,
                                                 tmp_path: Path) -> None:
    server = make_server(comfyui_urls=[comfy_stub.url])
    _account, key = server.account()
    with server.client(key) as c:  # the embedded worker reads the pool's node types when it starts
        deadline = time.monotonic() + 60
        while c.get("/api/v1/nodes/comfyui.ImageInvert").status_code != 200:
            assert time.monotonic() < deadline, "the pool's node types never appeared"
            time.sleep(0.1)
    env = {"NODELOOM_URL": server.url, "NODELOOM_API_KEY": key}
    api_file = tmp_path / "invert_api.json"
    api_file.write_text(json.dumps(COMFY_API))
    shown = remote("import-comfyui", str(api_file), env=env).stdout
    assert "imported wf_" in shown and "(invert_api)" in shown and "image (list<image>)" in shown

    png = tmp_path / "ComfyUI_00001_.png"
    meta = PngImagePlugin.PngInfo()
    meta.add_text("prompt", json.dumps(COMFY_API))
    Image.new("RGB", (8, 8)).save(png, pnginfo=meta)
    made = json.loads(remote("import-comfyui", str(png), "--name", "From a PNG", "--json", env=env).stdout)
    assert made["name"] == "From a PNG" and made["id"].startswith("wf_")
    assert {n["type"] for n in made["graph"]["nodes"]} >= {"comfyui.EmptyImage", "comfyui.ImageInvert"}
    assert isinstance(made["importNotes"], list)

    not_comfy = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(not_comfy)
    refused = remote("import-comfyui", str(not_comfy), env=env, check=False)
    assert refused.returncode == 1 and "422" in refused.stderr
