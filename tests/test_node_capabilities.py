"""What a node can reach: its declared secrets and its services — never the server's own configuration.

The server reads its configuration once (`Settings`), builds its object graph, then takes the secrets
back out of the process environment (`scrub_secret_environment`). A node pack is third-party code:
`tests.support.secret_pack` tries every way a node could read a secret, on a real `nodeloom serve`
process started with those secrets set to known values, and none of the values may come back.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support import secret_pack
from tests.support.server import ROOT, cli_account, free_port, publish, spawn_server, text_graph, wait_status

from nodeloom.engine.context import LocalEnvironment, NodeContext
from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Node
from nodeloom.nodes.models_diffusers import MODELS_DIR_ENV, GenerateDiffusers, availability_hook
from nodeloom.providers import PROVIDER_SETTINGS
from nodeloom.services.hosted import HostedModels
from nodeloom.settings import Settings, read_node_secrets, scrub_secret_environment, secret_variables

#: the server secret spawn_server and cli_account both use (the account's key is derived with it)
SPAWNED_SECRET_KEY = "test-secret-key-0123456789"


def known_secrets(tmp_path: Path, token: str) -> dict[str, str]:
    """Every secret the spawned server reads, each set to a value that cannot appear by chance."""
    db_dir = tmp_path / f"db-{token}"
    db_dir.mkdir()
    return {
        "NODELOOM_DATABASE_URL": f"sqlite:///{db_dir / 'nodeloom.db'}",
        "NODELOOM_BROKER_URL": f"redis://:broker-{token}@127.0.0.1:9/0",  # read, unused on the sql queue
        "FAL_KEY": f"fal-{token}",
        "REPLICATE_API_TOKEN": f"r8-{token}",
        "OPENAI_API_KEY": f"sk-{token}",
        "GEMINI_API_KEY": f"AIza-{token}",
        "AWS_ACCESS_KEY_ID": f"AKIA{token.upper()}",
        "AWS_SECRET_ACCESS_KEY": f"aws-secret-{token}",
        "AWS_SESSION_TOKEN": f"aws-session-{token}",
    }


def probe_graph(node_type: str) -> dict[str, Any]:
    return {"nodes": [
        {"id": "probe", "type": node_type, "params": {}},
        {"id": "out", "type": "output.text", "inputs": {"text": {"from": "probe", "output": "report"}},
         "params": {"name": "report"}},
    ]}


def leaks(text: str, values: dict[str, str]) -> list[str]:
    return sorted(name for name, value in values.items() if value in text)


def findings(report: dict[str, Any]) -> dict[str, Any]:
    """What the probe found, section by section (a failure message that says where each value came from)."""
    found: dict[str, Any] = {}
    for section, seen in report.items():
        if isinstance(seen, dict):
            hits = {name: value for name, value in seen.items()
                    if value is not None and value != {"refused": "secret_not_declared"}}
        else:
            hits = seen if seen not in ([], "unsupported") else None
        if hits:
            found[section] = hits
    return found


def wait_up(proc: subprocess.Popen[bytes], url: str, timeout: float = 90) -> bool:
    """True once the server answers; False when the process exited first (its stderr says why)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server at {url} neither came up nor exited")


def stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stderr.read().decode(errors="replace") if proc.stderr else ""


def execute(c: httpx.Client, graph: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Publish and run `graph`; the finished poll body, parsed and as the raw text the API sent."""
    wid = publish(c, graph, name=graph["nodes"][0]["type"])
    r = c.post(f"/api/v1/workflows/{wid}/execute", json={"inputs": {}})
    assert r.status_code == 202, r.text
    eid = r.json()["executionId"]
    wait_status(c, eid, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=60)
    raw = c.get(f"/api/v1/workflows/executions/{eid}/poll").text
    events = c.get(f"/api/v1/workflows/executions/{eid}/events").text
    return json.loads(raw), raw + "\n" + events


# --------------------------------------------------------------------------------- a real server


@pytest.mark.slow
def test_a_node_pack_cannot_read_the_servers_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = secrets.token_hex(8)
    known = known_secrets(tmp_path, token)
    pack_token = f"pack-{token}"
    data = tmp_path / "data"
    monkeypatch.setenv("NODELOOM_DATABASE_URL", known["NODELOOM_DATABASE_URL"])  # the CLI's account, same db
    key = cli_account(data, name="probe")
    watched = {**known, "NODELOOM_SECRET_KEY": SPAWNED_SECRET_KEY}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn_server(data, port, {
        **known, "NODELOOM_NODE_PACKS": "tests.support.nodes,tests.support.secret_pack",
        "NODELOOM_PROCESS_POOL_SIZE": "1",  # run_cpu in a real pool child, spawned after start-up
        secret_pack.PACK_SECRET: pack_token})
    stderr = ""
    try:
        assert wait_up(proc, url), f"the server exited ({proc.returncode}): {stop(proc)[-3000:]}"
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

        body, text = execute(c, probe_graph("test.secret_probe"))
        assert body["status"] == "COMPLETED", body
        report = json.loads(body["outputs"]["report"])
        names = (*secret_pack.SERVER_SECRETS, secret_pack.PACK_SECRET)
        # the probe looked everywhere it says it did (an empty report would prove nothing) …
        assert set(report["ctx_secret"]) == set(report["os_environ"]) == set(report["child_process"]) == \
            set(report["pool_process"]) == set(names), report
        # … and found nothing: no value in the poll body or the event stream, however it was encoded
        assert leaks(text, {**watched, secret_pack.PACK_SECRET: pack_token}) == [], findings(report)
        assert token not in text, findings(report)
        # undeclared secrets are refused, not merely empty
        assert {name: r for name, r in report["ctx_secret"].items() if r != {"refused": "secret_not_declared"}} \
            == {}, report["ctx_secret"]
        # the environment of this process, of its children and of the pool holds none of them any more
        assert {n: v for n, v in report["os_environ"].items() if v is not None} == {}
        assert {n: v for n, v in report["child_process"].items() if v is not None} == {}
        assert {n: v for n, v in report["pool_process"].items() if v is not None} == {}
        assert report["initial_environment"] in ([], "unsupported"), report["initial_environment"]
        # no service hands out the configuration; the providers service shows vendor settings only
        assert {n: s for n, s in report["services"].items() if s is not None} == {}
        assert "settings" not in report["providers"], report["providers"]

        # the declared way still works: a pack's own secret reaches the node that declares it
        body, _ = execute(c, probe_graph("test.secret_probe_declared"))
        assert body["status"] == "COMPLETED", body
        assert json.loads(body["outputs"]["report"])["ctx_secret"] == {secret_pack.PACK_SECRET: {"value": pack_token}}

        # and the server is otherwise fine: what it read before the scrub is still in force
        fal_node = c.get("/api/v1/nodes/generate.flux_2_pro").json()  # FAL_KEY configures the vendor
        assert fal_node["available"] is True, fal_node
        body, _ = execute(c, text_graph())
        assert body["status"] == "COMPLETED" and body["outputs"] == {"greeting": "Hello world!"}, body
        assert httpx.get(url + "/readyz", timeout=10).status_code == 200
    finally:
        stderr = stop(proc)
    assert leaks(stderr, watched) == [], stderr[-3000:]  # nor in the server's own log


@pytest.mark.slow
def test_a_pack_that_declares_the_servers_variables_gets_none_of_them(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Declaring FAL_KEY in `Node.secrets` is no way around the rule: the server refuses to start with such a
    pack (the recommended behaviour, naming the node type and the variables), or its node reads nothing."""
    token = secrets.token_hex(8)
    known = known_secrets(tmp_path, token)
    (tmp_path / "greedy_pack.py").write_text("from tests.support.secret_pack import greedy_nodes as nodes\n")
    data = tmp_path / "data"
    monkeypatch.setenv("NODELOOM_DATABASE_URL", known["NODELOOM_DATABASE_URL"])
    key = cli_account(data, name="greedy")
    watched = {**known, "NODELOOM_SECRET_KEY": SPAWNED_SECRET_KEY}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn_server(data, port, {**known, "NODELOOM_NODE_PACKS": "greedy_pack",
                                     "PYTHONPATH": os.pathsep.join((str(ROOT), str(tmp_path)))})
    stderr = ""
    try:
        if wait_up(proc, url):  # started after all: the node must read nothing (or not be runnable)
            c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            r = c.post("/api/v1/workflows", json={"name": "greedy", "graph": probe_graph("test.secret_probe_greedy")})
            if r.status_code == 201:
                body, text = execute(c, probe_graph("test.secret_probe_greedy"))
                assert leaks(text, watched) == [] and token not in text, leaks(text, watched)
                if body["status"] == "COMPLETED":
                    read = json.loads(body["outputs"]["report"])["ctx_secret"]
                    assert {n: r for n, r in read.items() if r.get("value") is not None} == {}, read
            else:
                assert leaks(r.text, watched) == [], r.text
    finally:
        stderr = stop(proc)
    assert leaks(stderr, watched) == [], stderr[-3000:]
    if proc.returncode not in (0, -signal.SIGTERM):  # refused to start: it says which node and which variables
        assert "test.secret_probe_greedy" in stderr and "FAL_KEY" in stderr, stderr[-3000:]


# ------------------------------------------------------------------------------- the scrub, unit


def test_scrub_removes_every_secret_the_settings_read() -> None:
    environ = {
        "PATH": "/usr/bin", "NODELOOM_DATA_DIR": "/data", "NODELOOM_PUBLIC_URL": "https://api.example",
        "NODELOOM_SECRET_KEY": "s" * 32, "NODELOOM_DATABASE_URL": "postgresql://u:p@db/nodeloom",
        "NODELOOM_BROKER_URL": "amqp://u:p@mq//", "NODELOOM_REDIS_URL": "redis://:p@redis:6379/0",
        "FAL_KEY": "f", "replicate_api_token": "r",  # Settings reads names regardless of case: so does the scrub
        "OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g", "NODELOOM_OPENAI_BASE_URL": "http://localhost:11434/v1",
        "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "a", "AWS_SESSION_TOKEN": "t", "AWS_REGION": "eu-west-1",
        "NODELOOM_STORAGE_URL": "s3://bucket/prefix",  # names a bucket; the credentials are the AWS_* variables
        "ACME_API_KEY": "pack's own",
    }
    removed = scrub_secret_environment(environ=environ, node_secrets=("ACME_API_KEY",))
    assert removed == sorted([
        "NODELOOM_SECRET_KEY", "NODELOOM_DATABASE_URL", "NODELOOM_BROKER_URL", "NODELOOM_REDIS_URL", "FAL_KEY",
        "replicate_api_token", "OPENAI_API_KEY", "GEMINI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN", "ACME_API_KEY"])
    assert environ == {"PATH": "/usr/bin", "NODELOOM_DATA_DIR": "/data", "NODELOOM_PUBLIC_URL": "https://api.example",
                       "NODELOOM_OPENAI_BASE_URL": "http://localhost:11434/v1", "AWS_REGION": "eu-west-1",
                       "NODELOOM_STORAGE_URL": "s3://bucket/prefix"}
    assert scrub_secret_environment(environ=environ) == []  # nothing left to take


def test_a_storage_url_that_carries_credentials_is_scrubbed_too() -> None:
    environ = {"NODELOOM_STORAGE_URL": "s3://AKIA:secret@bucket/prefix"}
    assert scrub_secret_environment(environ=environ) == ["NODELOOM_STORAGE_URL"] and environ == {}


def test_the_scrub_covers_every_vendor_key_and_secret_field() -> None:
    names = set(secret_variables())
    assert {key for _url, key in PROVIDER_SETTINGS.values()} <= names
    assert {"NODELOOM_SECRET_KEY", "NODELOOM_DATABASE_URL", "NODELOOM_BROKER_URL", "NODELOOM_REDIS_URL",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} <= names


_SCRUB_IN_A_PROCESS = r"""
import json, os, subprocess, sys
from nodeloom.settings import Settings, scrub_secret_environment

settings = Settings()
removed = scrub_secret_environment()
child = subprocess.run([sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
                       capture_output=True, text=True, check=True).stdout
try:
    with open("/proc/self/environ", "rb") as f:
        initial = f.read().decode(errors="replace")
except OSError:
    initial = None
print(json.dumps({"removed": removed, "environ": dict(os.environ), "child": json.loads(child), "initial": initial,
                  "read": [settings.secret_key, settings.database_url, settings.fal_key, settings.storage_url]}))
"""


def test_scrub_in_a_real_process_keeps_what_settings_read_and_nothing_else(tmp_path: Path) -> None:
    token = secrets.token_hex(8)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KEEP_ME": "yes", "NODELOOM_DATA_DIR": str(tmp_path),
           "NODELOOM_SECRET_KEY": f"secret-{token}", "NODELOOM_DATABASE_URL": f"sqlite:///{tmp_path}/{token}.db",
           "fal_key": f"fal-{token}", "AWS_SECRET_ACCESS_KEY": f"aws-{token}",
           "NODELOOM_STORAGE_URL": "s3://bucket/prefix"}
    out = subprocess.run([sys.executable, "-c", _SCRUB_IN_A_PROCESS], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["removed"] == ["AWS_SECRET_ACCESS_KEY", "NODELOOM_DATABASE_URL", "NODELOOM_SECRET_KEY", "fal_key"]
    assert seen["read"] == [f"secret-{token}", f"sqlite:///{tmp_path}/{token}.db", f"fal-{token}", "s3://bucket/prefix"]
    for where in ("environ", "child"):
        assert token not in json.dumps(seen[where]), where
        assert seen[where]["KEEP_ME"] == "yes" and seen[where]["NODELOOM_STORAGE_URL"] == "s3://bucket/prefix"
    if sys.platform.startswith("linux"):  # the block the process started with is wiped too, and only those entries
        assert token not in seen["initial"]
        assert "KEEP_ME=yes" in seen["initial"] and f"NODELOOM_DATA_DIR={tmp_path}" in seen["initial"]


def test_node_secrets_never_include_the_servers_own_variables() -> None:
    environ = {"ACME_API_KEY": "acme", "FAL_KEY": "f", "NODELOOM_SECRET_KEY": "s" * 32}
    assert read_node_secrets({"acme.a": ("ACME_API_KEY",), "acme.b": ("ACME_OTHER",)}, environ=environ) == {
        "ACME_API_KEY": "acme"}  # not set: left out, ctx.secret answers None
    with pytest.raises(ValueError, match=r"'acme.greedy' declares FAL_KEY, NODELOOM_SECRET_KEY; 'acme.z' declares "
                                         r"OPENAI_API_KEY\. A node pack names a variable of its own"):
        read_node_secrets({"acme.z": ("OPENAI_API_KEY", "ACME_API_KEY"), "acme.ok": ("ACME_API_KEY",),
                           "acme.greedy": ("NODELOOM_SECRET_KEY", "FAL_KEY")}, environ=environ)
    for name in ("nodeloom_public_url", "AWS_SECRET_ACCESS_KEY", "openai_api_key"):
        with pytest.raises(ValueError, match="server's own configuration"):
            read_node_secrets({"acme.c": (name,)}, environ=environ)


# ---------------------------------------------------------------- services nodes reach, unit


async def test_the_providers_service_holds_vendor_settings_only() -> None:
    settings = Settings(environment="test", secret_key="server-secret-0123456789", database_url="sqlite:///x.db",
                        fal_key="fal-k", fal_url="https://fal.example/", provider_order="fal",
                        provider_max_attempts=4, provider_poll_interval_seconds=8.0)

    class NoKeys:
        def stored(self, account_id: str) -> frozenset[str]:
            return frozenset()

        def decrypted(self, account_id: str) -> dict[str, str]:
            return {}

    async with httpx.AsyncClient() as http:
        hosted = HostedModels(settings, keys=NoKeys(), http=http)
        assert hosted.config.configured_base_urls() == settings.configured_base_urls() == ["https://fal.example/"]
        assert hosted.config.order == ("fal",) and hosted.config.retry.max_attempts == 4
        assert hosted.config.polling.interval == hosted.config.polling.max_interval == 8.0  # never below
        assert hosted.operator_ready == {"fal"}
        seen = repr(vars(hosted)) + repr(hosted.config)
        assert "server-secret-0123456789" not in seen and "x.db" not in seen
        assert "fal-k" not in repr(hosted.config) and "fal-k" not in repr(settings)  # keys stay out of reprs
        await hosted.aclose()


def _ctx(services: dict[str, Any]) -> NodeContext:
    async def emit(node_id: str, fraction: float, message: str | None) -> None:
        return None

    return NodeContext(execution_id="e1", account_id="acc", node_id="n1", inputs={},
                       env=LocalEnvironment(services), emit_progress=emit, cancel_event=asyncio.Event())


async def test_the_diffusers_node_gets_its_folder_only_from_its_service(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))  # the environment is not where a node looks
    args: dict[str, Any] = {"prompt": "x", "model": "tiny", "width": 32, "height": 32, "steps": 1, "seed": 0}
    with pytest.raises(NodeError) as err:
        await GenerateDiffusers().run(_ctx({}), **args)
    assert err.value.code == "unavailable"
    assert "not configured" in err.value.message and MODELS_DIR_ENV in err.value.message
    with pytest.raises(NodeError, match="is not a folder"):
        await GenerateDiffusers().run(_ctx({"diffusers_models_dir": tmp_path / "nope"}), **args)
    with pytest.raises(NodeError) as err:  # the service's folder is used: the model is looked up there
        await GenerateDiffusers().run(_ctx({"diffusers_models_dir": tmp_path}), **args)
    assert err.value.code == "model_not_found"


def test_the_catalogue_checks_the_configured_diffusers_folder(tmp_path: Path) -> None:
    class Other(Node):
        type = "test.other"

    assert MODELS_DIR_ENV in (availability_hook(None)(GenerateDiffusers) or "")
    assert "is not a folder" in (availability_hook(tmp_path / "nope")(GenerateDiffusers) or "")
    assert availability_hook(tmp_path)(GenerateDiffusers) is None
    assert availability_hook(None)(Other) is None
