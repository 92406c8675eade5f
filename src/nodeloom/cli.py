"""The `nodeloom` command: serve, worker, migrate, accounts, keys, nodes, run."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from nodeloom.api import create_app
from nodeloom.compose import Services, build, node_secret_names
from nodeloom.demo import ensure_demo
from nodeloom.errors import ApiError
from nodeloom.localrun import run_local
from nodeloom.logs import configure_logging
from nodeloom.processes import WorkerProcesses
from nodeloom.services.comfyui.supervisor import ComfyUIStartError, ComfyUISupervisor, SupervisorThread
from nodeloom.settings import Settings, scrub_secret_environment
from nodeloom.storage.blobs import make_blob_store
from nodeloom.storage.copy import CopyError, copy_database, copy_files
from nodeloom.storage.migrate import upgrade
from nodeloom.types import ALL_SCOPES
from nodeloom.worker import run_celery_worker

app = typer.Typer(help="nodeloom: node-based AI workflows as a REST API.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
accounts_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
users_app = typer.Typer(help="Manage people who sign in to the dashboard.", no_args_is_help=True)
app.add_typer(users_app, name="users")
db_app = typer.Typer(help="Database operations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
comfyui_app = typer.Typer(help="The ComfyUI pool (NODELOOM_COMFYUI_URLS).", no_args_is_help=True)
app.add_typer(comfyui_app, name="comfyui")
try:  # `nodeloom remote` is the nodeloom-client distribution's CLI (clients/python); an install without it has none
    from nodeloom.remote import remote_app
except ModuleNotFoundError as missing:
    if missing.name != "nodeloom_client":
        raise
else:
    app.add_typer(remote_app, name="remote")
console = Console()
err_console = Console(stderr=True)


def _services(migrate: bool = True) -> Services:
    return build(Settings(), migrate=migrate)


COMFYUI_HELP = ("Start ComfyUI from this checkout as a child process on 127.0.0.1 (its Python: NODELOOM_COMFYUI_PYTHON, "
                "else PATH/.venv, PATH/venv or a venv next to PATH), restart it when it dies, stop it on exit; "
                "a ComfyUI server private to this process")


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)


def _start_comfyui(path: Path | None, settings: Settings) -> Settings:
    """`--comfyui PATH`: start ComfyUI before the services are built, and return the settings that hand its URL to
    the pool (`comfyui_local_url`). It is stopped when this process exits: SIGTERM becomes SystemExit here (uvicorn
    re-raises the SIGTERM it handled), and the exit stops it (SIGTERM, then SIGKILL); a SIGKILLed process's child
    gets SIGTERM from the kernel."""
    if path is None:
        return settings
    configure_logging(settings.log_format, settings.log_level)
    local = SupervisorThread(ComfyUISupervisor(path, data_dir=settings.data_dir, python=settings.comfyui_python))
    atexit.register(local.stop)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        url = local.start()
    except ComfyUIStartError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    folders = local.supervisor.folders
    console.print(f"ComfyUI from {path} is running at {url}" + (f" (log: {folders.log})" if folders else ""),
                  markup=False, highlight=False, soft_wrap=True)
    return settings.model_copy(update={"comfyui_local_url": url})


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic) to NODELOOM_DATABASE_URL or the embedded SQLite file."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    console.print(f"[green]database is up to date[/] ({settings.resolved_database_url.split('?')[0]})")


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
          demo: Annotated[bool, typer.Option(help="Create (once) and print a demo account")] = False,
          comfyui: Annotated[Path | None, typer.Option("--comfyui", metavar="PATH", help=COMFYUI_HELP)] = None,
          workers: Annotated[int | None, typer.Option(
              "--workers", min=0, max=64, help="Worker processes to run executions in (0: in the API process). "
              "Default: NODELOOM_WORKER_PROCESSES")] = None) -> None:
    """Run the API server with its embedded workers (SQLite + local files on the embedded default)."""

    child_env = dict(os.environ)  # the worker children's (read before the secrets are scrubbed from ours)
    settings = _start_comfyui(comfyui, Settings())
    processes = settings.worker_processes if workers is None else workers
    if processes and settings.queue != "sql":
        err_console.print("[red]error:[/] --workers runs the embedded queue's workers; with NODELOOM_QUEUE=celery run "
                          "`nodeloom worker` processes instead")
        raise typer.Exit(2)
    services = build(settings, migrate=True)
    # read once into Settings (and declared node secrets into the runner): nodes and child processes never see them
    scrub_secret_environment(node_secrets=node_secret_names(services.runnable))
    if demo:
        creds = ensure_demo(services)
        url = f"http://{host}:{port}"
        console.print(f"\n[bold green]nodeloom is starting at {url}[/]  (API docs: {url}/docs)", soft_wrap=True)
        console.print(f"  demo account: {creds['accountId']}")
        console.print(f"  API key:      [bold]{creds['apiKey']}[/]")
        if creds.get("workflowId"):
            console.print(f"  demo workflow: {creds['workflowId']}")
        if creds.get("posterWorkflowId"):
            console.print(f"  offline-models demo workflow: {creds['posterWorkflowId']}")
        if creds.get("email"):
            console.print(f"  dashboard login: {creds['email']} / {creds['password']}")
        console.print(f"  (saved in {creds['path']})\n")
        console.print(f"  try: curl -s -X POST {url}/api/v1/workflows/{creds.get('workflowId')}/execute "
                      f"-H 'Authorization: Bearer {creds['apiKey']}' -H 'Content-Type: application/json' "
                      "-H 'Prefer: wait=30' -d '{\"inputs\": {}}'\n", soft_wrap=True)

    configure_logging(settings.log_format, settings.log_level)
    children = None
    if processes:
        if settings.comfyui_local_url:  # the `--comfyui` child this process runs serves the workers' segments too
            child_env["NODELOOM_COMFYUI_URLS"] = ",".join([*settings.comfyui_urls, settings.comfyui_local_url])
        children = WorkerProcesses(processes, concurrency=settings.worker_concurrency, env=child_env,
                                   sockets=settings.run_dir)
        children.start()
    try:
        uvicorn.run(create_app(settings, services=services, run_workers=False if processes else None), host=host,
                    port=port, log_config=None, access_log=False)
    finally:
        if children is not None:
            children.stop()


@accounts_app.command("create")
def accounts_create(name: Annotated[str, typer.Option(help="Account name")],
                    plan: Annotated[str, typer.Option(help="free | starter | pro | enterprise")] = "free",
                    credits: Annotated[float, typer.Option(help="Initial credits")] = 0,
                    email: Annotated[str | None, typer.Option(help="Also create the owner, who signs in to the "
                                                              "dashboard with this email")] = None,
                    password: Annotated[str | None, typer.Option(help="The owner's password (asked for when "
                                                                 "--email comes without it)")] = None,
                    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line")] = False) -> None:
    """Create an account and an API key with every scope (and, with --email, its owner)."""
    if password is not None and email is None:
        err_console.print("[red]error:[/] --password needs --email")
        raise typer.Exit(2)
    if email is not None and password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    rt = _services()
    user = None
    try:
        if email is not None and password is not None:
            user = rt.users.create_account_with_owner(account_name=name, email=email, password=password, plan=plan,
                                                      credits=credits)
            account = rt.accounts.get_account(user.account_id)
        else:
            account = rt.accounts.create_account(name=name, plan=plan, credits=credits)
        _row, token = rt.accounts.create_key(account_id=account.id, name="default", scopes=list(ALL_SCOPES))
    except ApiError as exc:
        err_console.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(2) from exc
    owner = {"userId": user.id, "email": user.email} if user is not None else {}
    if as_json:
        print(json.dumps({"accountId": account.id, "apiKey": token, **owner}))
    else:
        console.print(f"account [bold]{account.id}[/] ({plan}); API key: [bold]{token}[/] (shown once)")
        if user is not None:
            console.print(f"owner [bold]{user.email}[/] ({user.id}) can sign in to the dashboard")


@users_app.command("create")
def users_create(email: Annotated[str, typer.Option(help="Sign-in email")],
                 account: Annotated[str, typer.Option(help="Account id (acct_...) the user acts for")],
                 password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                                       help="Password (asked for when not given)")],
                 as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line")] = False) -> None:
    """Create a person who signs in to the dashboard and acts for an account with every scope."""
    rt = _services()
    try:
        user = rt.users.create_user(account_id=account, email=email, password=password)
    except ApiError as exc:
        err_console.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps({"userId": user.id, "accountId": user.account_id, "email": user.email}))
    else:
        console.print(f"user [bold]{user.email}[/] ({user.id}) for account {user.account_id}")


def _account_command(action: Any, as_json: bool) -> None:
    """Run one account change and print its result (exit 2 with the message on a refusal)."""
    try:
        result = action(_services())
    except ApiError as exc:
        err_console.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(result))
    else:
        console.print(", ".join(f"{k}: [bold]{v}[/]" for k, v in result.items()))


@accounts_app.command("set-plan")
def accounts_set_plan(account: Annotated[str, typer.Argument(help="Account id (acct_...)")],
                      plan: Annotated[str, typer.Argument(help="free | starter | pro | enterprise (or a configured plan)")],
                      as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line")] = False) -> None:
    """Move an account to another plan (its own limit overrides stay)."""
    _account_command(lambda rt: rt.limiter.set_plan(account, plan), as_json)


@accounts_app.command("set-limits")
def accounts_set_limits(
        account: Annotated[str, typer.Argument(help="Account id (acct_...)")],
        requests_per_minute: Annotated[int | None, typer.Option(help="API requests per minute")] = None,
        executions_per_day: Annotated[int | None, typer.Option(help="Executions per UTC day (-1: unlimited)")] = None,
        executions_per_minute: Annotated[int | None, typer.Option(help="Executions per minute")] = None,
        concurrency: Annotated[int | None, typer.Option(help="Executions running at once")] = None,
        clear: Annotated[bool, typer.Option(help="Drop every override first (back to the plan's limits)")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line")] = False) -> None:
    """Override an account's plan limits; options not given keep their current value."""
    _account_command(lambda rt: rt.limiter.set_limits(
        account, clear=clear, requests_per_minute=requests_per_minute, executions_per_day=executions_per_day,
        executions_per_minute=executions_per_minute, concurrency=concurrency), as_json)


@accounts_app.command("grant-credits")
def accounts_grant_credits(account: Annotated[str, typer.Argument(help="Account id (acct_...)")],
                           amount: Annotated[float, typer.Argument(help="Credits to add (recorded in the ledger)")],
                           note: Annotated[str | None, typer.Option(help="Why (kept in the ledger)")] = None,
                           as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line")] = False) -> None:
    """Add credits to an account's balance."""
    _account_command(lambda rt: {"accountId": account, "granted": amount,
                                 "balance": float(rt.billing.grant(account, amount, note=note))}, as_json)


@keys_app.command("create")
def keys_create(account: Annotated[str, typer.Option(help="Account id (acct_...)")],
                scopes: Annotated[str, typer.Option(help="Comma-separated: execute,read,usage,manage")] = "execute,read",
                name: Annotated[str, typer.Option(help="Key name")] = "cli",
                as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line")] = False) -> None:
    """Create an API key for an account."""
    rt = _services()
    try:
        row, token = rt.accounts.create_key(account_id=account, name=name,
                                            scopes=[s.strip() for s in scopes.split(",") if s.strip()])
    except ApiError as exc:
        err_console.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps({"id": row.id, "accountId": account, "apiKey": token, "scopes": list(row.scopes)}))
    else:
        console.print(f"key [bold]{row.id}[/]: [bold]{token}[/] (shown once)")


@db_app.command("copy")
def db_copy(source: Annotated[str, typer.Option("--from", help="Source database URL (e.g. sqlite:///.nodeloom/nodeloom.db)")],
            target: Annotated[str, typer.Option("--to", help="Target database URL (a new, empty database)")],
            files_from: Annotated[str | None, typer.Option(help="Source file store (a directory or s3://…)")] = None,
            files_to: Annotated[str | None, typer.Option(help="Target file store (s3://bucket/prefix or a directory)")] = None) -> None:
    """Move an install's data to another database (and its files to another store) without loss."""
    settings = Settings()
    try:
        counts = copy_database(source, target, progress=lambda t, n: console.print(f"  {t}: {n} rows"))
        console.print(f"[green]copied {sum(counts.values())} rows in {len(counts)} tables[/]")
        if files_to:
            src_store = make_blob_store(files_from, files_dir=settings.files_dir, endpoint_url=settings.s3_endpoint_url)
            dst_store = make_blob_store(files_to, files_dir=settings.files_dir / "copy-cache",
                                        endpoint_url=settings.s3_endpoint_url)
            console.print(f"[green]copied {copy_files(target, src_store, dst_store)} files[/]")
    except CopyError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


@app.command("nodes")
def nodes_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON")] = False) -> None:
    """List the node catalogue."""
    catalogue = _services().registry.catalogue()  # the server's view: hosted nodes need a configured vendor
    if as_json:
        print(json.dumps({"data": catalogue}, indent=2))
        return
    table = Table(title=f"{len(catalogue)} node types")
    for col in ("type", "inputs", "outputs", "credits", "resources", "available"):
        table.add_column(col)
    for n in catalogue:
        table.add_row(n["type"], ", ".join(f"{p['name']}:{p['type']}" for p in n["inputs"]),
                      ", ".join(f"{p['name']}:{p['type']}" for p in n["outputs"]), json.dumps(n["credits"]),
                      n["resources"], "yes" if n["available"] else f"no: {n['unavailableReason']}")
    console.print(table)


@comfyui_app.command("status")
def comfyui_status(check: Annotated[bool, typer.Option(help="Check every server now (else: as workers last saw "
                                                             "them)")] = False,
                   as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Each ComfyUI server of the pool: healthy, its queue, how many node types it offers."""
    services = _services()
    if not services.comfyui.configured:
        err_console.print("[red]no ComfyUI servers configured[/] (set NODELOOM_COMFYUI_URLS)")
        raise typer.Exit(2)
    if check:
        asyncio.run(services.comfyui.check())
    servers = [server.public() for server in services.comfyui.servers()]
    if as_json:
        print(json.dumps({"data": servers}))
        return
    table = Table(title=f"{len(servers)} ComfyUI servers")
    for col in ("server", "healthy", "running", "pending", "node types", "checked", "error"):
        table.add_column(col)
    for server in servers:
        table.add_row(server["url"], "yes" if server["healthy"] else "no", str(server["queue"]["running"]),
                      str(server["queue"]["pending"]), str(server["nodeTypes"]), server["checkedAt"] or "never",
                      server["error"] or "")
    console.print(table)


@app.command("run")
def run_cmd(graph_file: Annotated[Path, typer.Argument(help="Graph JSON (a graph or a workflow with 'graph')")],
            inputs: Annotated[list[str], typer.Option("-i", "--input", help="name=value (value parsed as JSON "
                                                      "when it can be; @path reads an image file)")] = [],  # noqa: B006
            out: Annotated[Path, typer.Option("--out", "-o", help="Folder for outputs")] = Path("outputs")) -> None:
    """Run a graph locally (no server) with a live progress display; write outputs to a folder."""
    try:
        raw = json.loads(graph_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        err_console.print(f"[red]cannot read {graph_file}:[/] {exc}")
        raise typer.Exit(2) from exc
    values: dict[str, Any] = {}
    for item in inputs:
        name, sep, value = item.partition("=")
        if not sep:
            err_console.print(f"[red]bad input {item!r}[/]: use name=value")
            raise typer.Exit(2)
        try:
            values[name] = json.loads(value)
        except json.JSONDecodeError:
            values[name] = value
    code = asyncio.run(run_local(raw.get("graph", raw), values, out, console))
    raise typer.Exit(code)


@app.command()
def worker(queues: Annotated[str, typer.Option(help="Comma-separated queues: cpu,io,gpu")] = "cpu,io,gpu",
           concurrency: Annotated[int, typer.Option(help="Executions at once")] = 4,
           comfyui: Annotated[Path | None, typer.Option("--comfyui", metavar="PATH", help=COMFYUI_HELP)] = None) -> None:
    """Run a worker: on NODELOOM_QUEUE=celery a Celery worker for these queues, else a standalone
    worker polling the shared database (the `sql` queue)."""

    settings = _start_comfyui(comfyui, Settings())
    configure_logging(settings.log_format, settings.log_level)
    names = tuple(q.strip() for q in queues.split(","))
    services = build(settings, migrate=False)
    scrub_secret_environment(node_secrets=node_secret_names(services.runnable))  # nodes never see them
    if services.celery is not None:
        run_celery_worker(celery=services.celery, queue=services.queue, runner=services.runner,
                          duties=services.duties, queues=names, concurrency=concurrency,
                          sleeping=services.sleeping, sleeping_slots=settings.worker_sleeping_slots,
                          watchdog_s=settings.watchdog_seconds())
        return
    w = services.worker(concurrency=concurrency, queues=names)

    async def main() -> None:

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await w.run(stop)
        await services.aclose()

    asyncio.run(main())


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
