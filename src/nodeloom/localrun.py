"""`nodeloom run`: execute a graph in this process with a Rich progress display."""

from __future__ import annotations

import asyncio
import json
import mimetypes
from pathlib import Path
from typing import Any

from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from nodeloom.engine import events as ev
from nodeloom.engine.context import LocalEnvironment
from nodeloom.engine.errors import GraphError, NodeError
from nodeloom.engine.executor import run
from nodeloom.engine.graph import validate
from nodeloom.engine.registry import Registry
from nodeloom.media.urlguard import AddressGuard, FetchError, GuardedClient
from nodeloom.media.values import MediaFile
from nodeloom.nodes import builtin_nodes
from nodeloom.services.hosted import HostedModels, ProviderSettings
from nodeloom.services.media import decode_data_uri, decode_image
from nodeloom.settings import Settings


class NoAccountKeys:
    """Local runs have no account: only the operator's vendor keys (from the environment) serve hosted nodes."""

    def stored(self, account_id: str) -> frozenset[str]:
        return frozenset()

    def decrypted(self, account_id: str) -> dict[str, str]:
        return {}


class LocalMedia:
    """Media references for local runs: a file path, a data: URI or an https URL (guarded)."""

    def __init__(self, client: GuardedClient, max_bytes: int):
        self.client = client
        self.max_bytes = max_bytes

    async def load_bytes(self, ref: Any, *, account_id: str) -> tuple[bytes, str | None]:
        if isinstance(ref, str) and ref.startswith("data:"):
            return decode_data_uri(ref, max_bytes=self.max_bytes)
        if isinstance(ref, str) and ref.startswith(("https://", "http://")):
            try:
                res = await self.client.fetch(ref, max_bytes=self.max_bytes, timeout=30)
            except FetchError as exc:
                raise NodeError(str(exc), code="fetch_failed") from exc
            return res.content, res.content_type
        path = Path(str(ref).removeprefix("@"))
        if not path.is_file():
            raise NodeError(f"no such file: {path}", code="invalid_input")
        return path.read_bytes(), mimetypes.guess_type(path.name)[0]

    async def load_image(self, ref: Any, *, account_id: str) -> Image.Image:
        data, _ = await self.load_bytes(ref, account_id=account_id)
        return await asyncio.to_thread(decode_image, data)


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
    settings = Settings()
    registry = Registry(builtin_nodes())
    try:
        graph = validate(raw, registry)
    except GraphError as exc:
        for d in exc.details:
            console.print(f"[red]{d['path']}[/]: {d['message']}")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    hosted = HostedModels(ProviderSettings(), keys=NoAccountKeys())  # type: ignore[arg-type]
    client = GuardedClient(AddressGuard(allow_private=settings.allow_private_urls,
                                        trusted_hosts=hosted.settings.configured_base_urls()))
    env = LocalEnvironment({"media": LocalMedia(client, settings.max_fetch_bytes), "workdir": out, "http": client,
                            "providers": hosted})
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
    await client.aclose()
    await hosted.aclose()
    return code
