"""The `nodeloom` command line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from PIL import Image
from tests.support.server import ROOT, free_port, spawn_server, wait_http


def cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NODELOOM_DATA_DIR": str(data), "NODELOOM_SECRET_KEY": "test-secret-key-0123456789",
           "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "nodeloom.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=check, timeout=120)


def test_migrate_accounts_keys_and_serve(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert "up to date" in cli(data, "migrate").stdout
    created = json.loads(cli(data, "accounts", "create", "--name", "Acme", "--plan", "starter", "--credits", "50",
                             "--json").stdout.strip())
    assert created["accountId"].startswith("acct_") and created["apiKey"].startswith("sk-")
    key = json.loads(cli(data, "keys", "create", "--account", created["accountId"], "--scopes", "read,execute",
                         "--json").stdout.strip())
    assert key["scopes"] == ["execute", "read"] and key["apiKey"].startswith("sk-")
    bad = cli(data, "keys", "create", "--account", created["accountId"], "--scopes", "root", check=False)
    assert bad.returncode == 2 and "invalid scopes" in bad.stderr
    bad_plan = cli(data, "accounts", "create", "--name", "x", "--plan", "platinum", check=False)
    assert bad_plan.returncode == 2
    port = free_port()
    proc = spawn_server(data, port)
    try:
        wait_http(f"http://127.0.0.1:{port}")
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/account", headers={"Authorization": f"Bearer {created['apiKey']}"})
        assert r.json()["plan"] == "starter" and r.json()["credits"] == 50
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/workflows", headers={"Authorization": f"Bearer {key['apiKey']}"})
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_nodes_catalogue(tmp_path: Path) -> None:
    out = cli(tmp_path, "nodes", "--json").stdout
    types = {n["type"] for n in json.loads(out)["data"]}
    assert {"input.text", "image.resize", "text.template"} <= types
    table = cli(tmp_path, "nodes").stdout
    assert "image.resize" in table and "node types" in table


def test_run_graph_locally(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.new("RGB", (200, 100), (0, 128, 255)).save(src)
    graph = {"nodes": [
        {"id": "img", "type": "input.image", "params": {"name": "image"}},
        {"id": "title", "type": "input.text", "params": {"name": "title", "default": "x"}},
        {"id": "rs", "type": "image.resize", "inputs": {"image": {"from": "img", "output": "image"}},
         "params": {"width": 50, "height": 50, "mode": "fit"}},
        {"id": "t", "type": "text.template", "inputs": {"text": {"from": "title", "output": "text"}},
         "params": {"template": "<{{ text }}>"}},
        {"id": "o1", "type": "output.image", "inputs": {"image": {"from": "rs", "output": "image"}}, "params": {"name": "small"}},
        {"id": "o2", "type": "output.text", "inputs": {"text": {"from": "t", "output": "text"}}, "params": {"name": "label"}},
    ]}
    gf = tmp_path / "graph.json"
    gf.write_text(json.dumps({"name": "x", "graph": graph}))
    out = tmp_path / "out"
    res = cli(tmp_path, "run", str(gf), "-i", f"image=@{src}", "-i", "title=hello", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert Image.open(out / "small.png").size == (50, 25)
    assert json.loads((out / "label.json").read_text()) == "<hello>"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": [{"id": "a", "type": "nope"}]}))
    res = cli(tmp_path, "run", str(bad), check=False)
    assert res.returncode == 2 and "nodes[0].type" in res.stdout


def test_serve_demo_creates_credentials_once(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    port = free_port()
    env = {**os.environ, "NODELOOM_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
    for attempt in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "nodeloom.cli", "serve", "--demo", "--port", str(port)],
                                env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_http(f"http://127.0.0.1:{port}")
            creds = json.loads((data / "demo-credentials.json").read_text())
            assert (data / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
            c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {creds['apiKey']}"})
            r = c.post(f"/api/v1/workflows/{creds['workflowId']}/execute", json={"inputs": {"title": "hey"}},
                       headers={"Prefer": "wait=20"})
            assert r.status_code == 200 and r.json()["status"] == "COMPLETED"
            assert r.json()["outputs"]["caption"].startswith("HEY")
            assert httpx.get(r.json()["outputs"]["image"]["url"]).status_code == 200
            if attempt == 0:
                first = creds
            else:
                assert creds == first  # the second start reuses (and prints) the same credentials
        finally:
            proc.terminate()
            output = proc.communicate(timeout=20)[0]
        assert creds["apiKey"] in output


def test_demo_includes_the_offline_poster_workflow(tmp_path: Path) -> None:
    """With the offline models installed, `serve --demo` publishes a workflow that uses them end to end."""
    from fastapi.testclient import TestClient

    from nodeloom.api import create_app
    from nodeloom.compose import build
    from nodeloom.demo import ensure_demo
    from nodeloom.settings import Settings

    settings = Settings(data_dir=tmp_path / "d", secret_key="test-secret-key-0123456789", process_pool_size=0)
    rt = build(settings, migrate=True)
    if rt.registry.unavailable_reason("upscale.realesrgan") or rt.registry.unavailable_reason("background.remove"):
        import pytest

        if os.environ.get("CI") == "true":
            pytest.fail("the offline models must be installed in CI (make models)")
        pytest.skip("offline models not installed")
    creds = ensure_demo(rt)
    with TestClient(create_app(settings, services=rt)) as c:
        r = c.post(f"/api/v1/workflows/{creds['posterWorkflowId']}/execute", json={"inputs": {"caption": "hi"}},
                   headers={"Authorization": f"Bearer {creds['apiKey']}", "Prefer": "wait=120"})
        body = r.json()
        assert body["status"] == "COMPLETED", body
        poster = body["outputs"]["poster"]
        assert (poster["width"], poster["height"]) == (640, 400)
        img = Image.open(io.BytesIO(c.get(poster["url"].replace("http://testserver", "")).content)).convert("RGB")
        # the dark rectangle of the sample (its background) is gone: the gradient shows through there
        assert sum(img.getpixel((120, 340))) > 3 * 60
        # the subject (the yellow disc) survived the cut-out and the upscale
        r_, g, b = img.getpixel((320, 210))
        assert r_ > 200 and g > 150 and b < 120
