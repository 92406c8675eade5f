"""A third-party node pack that goes looking for the server's secrets (NODELOOM_NODE_PACKS=tests.support.secret_pack).

Node packs are code the operator installs but did not write; the server must not hand them its own
configuration. `test.secret_probe` tries every way a node could read a secret and reports, as JSON
text, whatever it found — so a test can run it on a real server and check that nothing came back:

- `ctx.secret(name)` without declaring the name (refused: `secret_not_declared`), for the server's
  secrets and for the one another node type of this pack declares;
- `os.environ` of the worker process, of a child process it starts, and of a process-pool child
  (`ctx.run_cpu`), and the environment block the process started with (`/proc/self/environ`);
- `ctx.service(name)` for services that would expose configuration ("settings", "secrets", "db" …),
  and what the `providers` service shows of its configuration when printed.

`test.secret_probe_declared` declares a variable of the pack's own (SECRET_PACK_TOKEN): the positive
control, that the declared way works. `greedy_nodes()` is a second pack (not in `nodes()`) whose node
declares the server's own variables; a test loads it through a module of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Port

#: the server's secrets a pack might go after (the test sets each to a known value)
SERVER_SECRETS = (
    "NODELOOM_SECRET_KEY", "NODELOOM_DATABASE_URL", "NODELOOM_BROKER_URL", "FAL_KEY", "REPLICATE_API_TOKEN",
    "OPENAI_API_KEY", "GEMINI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
)
#: the pack's own secret, declared by `test.secret_probe_declared`
PACK_SECRET = "SECRET_PACK_TOKEN"
#: services that would hand a node the configuration (none of them may exist)
FORBIDDEN_SERVICES = ("settings", "secrets", "secret", "config", "configuration", "db", "database", "env",
                      "environ", "environment", "runtime", "services")
#: attributes a configuration object would keep secrets under
SECRET_ATTRIBUTES = ("secret_key", "database_url", "broker_url", "redis_url", "fal_key", "replicate_api_token",
                     "openai_api_key", "gemini_api_key")

_CHILD = "import json, os, sys; print(json.dumps({n: os.environ.get(n) for n in sys.argv[1:]}))"


def _environ_of_this_process(names: tuple[str, ...]) -> dict[str, str | None]:
    """Run in a process-pool child (`ctx.run_cpu`): what its environment holds."""
    return {name: os.environ.get(name) for name in names}


def _initial_environment(names: tuple[str, ...]) -> list[str] | str:
    """The `NAME=value` entries of the block the process was started with, which unsetenv() leaves in place."""
    try:
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
    except OSError:
        return "unsupported"
    entries = [entry.decode(errors="replace") for entry in block.split(b"\0") if entry]
    return [entry for entry in entries if entry.partition("=")[0].upper() in names]


def _child_process_environ(names: tuple[str, ...]) -> dict[str, Any]:
    """What a subprocess the node starts (ffmpeg, a CLI tool) inherits."""
    out = subprocess.run([sys.executable, "-c", _CHILD, *names], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return {"error": out.stderr[-500:]}
    return dict(json.loads(out.stdout))


def _read_secret(ctx: Context, name: str) -> dict[str, Any]:
    try:
        return {"value": ctx.secret(name)}
    except NodeError as exc:
        return {"refused": exc.code}
    except Exception as exc:  # any other refusal is a refusal too; the report says which
        return {"refused": type(exc).__name__}


def _look_into(obj: Any) -> dict[str, Any]:
    """What a careless node (or log line) would see of a configuration object."""
    return {"type": type(obj).__name__, "repr": repr(obj)[:4000],
            **{attr: str(getattr(obj, attr)) for attr in SECRET_ATTRIBUTES if hasattr(obj, attr)}}


def _service(ctx: Context, name: str) -> Any:
    try:
        found = ctx.service(name)
    except LookupError:
        return None
    return _look_into(found)


async def probe(ctx: Context, names: tuple[str, ...]) -> dict[str, Any]:
    """Every way this node can think of to read `names`; the values it found (None: nothing there)."""
    report: dict[str, Any] = {
        "ctx_secret": {name: _read_secret(ctx, name) for name in names},
        "os_environ": {name: os.environ.get(name) for name in names},
        "initial_environment": _initial_environment(names),
        "child_process": await ctx.run_thread(_child_process_environ, names),
        "pool_process": await ctx.run_cpu(_environ_of_this_process, names),
        "services": {name: _service(ctx, name) for name in FORBIDDEN_SERVICES},
    }
    try:
        providers = ctx.service("providers")
    except LookupError:
        report["providers"] = None
    else:  # the hosted models service holds vendor settings; printing it must not print keys or the rest
        report["providers"] = {attr: _look_into(getattr(providers, attr)) for attr in ("settings", "config")
                               if hasattr(providers, attr)}
    return report


class SecretProbe(Node):
    type = "test.secret_probe"
    display_name = "Secret probe"
    description = "Tries every way a node could read the server's secrets; reports what it found (JSON text)."
    outputs = (Port("report", "text"),)
    deterministic = False

    async def run(self, ctx: Context) -> dict[str, Any]:
        # the pack's own secret too: declared by another node type, so not this one's to read
        return {"report": json.dumps(await probe(ctx, (*SERVER_SECRETS, PACK_SECRET)), sort_keys=True)}


class DeclaredSecret(Node):
    type = "test.secret_probe_declared"
    display_name = "Declared secret"
    description = "Reads the one secret its type declares (SECRET_PACK_TOKEN): the way a pack gets its own key."
    outputs = (Port("report", "text"),)
    deterministic = False
    secrets = (PACK_SECRET,)

    async def run(self, ctx: Context) -> dict[str, Any]:
        return {"report": json.dumps({"ctx_secret": {PACK_SECRET: _read_secret(ctx, PACK_SECRET)}})}


class GreedySecretProbe(Node):
    type = "test.secret_probe_greedy"
    display_name = "Greedy secret probe"
    description = "Declares the server's own variables as its secrets, then reads them."
    outputs = (Port("report", "text"),)
    deterministic = False
    secrets = SERVER_SECRETS

    async def run(self, ctx: Context) -> dict[str, Any]:
        return {"report": json.dumps({"ctx_secret": {name: _read_secret(ctx, name) for name in SERVER_SECRETS}})}


def nodes() -> list[type[Node]]:
    return [SecretProbe, DeclaredSecret]


def greedy_nodes() -> list[type[Node]]:
    return [GreedySecretProbe]
