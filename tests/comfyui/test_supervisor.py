"""`ComfyUISupervisor` (`serve/worker --comfyui PATH`): a ComfyUI child that starts, answers, restarts and stops.

The real ComfyUI of the suite (`make comfyui`) is started, SIGKILLed, frozen and stopped; stand-in checkouts (a
`main.py` that crashes, hangs or serves `/system_stats` with a grandchild) cover start failures, the process group
and the CLI cheaply. Every test checks that no process is left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.comfyui import START_TIMEOUT, require_comfyui
from tests.support.server import ROOT, free_port, make_settings, wait_http

from nodeloom.clock import FrozenClock
from nodeloom.compose import build
from nodeloom.services.comfyui import supervisor
from nodeloom.services.comfyui.supervisor import (
    ComfyUIStartError,
    ComfyUISupervisor,
    find_python,
    swept_folders,
)
from nodeloom.services.retention import RetentionSweeper, purge_old_files

# --- helpers ------------------------------------------------------------------------------------------------------

def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def in_group(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid and alive(int(entry)):
                    found.append(int(entry))
            except ProcessLookupError:
                pass
    return found


def mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (a test's own folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and alive(int(entry)):
                found.append(int(entry))
    return found


async def eventually(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        await asyncio.sleep(0.1)


def answers(url: str) -> bool:
    try:
        return httpx.get(url + "/system_stats", timeout=5, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def fake_checkout(root: Path, body: str) -> Path:
    """A folder that looks like a ComfyUI checkout; its main.py records its pid and argv, then runs `body`."""
    root.mkdir(parents=True)
    (root / "comfy").mkdir()
    (root / "comfy" / "cli_args.py").write_text('parser.add_argument("--database-url")\n')
    (root / "main.py").write_text(textwrap.dedent("""\
        import argparse, http.server, json, os, subprocess, sys, time
        p = argparse.ArgumentParser()
        p.add_argument("--port", type=int)
        p.add_argument("--user-directory")
        args, _ = p.parse_known_args()
        record = {"pid": os.getpid(), "argv": sys.argv, "cwd": os.getcwd(), "env": sorted(os.environ)}
        def save():
            with open(os.path.join(args.user_directory, "fake.json"), "w") as f:
                json.dump(record, f)
        save()
        def serve():
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200 if self.path == "/system_stats" else 404)
                    self.end_headers()
                    self.wfile.write(b"{}")
                def log_message(self, *a):
                    pass
            http.server.HTTPServer(("127.0.0.1", args.port), H).serve_forever()
        """) + textwrap.dedent(body))
    return root


def fake_record(data_dir: Path, slot: int = 0) -> dict[str, Any]:
    path = data_dir.resolve() / "comfyui" / str(slot) / "user" / "fake.json"
    record: dict[str, Any] = json.loads(path.read_text())
    return record


SERVES = "serve()\n"
SERVES_WITH_GRANDCHILD = """\
    record["grandchild"] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]).pid
    save()
    serve()
"""


# --- the real ComfyUI ------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_real_comfyui_starts_restarts_when_killed_or_frozen_and_stops_without_leftovers(tmp_path: Path) -> None:
    env = require_comfyui()
    data = tmp_path / "data"
    # its Python is found next to the checkout (make comfyui's layout: <home>/ComfyUI and <home>/venv)
    assert find_python(env.source) == env.python
    sup = ComfyUISupervisor(env.source, data_dir=data, start_timeout=START_TIMEOUT, check_interval=1.0,
                            unresponsive_after=8.0, backoff=(0.2, 2.0), stop_grace=5.0)
    url = await sup.start()
    pids: list[int] = []
    try:
        assert url == f"http://127.0.0.1:{sup.port}" and sup.healthy and sup.restarts == 0
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as c:
            argv = c.get("/system_stats").json()["system"]["argv"]
        slot = data.resolve() / "comfyui" / "0"
        for flag, value in (("--listen", "127.0.0.1"), ("--port", str(sup.port)),
                            ("--input-directory", str(slot / "input")), ("--output-directory", str(slot / "output")),
                            ("--temp-directory", str(slot / "temp")), ("--user-directory", str(slot / "user"))):
            assert argv[argv.index(flag) + 1] == value, (flag, argv)
        assert "--disable-auto-launch" in argv
        if not any(os.path.exists(d) for d in ("/dev/nvidia0", "/dev/kfd")):
            assert "--cpu" in argv  # no GPU here
        first = sup.pid
        assert first is not None and os.getpgid(first) == first  # a process group of its own
        pids.append(first)

        # a crash: restarted on the same port, answering again
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: sup.restarts == 1 and sup.healthy, START_TIMEOUT, "restarted after SIGKILL")
        second = sup.pid
        assert second is not None and second != first and not alive(first)
        pids.append(second)
        assert sup.url == url and answers(url)

        # a hang (it never answers): restarted after `unresponsive_after`
        os.kill(second, signal.SIGSTOP)
        await eventually(lambda: not sup.healthy, 30, "noticed it stopped answering")
        await eventually(lambda: sup.restarts == 2 and sup.healthy, START_TIMEOUT, "restarted after SIGSTOP")
        third = sup.pid
        assert third is not None and third != second and not alive(second) and answers(url)
        pids.append(third)
    finally:
        await sup.stop()
    assert sup.pid is None and not sup.healthy
    assert pids and all(not alive(pid) and in_group(pid) == [] for pid in pids)
    assert mentioning(str(data.resolve())) == []
    assert not answers(url)


# --- start failures ------------------------------------------------------------------------------------------------

async def test_a_path_that_is_not_comfyui_is_refused_at_once(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ComfyUIStartError, match="not a ComfyUI checkout"):
        await ComfyUISupervisor(tmp_path / "empty", data_dir=tmp_path / "data").start()
    with pytest.raises(ComfyUIStartError, match="no such folder"):
        await ComfyUISupervisor(tmp_path / "missing", data_dir=tmp_path / "data").start()


async def test_no_python_for_the_checkout_is_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    checkout = fake_checkout(home / "ComfyUI", SERVES)
    with pytest.raises(ComfyUIStartError, match="NODELOOM_COMFYUI_PYTHON") as info:
        await ComfyUISupervisor(checkout, data_dir=tmp_path / "data").start()
    assert str(checkout / ".venv" / "bin" / "python") in str(info.value)
    with pytest.raises(ComfyUIStartError, match="no such file"):
        find_python(checkout, tmp_path / "nope" / "python")
    # the venv next to it (make comfyui's layout), then its own .venv first
    for venv in (home / "venv", checkout / ".venv"):
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to(sys.executable)
        assert find_python(checkout) == venv / "bin" / "python"


async def test_a_comfyui_that_exits_while_starting_is_reported_with_its_last_lines(tmp_path: Path) -> None:
    checkout = fake_checkout(tmp_path / "ComfyUI", """\
        print("Traceback (most recent call last):")
        print("ModuleNotFoundError: No module named 'torch'")
        sys.exit(3)
    """)
    sup = ComfyUISupervisor(checkout, data_dir=tmp_path / "data", python=Path(sys.executable), cpu=True)
    t0 = time.monotonic()
    with pytest.raises(ComfyUIStartError) as info:
        await sup.start()
    assert time.monotonic() - t0 < 30
    message = str(info.value)
    assert "exited with code 3" in message and "No module named 'torch'" in message, message
    assert "comfyui.log" in message
    assert not alive(fake_record(tmp_path / "data")["pid"])
    # the slot was given back: the next supervisor on this data dir gets the same folders
    again = ComfyUISupervisor(checkout, data_dir=tmp_path / "data", python=Path(sys.executable), cpu=True)
    with pytest.raises(ComfyUIStartError):
        await again.start()
    assert again.folders is not None and again.folders.slot == 0


async def test_a_comfyui_that_never_answers_hits_the_deadline_and_is_killed(tmp_path: Path) -> None:
    checkout = fake_checkout(tmp_path / "ComfyUI", """\
        print("loading custom nodes ...", flush=True)
        time.sleep(600)
    """)
    sup = ComfyUISupervisor(checkout, data_dir=tmp_path / "data", python=Path(sys.executable), cpu=True,
                            start_timeout=2.0)
    t0 = time.monotonic()
    with pytest.raises(ComfyUIStartError, match=r"did not answer http://127\.0\.0\.1:\d+/system_stats within 2 s") as info:
        await sup.start()
    assert time.monotonic() - t0 < 20
    assert "loading custom nodes" in str(info.value)
    assert not alive(fake_record(tmp_path / "data")["pid"])
    assert mentioning(str(checkout)) == []


# --- the process group, restarts, slots (a stand-in that serves /system_stats) -------------------------------------

async def test_restart_keeps_the_port_and_stop_ends_the_whole_process_group(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODELOOM_SECRET_KEY", "not-for-comfyui-0123456789")
    monkeypatch.setenv("FAL_KEY", "not-for-comfyui")
    checkout = fake_checkout(tmp_path / "ComfyUI", SERVES_WITH_GRANDCHILD)
    data = tmp_path / "data"
    sup = ComfyUISupervisor(checkout, data_dir=data, python=Path(sys.executable), cpu=True, check_interval=0.2,
                            backoff=(0.1, 1.0))
    other = ComfyUISupervisor(checkout, data_dir=data, python=Path(sys.executable), cpu=True)
    url = await sup.start()
    try:
        first = fake_record(data)
        slot = data.resolve() / "comfyui" / "0"
        argv = first["argv"]
        for flag, value in (("--listen", "127.0.0.1"), ("--port", str(sup.port)),
                            ("--input-directory", str(slot / "input")), ("--output-directory", str(slot / "output")),
                            ("--temp-directory", str(slot / "temp")), ("--user-directory", str(slot / "user")),
                            ("--database-url", f"sqlite:///{slot / 'user' / 'comfyui.db'}")):
            assert argv[argv.index(flag) + 1] == value, (flag, argv)
        assert "--cpu" in argv and "--disable-auto-launch" in argv
        assert first["cwd"] == str(checkout)
        # the server's configuration stays ours
        assert "NODELOOM_SECRET_KEY" not in first["env"] and "FAL_KEY" not in first["env"]
        assert os.getpgid(first["pid"]) == first["pid"] and os.getpgid(first["grandchild"]) == first["pid"]

        # a second ComfyUI on the same data dir gets folders of its own
        await other.start()
        assert other.folders is not None and other.folders.slot == 1 and other.url != url
        await other.stop()

        os.kill(first["pid"], signal.SIGKILL)
        await eventually(lambda: sup.restarts == 1 and sup.healthy, 30, "restarted")
        second = fake_record(data)
        assert second["pid"] != first["pid"] and sup.url == url and answers(url)
        # what the dead child left in its group went with it
        await eventually(lambda: not alive(first["grandchild"]), 5, "the grandchild killed")
    finally:
        await sup.stop()
    assert not alive(second["pid"])
    await eventually(lambda: not alive(second["grandchild"]) and in_group(second["pid"]) == [], 5, "the group gone")
    assert mentioning(str(data.resolve())) == []


async def test_a_child_that_keeps_dying_is_retried_with_back_off(tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    checkout = fake_checkout(tmp_path / "ComfyUI", f"""\
        with open({str(marker)!r}, "a") as f:
            f.write("x")
        if len(open({str(marker)!r}).read()) > 1:
            sys.exit(1)  # every start after the first fails
        serve()
    """)
    sup = ComfyUISupervisor(checkout, data_dir=tmp_path / "data", python=Path(sys.executable), cpu=True,
                            check_interval=0.2, backoff=(0.2, 0.8))
    await sup.start()
    try:
        pid = fake_record(tmp_path / "data")["pid"]
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        await eventually(lambda: marker.read_text().count("x") >= 5, 30, "retried")
        # delays 0.2, 0.4, 0.8, 0.8: at least 1.4 s for the four retries
        assert time.monotonic() - t0 >= 1.2 and not sup.healthy and sup.restarts == 0
    finally:
        await sup.stop()
    assert mentioning(str(checkout)) == []


def test_gpu_detection_asks_comfyuis_torch_only_where_a_gpu_device_exists(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def python_saying(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(f"#!/bin/sh\nprintf '{text}'\n")
        path.chmod(0o755)
        return path

    monkeypatch.setattr(supervisor, "_GPU_DEVICES", (str(tmp_path / "no-such-device"),))
    monkeypatch.setattr(supervisor.sys, "platform", "linux")
    assert not supervisor.has_gpu(tmp_path / "never-run", {})
    monkeypatch.setattr(supervisor, "_GPU_DEVICES", (str(tmp_path),))  # "a device" that exists
    assert supervisor.has_gpu(python_saying("gpu", "gpu"), {})
    assert not supervisor.has_gpu(python_saying("cpu", "cpu"), {})
    assert not supervisor.has_gpu(python_saying("broken", "ModuleNotFoundError"), {})


# --- retention ---------------------------------------------------------------------------------------------------

async def test_retention_sweeps_old_files_of_local_comfyui_folders(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, retention_days=1)
    services = build(settings, migrate=True)
    slot = settings.data_dir.resolve() / "comfyui" / "0"
    old = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    files = {name: slot / name for name in ("output/ComfyUI_00001_.png", "output/nodeloom/ex_1/a.png",
                                            "temp/temp/preview.png", "input/ex_1_photo.png", "user/comfyui.db",
                                            "output/new.png")}
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    for name, path in files.items():
        if name != "output/new.png":
            os.utime(path, (old, old))
    clock = FrozenClock(datetime(2030, 1, 3, tzinfo=UTC).timestamp())
    os.utime(files["output/new.png"], (clock.time() - 3600, clock.time() - 3600))
    assert swept_folders(settings.data_dir) == [slot / "input", slot / "output", slot / "temp"]
    sweeper = RetentionSweeper(services.retention.db, services.retention.files, clock=clock, days=1,
                               folders=partial(swept_folders, settings.data_dir))
    removed = sweeper.sweep()
    assert removed["folder_files"] == 4
    assert [n for n, p in files.items() if p.exists()] == ["user/comfyui.db", "output/new.png"]
    # emptied subfolders untouched since the cutoff (the clock is ahead) went; ComfyUI's own folders stay
    assert not (slot / "output" / "nodeloom" / "ex_1").exists()
    assert (slot / "output").is_dir() and (slot / "temp").is_dir() and (slot / "input").is_dir()
    assert purge_old_files([tmp_path / "nowhere"], clock.now() - timedelta(days=1)) == 0
    await services.aclose()


# --- the CLI ---------------------------------------------------------------------------------------------------

def _serve(data: Path, port: int, checkout: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NODELOOM_DATA_DIR": str(data), "NODELOOM_SECRET_KEY": "test-secret-key-0123456789",
           "NODELOOM_PROCESS_POOL_SIZE": "0", "NODELOOM_COMFYUI_PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "nodeloom.cli", "serve", "--port", str(port),
                             "--comfyui", str(checkout)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


@pytest.mark.slow
def test_serve_with_comfyui_starts_it_and_leaves_nothing_behind_on_sigterm_or_sigkill(tmp_path: Path) -> None:
    checkout = fake_checkout(tmp_path / "ComfyUI", SERVES)
    data = tmp_path / "data"
    for sig in (signal.SIGTERM, signal.SIGKILL):
        port = free_port()
        proc = _serve(data, port, checkout)
        try:
            wait_http(f"http://127.0.0.1:{port}")
            child = fake_record(data)["pid"]
            assert alive(child)
            argv = fake_record(data)["argv"]
            local = f"http://127.0.0.1:{argv[argv.index('--port') + 1]}"
            assert answers(local)
            # its URL reached this process's pool (Settings.comfyui_local_url): /metrics lists it as a server
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
            assert f'nodeloom_comfyui_healthy{{server="{local}"}}' in metrics, metrics[-2000:]
            proc.send_signal(sig)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        deadline = time.monotonic() + 15
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child), f"ComfyUI left behind after {sig.name}"
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
        assert "Traceback" not in stderr, stderr


def test_worker_with_a_path_that_is_not_comfyui_fails_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "NODELOOM_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "nodeloom.cli", "worker", "--comfyui", str(tmp_path)], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert "not a ComfyUI checkout" in out.stderr and "Traceback" not in out.stderr, out.stderr
