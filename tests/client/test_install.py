"""clients/python installs into a fresh virtual environment with its own dependencies only (httpx and what httpx
needs), and works there against a live server: a client app does not install the server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.server import ROOT, LiveServer, text_graph

CLIENT = ROOT / "clients" / "python"
#: httpx 0.x and its own dependencies, and what a fresh venv starts with
ALLOWED = {"nodeloom-client", "httpx", "httpcore", "h11", "anyio", "idna", "certifi", "sniffio", "typing-extensions",
           "exceptiongroup", "pip", "setuptools"}
FORBIDDEN = {"nodeloom", "fastapi", "sqlalchemy", "pydantic", "uvicorn", "pillow", "numpy", "opencv-python-headless"}

SCRIPT = """
import json, sys
from nodeloom_client import Nodeloom, NotFound
url, key, graph = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with Nodeloom(key, base_url=url) as nl:
    wf = nl.create_workflow("from a fresh venv", graph)
    nl.publish(wf["id"])
    events = []
    result = nl.run(wf["id"], {"prompt": "venv"}, on_progress=lambda p: events.append(p.event))
    try:
        nl.poll("ex_missing")
    except NotFound as e:
        missing = e.code
print(json.dumps({"outputs": result.outputs, "events": events, "missing": missing}))
"""


@pytest.mark.slow
def test_installs_into_a_fresh_venv_with_only_its_own_dependencies(server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the repository
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source)], env=env,
                             capture_output=True, text=True, timeout=400)
    assert install.returncode == 0, install.stdout + install.stderr
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], env=env, capture_output=True,
                            text=True, check=True, timeout=60)
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert "nodeloom-client" in installed and "httpx" in installed
    assert installed <= ALLOWED, installed - ALLOWED
    assert not installed & FORBIDDEN

    _account, key = server.account()
    run = subprocess.run([str(python), "-c", SCRIPT, server.url, key, json.dumps(text_graph())], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["outputs"] == {"greeting": "Hello venv!"} and out["missing"] == "not_found"
    assert out["events"][0] == "execution.started" and out["events"][-1] == "execution.completed"
    # the import came from the fresh venv, not from this repository
    where = subprocess.run([str(python), "-c", "import nodeloom_client; print(nodeloom_client.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60)
    assert str(venv) in where.stdout
