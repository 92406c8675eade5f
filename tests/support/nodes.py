"""A node pack for tests only (loaded with NODELOOM_NODE_PACKS=tests.support.nodes)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port


def _pid(_: Any = None) -> int:
    return os.getpid()


class ProcessId(Node):
    type = "test.pid"
    display_name = "Process id"
    description = "Returns the pid of the process that ran it (through run_cpu) and of the worker."
    inputs = (Port("value", "any", required=False),)
    outputs = (Port("cpu", "integer"), Port("worker", "integer"))
    deterministic = False

    async def run(self, ctx: Context, value: Any = None) -> dict[str, Any]:
        return {"cpu": await ctx.run_cpu(_pid, None), "worker": os.getpid()}


class Fail(Node):
    type = "test.fail"
    display_name = "Fail"
    description = "Always fails with the given message."
    inputs = (Port("value", "any", required=False),)
    params = (Param("message", "text", default="boom"),)
    outputs = (Port("value", "any"),)

    async def run(self, ctx: Context, message: str, value: Any = None) -> dict[str, Any]:
        raise NodeError(message, code="test_failure")


class Sleep(Node):
    type = "test.sleep"
    display_name = "Sleep (no progress)"
    description = "Sleeps without reporting progress; has a 0.3 s timeout of its own when timeout=true."
    inputs = (Port("value", "any", required=False),)
    params = (Param("seconds", "number", default=1.0),)
    outputs = (Port("value", "any"),)
    deterministic = False
    timeout_s = None

    async def run(self, ctx: Context, seconds: float, value: Any = None) -> dict[str, Any]:
        await asyncio.sleep(seconds)
        return {"value": value}


class Timeboxed(Sleep):
    type = "test.timeboxed"
    display_name = "Timeboxed sleep"
    description = "Sleeps; its own deadline is 0.3 s."
    timeout_s = 0.3


class Counter(Node):
    type = "test.count"
    display_name = "Counter"
    description = "Appends a line to a file each time it runs (counts real runs across restarts)."
    inputs = (Port("value", "any"),)
    params = (Param("path", "text", required=True),)
    outputs = (Port("value", "any"),)
    deterministic = True
    credits = 1  # priced, so tests can check that a resumed execution charges it exactly once

    async def run(self, ctx: Context, path: str, value: Any = None) -> dict[str, Any]:
        with open(path, "a") as f:
            f.write(f"{ctx.execution_id}\n")
        return {"value": value}


def _die(_: Any = None) -> int:
    os._exit(13)  # a child that dies abruptly, like a segfaulting native library


class Crash(Node):
    type = "test.crash_pool"
    display_name = "Crash a pool process"
    description = "Kills the process-pool child it runs in."
    inputs = (Port("value", "any", required=False),)
    outputs = (Port("value", "any"),)
    deterministic = False

    async def run(self, ctx: Context, value: Any = None) -> dict[str, Any]:
        await ctx.run_cpu(_die, None)
        return {"value": value}


def nodes() -> list[type[Node]]:
    return [ProcessId, Fail, Sleep, Timeboxed, Counter, Crash]
