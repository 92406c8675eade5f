"""`nodeloom remote …`: a command-line client for a running nodeloom server, built on nodeloom-client.

    export NODELOOM_URL=https://nodeloom.example.com NODELOOM_API_KEY=sk-...
    nodeloom remote run "Offline poster" -i caption=hello -i image=@photo.png --download out/
    nodeloom remote workflows | executions | usage
    nodeloom remote import-comfyui workflow_api.json      # or a PNG that ComfyUI saved

(``python -m nodeloom.remote …`` is the same without loading the server's modules, so it starts faster.)

The server and key come from ``--url``/``--api-key``, else ``NODELOOM_URL``/``NODELOOM_API_KEY``, else the file
``~/.config/nodeloom/config.toml`` (``$XDG_CONFIG_HOME/nodeloom/config.toml``; ``NODELOOM_CONFIG`` names another)::

    url = "https://nodeloom.example.com"
    api_key = "sk-..."
"""

from __future__ import annotations

import json
import mimetypes
import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars
from rich.table import Table

from nodeloom_client import (
    DEFAULT_BASE_URL,
    APIError,
    Execution,
    Media,
    Nodeloom,
    NodeloomError,
    Progress,
    Unauthorized,
    ValidationFailed,
)

remote_app = typer.Typer(
    help="Call a running nodeloom server: run workflows, list workflows and executions, read usage, import "
         "ComfyUI workflows. Server and key: --url/--api-key, NODELOOM_URL/NODELOOM_API_KEY or "
         "~/.config/nodeloom/config.toml.",
    no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@dataclass(frozen=True)
class Target:
    url: str
    api_key: str | None
    source: str


def config_path() -> Path:
    """Where the settings file is: NODELOOM_CONFIG, else $XDG_CONFIG_HOME (~/.config)/nodeloom/config.toml."""
    if os.environ.get("NODELOOM_CONFIG"):
        return Path(os.environ["NODELOOM_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nodeloom" / "config.toml"


def resolve_target(url: str | None = None, api_key: str | None = None) -> Target:
    """Flags first, then the environment, then the config file; the URL defaults to a local server."""
    path = config_path()
    settings: dict[str, Any] = {}
    if path.is_file():
        try:
            settings = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            err_console.print(f"[red]cannot read {path}:[/] {exc}")
            raise typer.Exit(2) from exc
    key = api_key or os.environ.get("NODELOOM_API_KEY") or settings.get("api_key")
    where = "--api-key" if api_key else "NODELOOM_API_KEY" if os.environ.get("NODELOOM_API_KEY") else (
        str(path) if settings.get("api_key") else "nowhere")
    base = url or os.environ.get("NODELOOM_URL") or settings.get("url") or DEFAULT_BASE_URL
    return Target(url=str(base).rstrip("/"), api_key=str(key) if key else None, source=where)


@remote_app.callback()
def remote(ctx: typer.Context,
           url: Annotated[str | None, typer.Option("--url", help="Server base URL (default: NODELOOM_URL, the "
                                                   "config file, then http://127.0.0.1:8000)")] = None,
           api_key: Annotated[str | None, typer.Option("--api-key", help="An sk-… key (default: NODELOOM_API_KEY, "
                                                       "then the config file)")] = None) -> None:
    """Call a running nodeloom server."""
    ctx.obj = resolve_target(url, api_key)


@contextmanager
def connected(ctx: typer.Context) -> Iterator[Nodeloom]:
    """A client for the resolved server; API errors become one clear line on stderr and exit status 1."""
    target: Target = ctx.obj if isinstance(ctx.obj, Target) else resolve_target()
    if not target.api_key:
        err_console.print("[red]no API key:[/] set NODELOOM_API_KEY, pass --api-key, or put api_key = \"sk-…\" in "
                          f"{config_path()}")
        raise typer.Exit(2)
    try:
        with Nodeloom(target.api_key, base_url=target.url) as nl:
            yield nl
    except Unauthorized as exc:
        err_console.print(f"[red]401 {exc.code}:[/] {exc.message} (the key came from {target.source})")
        raise typer.Exit(1) from exc
    except ValidationFailed as exc:
        err_console.print(f"[red]422 {exc.code}:[/] {exc.message}")
        for detail in exc.details:
            err_console.print(f"  {detail.path}: {detail.message}")
        raise typer.Exit(1) from exc
    except APIError as exc:
        err_console.print(f"[red]{exc.status} {exc.code}:[/] {exc.message}")
        raise typer.Exit(1) from exc
    except (NodeloomError, TimeoutError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        err_console.print(f"[red]cannot reach {target.url}:[/] {exc}")
        raise typer.Exit(1) from exc


# run ----------------------------------------------------------------------------------------------------
def find_workflow(nl: Nodeloom, ref: str) -> dict[str, Any]:
    """A workflow by id (wf_…) or by its exact name (a unique match)."""
    if ref.startswith("wf_"):
        return nl.get_workflow(ref)
    matches = [w for w in nl.workflows(ref) if w.get("name") == ref]
    if len(matches) != 1:
        err_console.print(f"[red]{'no' if not matches else 'more than one'} workflow named {ref!r}[/]"
                          + (": use its id" if matches else " (`nodeloom remote workflows` lists them)"))
        raise typer.Exit(1)
    return matches[0]


def parse_inputs(items: list[str], declared: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``name=value`` pairs: ``@path`` is a file to upload; text inputs keep the value as typed; others are
    parsed as JSON when they can be (numbers, booleans, lists, objects)."""
    types = {str(i.get("name")): str(i.get("type")) for i in declared or [] if isinstance(i, dict)}
    values: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            err_console.print(f"[red]bad input {item!r}[/]: use name=value or name=@file")
            raise typer.Exit(2)
        if raw.startswith("@"):
            path = Path(raw[1:]).expanduser()
            if not path.is_file():
                err_console.print(f"[red]no such file:[/] {path}")
                raise typer.Exit(2)
            values[name] = path  # the client uploads it and sends its fileId
        elif types.get(name) == "text":
            values[name] = raw
        else:
            try:
                values[name] = json.loads(raw)
            except ValueError:
                values[name] = raw
    return values


class NodeBars:
    """One Rich progress bar per node, moved by the client's progress callbacks."""

    def __init__(self, graph: Mapping[str, Any], out: Console):
        self.bars = Bars(SpinnerColumn(), TextColumn("{task.description}", style="bold"), BarColumn(),
                         TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=out, transient=False)
        self.tasks: dict[str, TaskID] = {}
        self.types = {str(n.get("id")): str(n.get("type")) for n in graph.get("nodes") or [] if isinstance(n, dict)}
        for node_id in self.types:
            self._task(node_id)

    def _task(self, node_id: str) -> TaskID:
        if node_id not in self.tasks:
            label = f"{node_id} ({self.types[node_id]})" if node_id in self.types else node_id
            self.tasks[node_id] = self.bars.add_task(label, total=1, start=False, state="queued")
        return self.tasks[node_id]

    def __call__(self, p: Progress) -> None:
        if p.node_id is None:
            return
        task = self._task(p.node_id)
        if p.event == "node.started":
            self.bars.start_task(task)
            self.bars.update(task, state="running")
        elif p.event == "node.progress" and p.max:
            self.bars.update(task, total=p.max, completed=p.value or 0)
        elif p.event == "node.completed":
            self.bars.start_task(task)
            state = "skipped" if p.data.get("skipped") else "cached" if p.data.get("cached") else "done"
            self.bars.update(task, completed=self.bars.tasks[task].total or 1, state=f"[green]{state}[/]")
        elif p.event == "node.failed":
            self.bars.update(task, state="[red]failed[/]")
            self.bars.stop_task(task)


def media_outputs(outputs: Mapping[str, Any]) -> Iterator[tuple[str, Media]]:
    """Each media value with a file name: ``name`` (``name_1``, ``name_2`` … for a list)."""
    for name, value in outputs.items():
        if isinstance(value, Media):
            yield name, value
        elif isinstance(value, list):
            for i, item in enumerate(value, start=1):
                if isinstance(item, Media):
                    yield f"{name}_{i}", item


def file_name(name: str, media: Media) -> str:
    ext = Path(urlsplit(media.url).path).suffix
    if media.content_type:
        ext = mimetypes.guess_extension(media.content_type.split(";")[0].strip()) or ext
    return f"{name}{ext}"


@remote_app.command("run")
def run_cmd(ctx: typer.Context,
            workflow: Annotated[str, typer.Argument(help="A workflow id (wf_…) or its exact name")],
            inputs: Annotated[list[str], typer.Option("-i", "--input", help="name=value; name=@path uploads a file; "
                                                      "non-text inputs are parsed as JSON when they can be")] = [],  # noqa: B006
            download: Annotated[Path | None, typer.Option("--download", "-d", help="Save media outputs in this "
                                                          "folder")] = None,
            version: Annotated[str | None, typer.Option(help="A published version number, or 'draft'")] = None,
            timeout: Annotated[float, typer.Option(help="Seconds to wait for the run to end")] = 600.0,
            as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON, no progress")] = False) -> None:
    """Run a workflow with a progress bar per node; print its outputs (and where --download saved them)."""
    with connected(ctx) as nl:
        wf = find_workflow(nl, workflow)
        values = parse_inputs(inputs, wf.get("inputs"))
        run_version: int | str | None = int(version) if version and version.isdigit() else version
        if as_json:
            result = nl.run(wf["id"], values, version=run_version, timeout=timeout, raise_on_failure=False)
        else:
            console.print(f"running [bold]{wf.get('name')}[/] ({wf['id']}) on {nl.base_url}")
            bars = NodeBars(wf.get("graph") or {}, console)
            with bars.bars:
                result = nl.run(wf["id"], values, version=run_version, timeout=timeout, raise_on_failure=False,
                                on_progress=bars)
        saved: dict[str, str] = {}
        if download is not None and result.ok:
            download.mkdir(parents=True, exist_ok=True)
            for name, media in media_outputs(result.outputs):
                saved[name] = str(nl.download(media, download / file_name(name, media)).resolve())
    if as_json:
        print(json.dumps({"executionId": result.execution_id, "status": result.status,
                          "outputs": result.raw.get("outputs") or {}, "files": saved, "error": result.raw.get("error"),
                          "creditsUsed": result.credits_used}, indent=2))
    else:
        show_result(result, saved)
    if not result.ok:
        raise typer.Exit(1)


def show_result(result: Execution, saved: Mapping[str, str]) -> None:
    colour = "green" if result.ok else "red"
    console.print(f"[{colour}]{result.status}[/] {result.execution_id} · {result.credits_used:g} credits")
    if result.error is not None:
        where = f" (node {result.error.node_id})" if result.error.node_id else ""
        console.print(f"[red]{result.error.code}:[/] {result.error.message}{where}")
    table = Table(title="outputs", show_header=True)
    table.add_column("output")
    table.add_column("value")
    for name, value in result.outputs.items():
        media = dict(media_outputs({name: value}))
        if media:
            for key, item in media.items():
                table.add_row(key, saved.get(key) or item.url)
        else:
            table.add_row(name, value if isinstance(value, str) else json.dumps(value))
    if result.outputs:
        console.print(table)
    for name, path in saved.items():  # one plain line per file, easy to pick up in scripts
        console.print(f"saved {name}: {path}", soft_wrap=True, highlight=False)


# lists ---------------------------------------------------------------------------------------------------
@remote_app.command("workflows")
def workflows_cmd(ctx: typer.Context,
                  query: Annotated[str | None, typer.Option("--query", "-q", help="Search names")] = None,
                  limit: Annotated[int, typer.Option(help="At most this many")] = 50,
                  as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List the account's workflows."""
    with connected(ctx) as nl:
        rows = nl.workflows(query, limit=limit)
    if as_json:
        print(json.dumps({"data": rows}, indent=2))
        return
    table = Table(title=f"{len(rows)} workflows")
    table.add_column("id", no_wrap=True)  # ids whole, to copy
    for col in ("name", "published", "inputs", "outputs", "updated"):
        table.add_column(col, overflow="fold")
    for w in rows:
        table.add_row(w["id"], str(w.get("name", "")), str(w.get("publishedVersion") or "draft only"),
                      ", ".join(str(i.get("name")) for i in w.get("inputs") or []),
                      ", ".join(str(o.get("name")) for o in w.get("outputs") or []), str(w.get("updatedAt", "")))
    console.print(table)


@remote_app.command("executions")
def executions_cmd(ctx: typer.Context,
                   workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Only this workflow's")] = None,
                   status: Annotated[str | None, typer.Option(help="QUEUED, RUNNING, COMPLETED, FAILED, "
                                                              "CANCELLED")] = None,
                   limit: Annotated[int, typer.Option(help="At most this many (newest first)")] = 20,
                   as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List recent executions, newest first."""
    with connected(ctx) as nl:
        rows = nl.executions(workflow_id=workflow, status=status.upper() if status else None, limit=limit)
    if as_json:
        print(json.dumps({"data": rows}, indent=2))
        return
    table = Table(title=f"{len(rows)} executions")
    table.add_column("id", no_wrap=True)
    table.add_column("workflow", no_wrap=True)
    for col in ("status", "created", "credits", "error"):
        table.add_column(col, overflow="fold")
    for e in rows:
        error = e.get("error") or {}
        table.add_row(e["executionId"], str(e.get("workflowId", "")), str(e.get("status", "")),
                      str(e.get("createdAt", "")), f"{float(e.get('creditsUsed') or 0):g}",
                      str(error.get("code", "")) if isinstance(error, dict) else "")
    console.print(table)


@remote_app.command("usage")
def usage_cmd(ctx: typer.Context,
              as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """The account's plan, credits, executions and limits."""
    with connected(ctx) as nl:
        usage = nl.usage()
    if as_json:
        print(json.dumps(usage, indent=2))
        return
    limits = usage.get("rateLimits") or {}
    runs = usage.get("executions") or {}
    table = Table(title=f"usage · plan {usage.get('plan')}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("credits", f"{float((usage.get('credits') or {}).get('balance') or 0):g}")
    daily = runs.get("dailyLimit")
    table.add_row("executions today", f"{runs.get('today', 0)} of {daily if daily is not None else 'unlimited'}")
    table.add_row("executions this month", str(runs.get("thisMonth", 0)))
    table.add_row("requests/min", str(limits.get("requestsPerMinute", "")))
    table.add_row("executions/min", str(limits.get("executionsPerMinute", "")))
    table.add_row("concurrency", str(limits.get("concurrency", "")))
    if "running" in usage:
        table.add_row("running now", str(usage["running"]))
    console.print(table)


@remote_app.command("import-comfyui")
def import_comfyui_cmd(ctx: typer.Context,
                       file: Annotated[Path, typer.Argument(help="A ComfyUI export: API or UI format .json, or a PNG "
                                                            "ComfyUI saved", exists=True, dir_okay=False)],
                       name: Annotated[str | None, typer.Option(help="Workflow name (default: the file's)")] = None,
                       as_json: Annotated[bool, typer.Option("--json", help="Print the new workflow as JSON")] = False
                       ) -> None:
    """Import a ComfyUI workflow as a draft (POST /api/v1/workflows/import/comfyui)."""
    with connected(ctx) as nl:
        wf = nl.import_comfyui(file, name=name)
    if as_json:
        print(json.dumps(wf, indent=2))
        return
    console.print(f"[green]imported[/] {wf['id']} ({wf.get('name')}), a draft")
    console.print("inputs: " + (", ".join(f"{i['name']} ({i['type']})" for i in wf.get("inputs") or []) or "none"))
    console.print("outputs: " + (", ".join(f"{o['name']} ({o['type']})" for o in wf.get("outputs") or []) or "none"))
    for note in wf.get("importNotes") or []:
        console.print(f"  · {note}", highlight=False)
    console.print(f"publish it from the dashboard or with POST /api/v1/workflows/{wf['id']}/publish, then "
                  f"`nodeloom remote run {wf['id']} -i …`", highlight=False)


@remote_app.command("publish")
def publish_cmd(ctx: typer.Context,
                workflow: Annotated[str, typer.Argument(help="A workflow id (wf_…) or its exact name")]) -> None:
    """Publish a workflow's draft as its next version (what `remote run` runs)."""
    with connected(ctx) as nl:
        published = nl.publish(find_workflow(nl, workflow)["id"])
    console.print(f"[green]published[/] {published['workflowId']} version {published['version']}")


def main() -> None:
    """`python -m nodeloom.remote …`: the same commands without loading the server's modules (faster to start)."""
    remote_app(prog_name="nodeloom remote")


if __name__ == "__main__":
    main()
