"""`nodeloom run`: execute a graph in this process with a Rich progress display.

What it runs with comes from the composition root (`compose.build_local`): the same node registry,
address guard, media resolver and hosted models a server uses — with no database, no accounts (only
the operator's vendor keys serve hosted nodes) and local file paths allowed as media inputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from nodeloom.compose import build_local
from nodeloom.engine import events as ev
from nodeloom.engine.errors import GraphError
from nodeloom.engine.executor import run
from nodeloom.engine.graph import validate
from nodeloom.media.values import MediaFile
from nodeloom.settings import Settings


def _write_output(out: Path, name: str, value: Any) -> str:
    if isinstance(value, Image.Image):
        path = out / f"{name}.png"
        value.save(path)
        return str(path)
    if isinstance(value, MediaFile):
        path = out / f"{name}{Path(value.path).suffix}"
        path.write_bytes(value.read_bytes())
        return str(path)
    path = out / f"{name}.json"
    path.write_text(json.dumps(value, indent=2, default=repr))
    return str(path)


async def run_local(raw: Any, inputs: dict[str, Any], out: Path, console: Console) -> int:
    local = build_local(Settings(), workdir=out)
    try:
        try:
            graph = validate(raw, local.registry)
        except GraphError as exc:
            for d in exc.details:
                console.print(f"[red]{d['path']}[/]: {d['message']}")
            return 2
        out.mkdir(parents=True, exist_ok=True)
        return await _run(graph, inputs, out, console, local.environment)
    finally:
        await local.aclose()


async def _run(graph: Any, inputs: dict[str, Any], out: Path, console: Console, env: Any) -> int:
    code = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[state]}"),
                  TimeElapsedColumn(), console=console) as progress:
        tasks = {nid: progress.add_task(f"{nid} [dim]({graph.nodes[nid].type.type})[/]", total=1.0, state="queued")
                 for nid in graph.order}
        async for event in run(graph, execution_id="local", inputs=inputs, env=env):
            nid = event.node_id
            if event.type == ev.NODE_STARTED and nid:
                progress.update(tasks[nid], state="running")
            elif event.type == ev.NODE_PROGRESS and nid:
                progress.update(tasks[nid], completed=event.data.get("progress", 0))
            elif event.type == ev.NODE_COMPLETED and nid:
                progress.update(tasks[nid], completed=1.0, state="cached" if event.data.get("cached") else "done")
            elif event.type == ev.EXECUTION_FAILED:
                err = event.data["error"]
                console.print(f"[red]failed[/] at {err.get('nodeId')}: {err['message']}")
                code = 1
            elif event.type == ev.EXECUTION_COMPLETED:
                for name, value in (event.outputs or {}).items():
                    console.print(f"[green]{name}[/] → {_write_output(out, name, value)}")
    return code
