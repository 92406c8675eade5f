"""The composition root: one `Settings` in, the whole object graph of a process out.

`build(settings)` is the only place that constructs services and wires them together — `create_app`,
the worker loop, the Celery worker, the CLI and `nodeloom run` all start here. Every service is built
once, complete, in dependency order; nothing is attached to an object after it was constructed.

    settings ─▶ db, clock, blobs, files, accounts, users, provider keys, hosted models
             ─▶ limits, billing, usage, idempotency          (plans, credits, quotas)
             ─▶ queue (sql | celery), hub, work signal
             ─▶ deliveries ─┐
             ─▶ lifecycle ◀─┴─ limits, billing               (one sink for every state change)
             ─▶ workflows, executions, triggers
             ─▶ guard, http, media, cache, process pool ─▶ recorder, heartbeat, runner
             ─▶ metrics, retention, delivery sender, readiness, periodic duties
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from nodeloom.clock import Clock, SystemClock
from nodeloom.engine.context import LocalEnvironment
from nodeloom.engine.executor import RunOptions
from nodeloom.engine.graph import Limits
from nodeloom.engine.node import Node
from nodeloom.engine.registry import NodeSource, Registry
from nodeloom.media.images import memory_size
from nodeloom.media.sandbox import Budget, Sandbox
from nodeloom.media.urlguard import AddressGuard, GuardedClient, Resolver
from nodeloom.nodes import PACKS, builtin_nodes
from nodeloom.nodes.models_diffusers import availability_hook as diffusers_availability
from nodeloom.queue.base import QueueBackend
from nodeloom.queue.sql import SqlQueue
from nodeloom.services.accounts import AccountService
from nodeloom.services.billing import BillingService
from nodeloom.services.cache import MemoryCache
from nodeloom.services.comfyui.catalog import ComfyNodeSource
from nodeloom.services.comfyui.imports import ComfyImportService
from nodeloom.services.comfyui.nodes import ComfyPolicy
from nodeloom.services.comfyui.pool import ComfyPool
from nodeloom.services.comfyui.running import ComfySegmentRunner
from nodeloom.services.comfyui.supervisor import swept_folders
from nodeloom.services.deliveries import DeliverySender, DeliveryService, RetryPolicy
from nodeloom.services.environment import ResilientProcessPool, SleepingSlots, make_process_pool
from nodeloom.services.executions import ExecutionService, snapshot
from nodeloom.services.files import FileService
from nodeloom.services.health import Readiness
from nodeloom.services.heartbeat import Heartbeat
from nodeloom.services.hosted import HostedModels
from nodeloom.services.hub import EventHub, LocalBus, LocalBusHub, LocalBusWorkSignal, RedisEventHub, WorkSignal
from nodeloom.services.idempotency import IdempotencyService
from nodeloom.services.lifecycle import Lifecycle
from nodeloom.services.limits import LimitsService
from nodeloom.services.media import MediaResolver
from nodeloom.services.metrics import Metrics
from nodeloom.services.provider_keys import ProviderKeyService
from nodeloom.services.recorder import EventRecorder
from nodeloom.services.retention import Purge, RetentionSweeper
from nodeloom.services.runner import ExecutionRunner
from nodeloom.services.triggers import TriggerService
from nodeloom.services.usage import UsageService
from nodeloom.services.users import UserService
from nodeloom.services.workflows import WorkflowService
from nodeloom.settings import Settings, read_node_secrets
from nodeloom.storage.blobs import BlobStore, make_blob_store
from nodeloom.storage.db import Database
from nodeloom.storage.migrate import upgrade
from nodeloom.worker import Duty, Worker, make_worker_id


@dataclass(frozen=True, slots=True)
class Services:
    """Everything one process runs, built by `build`. Read it; never attach to it."""

    settings: Settings
    clock: Clock
    db: Database
    #: the catalogue's view: hosted nodes are marked unavailable when the operator has no key for any of
    #: their vendors. Validation and the runner use `runnable`, because an account's own key may serve
    #: them (checked per account at execute by `hosted.check_graph`)
    registry: Registry
    runnable: Registry
    blobs: BlobStore
    files: FileService
    accounts: AccountService
    users: UserService
    provider_keys: ProviderKeyService
    hosted: HostedModels
    limiter: LimitsService
    billing: BillingService
    usage: UsageService
    idempotency: IdempotencyService
    hub: EventHub
    work: WorkSignal
    queue: QueueBackend
    sql_queue: SqlQueue
    celery: Any  # the Celery app on NODELOOM_QUEUE=celery, else None
    lifecycle: Lifecycle
    deliveries: DeliveryService
    workflows: WorkflowService
    executions: ExecutionService
    triggers: TriggerService
    guard: AddressGuard
    http: GuardedClient
    media: MediaResolver
    cache: MemoryCache
    pool: ResilientProcessPool | None
    #: killable child processes with CPU and memory budgets for work a user programs (templates, regexes, queries)
    sandbox: Sandbox
    #: executions whose nodes sleep, which lend their worker slot back meanwhile
    sleeping: SleepingSlots
    metrics: Metrics
    comfyui: ComfyPool
    comfy_imports: ComfyImportService
    comfy_runner: ComfySegmentRunner
    runner: ExecutionRunner
    retention: RetentionSweeper
    sender: DeliverySender
    readiness: Readiness
    worker_id: str
    #: background duties every worker process runs (sweepers, the webhook sender)
    duties: tuple[Duty, ...]

    @property
    def embedded_workers(self) -> bool:
        """Workers run inside the API process only on the `sql` queue (Celery has its own workers)."""
        return self.settings.embedded_workers and self.settings.queue == "sql"

    def worker(self, *, concurrency: int | None = None, queues: tuple[str, ...] = ("cpu", "io", "gpu")) -> Worker:
        """The worker loop over this process's queue and runner (embedded in `serve`, or `nodeloom worker`)."""
        return Worker(queue=self.queue, runner=self.runner, signal=self.work, worker_id=self.worker_id,
                      concurrency=concurrency or self.settings.worker_concurrency,
                      poll_interval=self.settings.poll_interval_seconds, queues=queues, duties=self.duties,
                      sleeping=self.sleeping, sleeping_slots=self.settings.worker_sleeping_slots,
                      watchdog_s=self.settings.watchdog_seconds())

    async def aclose(self) -> None:
        await self.comfy_runner.aclose()
        await self.comfyui.aclose()
        await self.sender.aclose()
        await self.http.aclose()
        await self.hosted.aclose()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.sandbox.close()
        if isinstance(self.hub, RedisEventHub):
            self.hub.close()
        if isinstance(self.work, LocalBusWorkSignal):
            self.work.bus.close()
        self.db.dispose()


def build(settings: Settings, *, clock: Clock | None = None, resolver: Resolver | None = None,
          migrate: bool = False) -> Services:
    """Build the object graph of one process (with `migrate`, bring the database schema up to date first)."""
    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = settings.ensure_secret()
    url = settings.resolved_database_url
    if migrate:
        upgrade(url)
    db = Database(url, synchronous=settings.sqlite_synchronous, cache_kib=settings.sqlite_cache_kib)
    worker_id = make_worker_id()

    # who and what: files, accounts, people, vendor keys and the hosted models they unlock
    blobs = make_blob_store(settings.storage_url, files_dir=settings.files_dir, endpoint_url=settings.s3_endpoint_url,
                            region=settings.s3_region, fsync=settings.sqlite_synchronous == "FULL")
    files = FileService(db, blobs, secret_key=secret, clock=clock, ttl_seconds=settings.signed_url_ttl_seconds,
                        files_url=settings.files_url)
    accounts = AccountService(db, secret_key=secret, clock=clock, cache_seconds=settings.auth_cache_seconds)
    users = UserService(db, accounts=accounts, secret_key=secret, clock=clock,
                        session_ttl_seconds=settings.session_ttl_seconds,
                        login_attempts=settings.login_attempts_per_window,
                        login_window_seconds=settings.login_window_seconds)
    provider_keys = ProviderKeyService(db, secret_key=secret, clock=clock)
    hosted = HostedModels(settings, keys=provider_keys)
    node_types = builtin_nodes(PACKS + tuple(settings.node_packs))
    # the ComfyUI servers, their node types, and the operator's rules for them
    comfyui = ComfyPool(db, urls=settings.comfyui_urls, clock=clock,
                        local_url=getattr(settings, "comfyui_local_url", None))
    comfy_policy = comfyui_policy(settings)
    comfy_types = ComfyNodeSource(comfyui, clock=clock, policy=comfy_policy)
    registry, runnable = registries(node_types, settings, hosted, sources=(comfy_types,))
    graph_limits = Limits(max_nodes=settings.max_nodes, max_params_bytes=settings.max_params_bytes)

    # the platform: plans and rates, credits, usage, idempotency keys
    limiter = LimitsService(db, settings=settings, clock=clock)
    billing = BillingService(db, clock=clock, own_keys=provider_keys.stored)
    usage = UsageService(db, limiter=limiter, clock=clock)
    idempotency = IdempotencyService(db, clock=clock, ttl_seconds=settings.idempotency_hours * 3600)

    # the queue and the signals around it
    hub: EventHub
    work: WorkSignal = WorkSignal()
    bus = LocalBus(settings.run_dir) if settings.queue == "sql" else None
    if bus is not None:  # the sql queue's processes on this machine wake each other (`serve --workers N`)
        work = LocalBusWorkSignal(bus)
    if settings.redis_url:
        hub = RedisEventHub(settings.redis_url)
    else:
        hub = LocalBusHub(bus) if bus is not None else EventHub()
    sql_queue = SqlQueue(db, clock=clock, lease_seconds=settings.lease_seconds, cap_filter=limiter.claim_room)
    queue: QueueBackend = sql_queue
    celery: Any = None
    if settings.queue == "celery":
        from nodeloom.queue.celery import CeleryQueue, make_celery  # Celery is optional: imported when used

        if not settings.broker_url:
            raise ValueError("NODELOOM_QUEUE=celery needs NODELOOM_BROKER_URL (redis://… or amqp://…)")
        celery = make_celery(settings.broker_url)
        queue = CeleryQueue(sql_queue, celery)

    # one lifecycle: limits count, billing holds/charges/releases, webhooks write their outbox — in that order
    guard = AddressGuard(allow_private=settings.allow_private_urls, resolver=resolver,
                         trusted_hosts=settings.configured_base_urls())
    deliveries = DeliveryService(db, snapshot=partial(snapshot, queue=queue), guard=guard, clock=clock)
    lifecycle = Lifecycle([limiter, billing, deliveries], clock=clock)

    workflows = WorkflowService(db, runnable, clock=clock, limits=graph_limits, pin=comfy_types.pin,
                                unpin=comfy_types.unpin)
    executions = ExecutionService(db, workflows=workflows, queue=queue, files=files, hub=hub, lifecycle=lifecycle,
                                  clock=clock, wake_workers=work.notify,
                                  check_callback_url=deliveries.check_callback_url,
                                  graph_checks=(hosted.check_graph,), allow_http_inputs=settings.allow_private_urls)
    comfy_imports = ComfyImportService(pool=comfyui, workflows=workflows)
    triggers = TriggerService(db, executions=executions, clock=clock,
                              check_callback_url=deliveries.check_callback_url)

    # running executions
    http = GuardedClient(guard)
    media = MediaResolver(files, http, max_bytes=settings.max_fetch_bytes)
    cache = MemoryCache(settings.cache_entries_per_account)
    pool = make_process_pool(settings.process_pool_size, local_max_pixels=settings.cpu_local_max_pixels)
    sandbox = make_sandbox(settings)
    sleeping = SleepingSlots(min_seconds=settings.worker_lend_sleeps_from_seconds)
    metrics = Metrics(depth=queue.depth, statuses=executions.counts_by_status, comfyui=comfyui.servers)
    node_services = capabilities(settings, media=media, http=http, hosted=hosted, files=files, sandbox=sandbox,
                                 sleeping=sleeping)
    comfy_runner = ComfySegmentRunner(
        comfyui, policy=comfy_policy, max_attempts=settings.comfyui_max_attempts,
        cancel_requested=executions.cancel_was_requested,
        charge=lambda eid, nid, seconds, node_type, note: billing.charge_run_seconds(
            eid, nid, seconds, node_type=node_type, note=note))
    runner = ExecutionRunner(
        db=db, registry=runnable, queue=queue, files=files, hub=hub, lifecycle=lifecycle,
        recorder=EventRecorder(db=db, queue=queue, lifecycle=lifecycle, clock=clock),
        heartbeat=Heartbeat(db=db, queue=queue, clock=clock, interval=settings.heartbeat_seconds),
        clock=clock, cache=cache, pool=pool, services=node_services, secrets=declared_secrets(node_types),
        limits=graph_limits, metrics=metrics, max_attempts=settings.max_attempts,
        options=RunOptions(concurrency=settings.graph_concurrency, node_timeout_s=settings.node_timeout_seconds,
                           admit=billing.admit_fanout, segments={"comfyui": comfy_runner}, now=clock.time,
                           memory_budget=settings.execution_memory_mb * 2**20, size_of=memory_size),
        work_root=settings.data_dir.resolve() / "work")

    # what every worker process also does
    retention = RetentionSweeper(db, files, clock=clock, days=settings.retention_days, purges=(
        Purge("webhook_deliveries", deliveries.purge),
        Purge("trigger_receipts", triggers.purge, days=triggers.receipt_days)),
        folders=partial(swept_folders, settings.data_dir))  # a `--comfyui` child's input/output/temp
    sender = DeliverySender(
        db, http=http, files=files, clock=clock, worker_id=worker_id,
        policy=RetryPolicy(tuple(settings.webhook_retry_schedule), jitter=settings.webhook_retry_jitter),
        timeout_s=settings.webhook_timeout_seconds, concurrency=settings.webhook_sender_concurrency,
        lease_margin_s=settings.webhook_lease_margin_seconds,
        base_url=settings.public_url or "")
    duties = [Duty("retention", settings.sweep_interval_seconds, partial(asyncio.to_thread, retention.sweep)),
              Duty("webhooks", settings.webhook_poll_interval_seconds, sender.tick),
              Duty("idempotency", settings.sweep_interval_seconds, idempotency.sweep_async),
              Duty("sessions", settings.sweep_interval_seconds, users.sweep_async)]
    if comfyui.configured:
        duties.append(Duty("comfyui", settings.comfyui_check_seconds, comfyui.check))
    if celery is not None:
        stale_after = settings.lease_seconds * 2
        duties.append(Duty("broker", max(0.5, settings.lease_seconds / 3),
                           partial(asyncio.to_thread, queue.sweep, stale_after=stale_after)))
    readiness = Readiness(db=db, queue=queue, blobs=blobs, broker=queue.check if celery is not None else None)

    return Services(
        settings=settings, clock=clock, db=db, registry=registry, runnable=runnable, blobs=blobs, files=files,
        accounts=accounts, users=users, provider_keys=provider_keys, hosted=hosted, limiter=limiter,
        billing=billing, usage=usage, idempotency=idempotency, hub=hub, work=work, queue=queue,
        sql_queue=sql_queue, celery=celery, lifecycle=lifecycle, deliveries=deliveries, workflows=workflows,
        executions=executions, triggers=triggers, guard=guard, http=http, media=media, cache=cache, pool=pool,
        sandbox=sandbox, sleeping=sleeping, metrics=metrics, comfyui=comfyui, comfy_imports=comfy_imports, comfy_runner=comfy_runner, runner=runner, retention=retention, sender=sender, readiness=readiness,
        worker_id=worker_id, duties=tuple(duties))


def comfyui_policy(settings: Settings) -> ComfyPolicy:
    """The operator's rules for the ComfyUI pool (allow-list, prices, caps), from the settings."""
    return ComfyPolicy(allowed_classes=frozenset(settings.comfyui_allowed_nodes),
                       credits_per_second=settings.comfyui_credits_per_second,
                       max_seconds=settings.comfyui_max_seconds, max_image_pixels=settings.comfyui_max_image_pixels,
                       max_batch=settings.comfyui_max_batch)


def make_sandbox(settings: Settings) -> Sandbox:
    """The sandbox for work a user programs, with the budgets the settings give."""
    budget = Budget(cpu_seconds=settings.sandbox_cpu_seconds, wall_seconds=settings.sandbox_wall_seconds,
                    memory_bytes=settings.sandbox_memory_mb * 1024 * 1024)
    return Sandbox(budget, warm=settings.sandbox_warm_processes, max_children=settings.sandbox_max_processes)


def capabilities(settings: Settings, *, media: MediaResolver, http: GuardedClient, hosted: HostedModels,
                 files: FileService | None = None, sandbox: Sandbox | None = None,
                 sleeping: SleepingSlots | None = None) -> dict[str, Any]:
    """What nodes reach through `ctx.service(name)` (the runner adds each execution's `workdir`)."""
    services: dict[str, Any] = {"media": media, "http": http, "providers": hosted}
    if files is not None:
        services["files"] = files
    if sandbox is not None:
        services["sandbox"] = sandbox
    if sleeping is not None:
        services["sleeping"] = sleeping
    if settings.diffusers_models_dir is not None:
        services["diffusers_models_dir"] = settings.diffusers_models_dir
    return services


def declared_secrets(node_types: Iterable[type[Node]]) -> dict[str, str]:
    """The raw secrets node types declared (`Node.secrets`), read once (settings.read_node_secrets refuses a
    declaration of the server's own variables): a node gets only what its own type declared
    (engine/context.py), never the server's configuration."""
    return read_node_secrets({t.type: t.secrets for t in node_types})


def node_secret_names(node_types: Iterable[type[Node]]) -> set[str]:
    """The names `scrub_secret_environment` also removes once `declared_secrets` read them."""
    return {name for node_type in node_types for name in node_type.secrets}


def registries(node_types: list[type[Node]], settings: Settings, hosted: HostedModels, *,
               sources: Sequence[NodeSource] = ()) -> tuple[Registry, Registry]:
    """(the catalogue's registry, the runnable one). The catalogue marks hosted nodes unavailable when the
    operator configured none of their vendors; both mark what needs an operator's model folder, and both
    learn the node types of `sources` (ComfyUI's) at run time."""
    folder = diffusers_availability(settings.diffusers_models_dir)

    def catalogue_reason(node_type: type[Node]) -> str | None:
        return hosted.unavailable_reason(node_type) or folder(node_type)

    return (Registry(node_types, availability_hook=catalogue_reason, sources=sources),
            Registry(node_types, availability_hook=folder, sources=sources))


class NoAccountKeys:
    """A local run has no account: only the operator's vendor keys (from Settings) serve hosted nodes."""

    def stored(self, account_id: str) -> frozenset[str]:
        return frozenset()

    def decrypted(self, account_id: str) -> dict[str, str]:
        return {}


@dataclass(frozen=True, slots=True)
class LocalServices:
    """What `nodeloom run` executes a graph with: no database, no accounts, no queue."""

    registry: Registry
    environment: LocalEnvironment
    http: GuardedClient
    hosted: HostedModels
    sandbox: Sandbox | None = None

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.hosted.aclose()
        if self.sandbox is not None:
            self.sandbox.close()


def build_local(settings: Settings, *, workdir: Path) -> LocalServices:
    """The object graph of a local run (the CLI's `run`): nodes, guard, media (local paths allowed), vendors."""
    hosted = HostedModels(settings, keys=NoAccountKeys())
    node_types = builtin_nodes(PACKS + tuple(settings.node_packs))
    http = GuardedClient(AddressGuard(allow_private=settings.allow_private_urls,
                                      trusted_hosts=settings.configured_base_urls()))
    media = MediaResolver(None, http, max_bytes=settings.max_fetch_bytes, local_paths=True)
    sandbox = make_sandbox(settings)
    services = {**capabilities(settings, media=media, http=http, hosted=hosted, sandbox=sandbox), "workdir": workdir}
    environment = LocalEnvironment(services, secrets=declared_secrets(node_types))
    runnable = Registry(node_types, availability_hook=diffusers_availability(settings.diffusers_models_dir))
    return LocalServices(registry=runnable, environment=environment, http=http, hosted=hosted, sandbox=sandbox)
