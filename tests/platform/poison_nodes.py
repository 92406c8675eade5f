"""A node pack for the poison-work tests: a node that freezes its worker's event loop (a blocking call)."""

from __future__ import annotations

import os
import time
from typing import Any

from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port


class Freeze(Node):
    type = "test.freeze"
    display_name = "Freeze the loop"
    description = "Appends its pid to `path`, then blocks the event loop for `seconds` (a buggy node)."
    inputs = (Port("value", "any", required=False),)
    params = (Param("path", "text", required=True), Param("seconds", "number", default=3600))
    outputs = (Port("value", "any"),)
    deterministic = False

    async def run(self, ctx: Context, path: str, seconds: float, value: Any = None) -> dict[str, Any]:
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(seconds)  # on the event loop: heartbeats stop, SIGTERM handlers never run
        return {"value": value}


def nodes() -> list[type[Node]]:
    return [Freeze]
