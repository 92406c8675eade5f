"""The worker loop (a composition root like api/): claims jobs and hands them to the runner.

In the embedded default these loops run inside `nodeloom serve`; with Celery, `nodeloom worker`
wraps Celery's own worker around the same runner.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from nodeloom.clock import Clock, SystemClock
from nodeloom.media.urlguard import Resolver
from nodeloom.queue.base import Claim, QueueBackend
from nodeloom.services.runner import ExecutionRunner
from nodeloom.settings import Settings

log = logging.getLogger("nodeloom.worker")


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(self, *, queue: QueueBackend, runner: ExecutionRunner, concurrency: int, poll_interval: float,
                 queues: tuple[str, ...] = ("cpu", "io", "gpu"), worker_id: str | None = None,
                 periodic: list[tuple[float, Callable[[], Awaitable[None]]]] | None = None):
        self.queue = queue
        self.runner = runner
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.queues = queues
        self.worker_id = worker_id or make_worker_id()
        self.periodic = periodic if periodic is not None else []  # the caller's list: it may grow after
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Something was enqueued: look now rather than at the next poll (thread-safe)."""
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._wakeup.set)
            except RuntimeError:
                pass

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        periodic = [asyncio.create_task(self._every(interval, fn, stop)) for interval, fn in self.periodic]
        try:
            while not stop.is_set():
                if len(self._tasks) >= self.concurrency:
                    await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                room = self.concurrency - len(self._tasks)
                self._wakeup.clear()  # before claiming: an enqueue during the claim still wakes the next look
                try:
                    # as many as there is room for, claimed and started in one transaction
                    claims = await asyncio.to_thread(self.queue.claim_many, worker_id=self.worker_id,
                                                     queues=self.queues, limit=room, start=self.runner.start_in)
                except Exception:
                    log.exception("claim failed; retrying")
                    claims = []
                for claim, started in claims:
                    self._start(claim, started)
                if len(claims) == room:
                    continue  # there may be more: look again (or wait for a slot) at once
                # fewer than asked for: nothing else is claimable now; an enqueue wakes us, else the next poll
                stop_wait = asyncio.create_task(stop.wait())
                wake_wait = asyncio.create_task(self._wakeup.wait())
                await asyncio.wait({stop_wait, wake_wait}, timeout=self.poll_interval,
                                   return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                wake_wait.cancel()
        finally:
            for task in periodic:
                task.cancel()
            await self.shutdown()

    def _start(self, claim: Claim, started: Any = None) -> None:
        task = asyncio.create_task(self._guarded(claim, started), name=f"execution:{claim.execution_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, claim: Claim, started: Any = None) -> None:
        try:
            await self.runner.run(claim, started)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("execution %s crashed in the runner; its lease will expire and it will be retried",
                          claim.execution_id)

    async def run_periodic(self, stop: asyncio.Event) -> None:
        """Only the periodic duties (a Celery worker's loop: its tasks arrive from the broker)."""
        tasks = [asyncio.create_task(self._every(interval, fn, stop)) for interval, fn in self.periodic]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _every(self, interval: float, fn: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await fn()
            except Exception:
                log.exception("periodic task failed")
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass

    async def shutdown(self) -> None:
        """Graceful: running executions are handed back to the queue (resumed by whoever claims next)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


# --- composition -------------------------------------------------------------------------------------

class Runtime:
    """Everything one process needs, wired from Settings. Built by create_app, the CLI and workers."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, resolver: Resolver | None = None,
                 migrate: bool = False):
        from nodeloom.engine.executor import RunOptions
        from nodeloom.engine.graph import Limits
        from nodeloom.engine.registry import Registry
        from nodeloom.media.urlguard import AddressGuard, GuardedClient
        from nodeloom.nodes import PACKS, builtin_nodes
        from nodeloom.queue.sql import SqlQueue
        from nodeloom.services.accounts import AccountService
        from nodeloom.services.cache import MemoryCache
        from nodeloom.services.environment import make_process_pool
        from nodeloom.services.executions import ExecutionService
        from nodeloom.services.files import FileService
        from nodeloom.services.hub import EventHub
        from nodeloom.services.media import MediaResolver
        from nodeloom.services.runner import ExecutionRunner
        from nodeloom.services.workflows import WorkflowService
        from nodeloom.storage.blobs import make_blob_store
        from nodeloom.storage.db import Database
        from nodeloom.storage.migrate import upgrade

        self.settings = settings
        self.clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secret = settings.ensure_secret()
        url = settings.resolved_database_url
        if migrate:
            upgrade(url)
        self.db = Database(url)
        node_types = builtin_nodes(PACKS + tuple(settings.node_packs))
        self._build_hosted(secret)
        #: the catalogue's registry marks hosted nodes unavailable when the operator has no key for any of
        #: their vendors; validation and the runner use `runnable`, because an account's own key may serve
        #: them (checked per account at execute by `hosted.check_graph`)
        self.registry = Registry(node_types, availability_hook=self.hosted.unavailable_reason)
        self.runnable = Registry(node_types)
        self.limits = Limits(max_nodes=settings.max_nodes, max_params_bytes=settings.max_params_bytes)
        self.blobs = make_blob_store(settings.storage_url, files_dir=settings.files_dir,
                                     endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
        self.files = FileService(self.db, self.blobs, secret_key=secret, clock=self.clock,
                                 ttl_seconds=settings.signed_url_ttl_seconds)
        self.accounts = AccountService(self.db, secret_key=secret, clock=self.clock)
        self._build_platform(settings)
        self.workflows = WorkflowService(self.db, self.runnable, clock=self.clock, limits=self.limits)
        if settings.redis_url:
            from nodeloom.services.hub import RedisEventHub

            self.hub: EventHub = RedisEventHub(settings.redis_url)
        else:
            self.hub = EventHub()
        self.sql_queue = SqlQueue(self.db, clock=self.clock, lease_seconds=settings.lease_seconds,
                                  cap_filter=self.limiter.claim_room)
        self.queue: Any = self.sql_queue
        self.celery: Any = None
        if settings.queue == "celery":
            from nodeloom.queue.celery import CeleryQueue, make_celery

            if not settings.broker_url:
                raise ValueError("NODELOOM_QUEUE=celery needs NODELOOM_BROKER_URL (redis://… or amqp://…)")
            self.celery = make_celery(settings.broker_url)
            self.queue = CeleryQueue(self.sql_queue, self.celery)
        self.executions = ExecutionService(self.db, workflows=self.workflows, queue=self.queue, files=self.files,
                                           hub=self.hub, clock=self.clock)
        self.guard = AddressGuard(allow_private=settings.allow_private_urls, resolver=resolver,
                                  trusted_hosts=self.hosted.settings.configured_base_urls())
        self.http = GuardedClient(self.guard)
        self.media = MediaResolver(self.files, self.http, max_bytes=settings.max_fetch_bytes)
        self.cache = MemoryCache(settings.cache_entries_per_account)
        self.pool = make_process_pool(settings.process_pool_size)
        self.runner = ExecutionRunner(
            db=self.db, registry=self.runnable, queue=self.queue, files=self.files, hub=self.hub, clock=self.clock,
            cache=self.cache, pool=self.pool, services={"media": self.media, "files": self.files, "http": self.http,
                                               "providers": self.hosted},
            secrets=dict(os.environ), limits=self.limits,
            options=RunOptions(concurrency=settings.graph_concurrency, node_timeout_s=settings.node_timeout_seconds,
                               admit=self.billing.admit),
            heartbeat_seconds=settings.heartbeat_seconds, work_root=settings.data_dir.resolve() / "work",
            max_attempts=settings.max_attempts)
        from nodeloom.services.metrics import Metrics

        self.metrics = Metrics(depth=self.queue.depth, statuses=self.executions.counts_by_status)
        self.runner.metrics = self.metrics
        #: background duties every worker runs (sweepers, webhook sender): (interval seconds, coroutine fn)
        self.periodic: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        from nodeloom.services.retention import RetentionSweeper

        self.retention = RetentionSweeper(self.db, self.files, clock=self.clock, days=settings.retention_days)
        self.periodic.append((settings.sweep_interval_seconds, self._sweep_retention))
        if self.celery is not None:
            self.periodic.append((max(0.5, settings.lease_seconds / 3), self._sweep_broker))
        self.worker = Worker(queue=self.queue, runner=self.runner, concurrency=settings.worker_concurrency,
                             poll_interval=settings.poll_interval_seconds, periodic=self.periodic)
        self.executions.on_enqueue.append(self.worker.wake)
        self._wire_platform(settings)
        self._wire_webhooks(settings)
        self.executions.graph_checks.append(self.hosted.check_graph)
        from nodeloom.services.users import UserService  # people who sign in to the dashboard

        self.users = UserService(self.db, accounts=self.accounts, secret_key=secret, clock=self.clock,
                                 session_ttl_seconds=settings.session_ttl_seconds,
                                 login_attempts=settings.login_attempts_per_window,
                                 login_window_seconds=settings.login_window_seconds)
        self.demo_user_hook = self.users.demo_user  # ensure_demo merges its {email, password}
        self.periodic.append((settings.sweep_interval_seconds, self.users.sweep_async))

    @property
    def embedded_workers(self) -> bool:
        """Workers run inside the API process only on the `sql` queue (Celery has its own workers)."""
        return self.settings.embedded_workers and self.settings.queue == "sql"

    async def _sweep_retention(self) -> None:
        await asyncio.to_thread(self.retention.sweep)

    async def _sweep_broker(self) -> None:
        await asyncio.to_thread(self.queue.sweep, stale_after=self.settings.lease_seconds * 2)

    def _build_hosted(self, secret: str) -> None:
        """Hosted model providers (vendor URLs and keys from the environment) and accounts' own keys."""
        from nodeloom.services.hosted import HostedModels, ProviderSettings
        from nodeloom.services.provider_keys import ProviderKeyService

        self.provider_keys = ProviderKeyService(self.db, secret_key=secret, clock=self.clock)
        self.hosted = HostedModels(ProviderSettings(), keys=self.provider_keys)

    def _build_platform(self, settings: Settings) -> None:
        """Plans and rate limits, credits, idempotency keys, usage (API.md "Rate limits", "Credits", …)."""
        from nodeloom.services.billing import BillingService
        from nodeloom.services.idempotency import IdempotencyService
        from nodeloom.services.limits import LimitsService
        from nodeloom.services.usage import UsageService

        self.limiter = LimitsService(self.db, settings=settings, clock=self.clock)
        self.billing = BillingService(self.db, clock=self.clock)
        self.idempotency = IdempotencyService(self.db, clock=self.clock, ttl_seconds=settings.idempotency_hours * 3600)
        self.usage = UsageService(self.db, limiter=self.limiter, clock=self.clock)

    def _wire_platform(self, settings: Settings) -> None:
        """Submissions pass the limits then the credit hold; nodes are charged as they complete, the
        rest of the hold is released when an execution ends (however it ends); keys expire."""
        self.billing.own_keys = self.provider_keys.stored  # runs on an account's own vendor key: byokCredits
        self.executions.gates.extend([self.limiter, self.billing])
        self.executions.terminal_hooks.append(self.billing.on_terminal)
        self.runner.node_hooks.append(self.billing.on_node_completed)
        self.runner.terminal_hooks.append(self.billing.on_terminal)
        self.worker.periodic.append((settings.sweep_interval_seconds, self.idempotency.sweep_async))

    def _wire_webhooks(self, settings: Settings) -> None:
        """Callbacks: outbox rows written by the runner's and cancel's hooks, sent by every worker;
        triggers: the same prepare/submit path as execute."""
        from nodeloom.services.deliveries import DeliverySender, DeliveryService, RetryPolicy
        from nodeloom.services.triggers import TriggerService

        self.deliveries = DeliveryService(self.db, executions=self.executions, guard=self.guard, clock=self.clock)
        self.executions.callback_url_check = self.deliveries.check_callback_url
        self.executions.terminal_hooks.append(self.deliveries.on_terminal)
        self.runner.terminal_hooks.append(self.deliveries.on_terminal)
        self.runner.event_hooks.append(self.deliveries.on_event)
        self.sender = DeliverySender(
            self.db, http=self.http, files=self.files, clock=self.clock, worker_id=self.worker.worker_id,
            policy=RetryPolicy(tuple(settings.webhook_retry_schedule), jitter=settings.webhook_retry_jitter),
            timeout_s=settings.webhook_timeout_seconds, concurrency=settings.webhook_sender_concurrency,
            base_url=settings.public_url or "")
        self.periodic.append((settings.webhook_poll_interval_seconds, self.sender.tick))
        self.triggers = TriggerService(self.db, executions=self.executions, clock=self.clock,
                                       check_callback_url=self.deliveries.check_callback_url)
        self.retention.add("webhook_deliveries", self.deliveries.purge)
        self.retention.add("trigger_receipts", self.triggers.purge, days=self.triggers.receipt_days)

    async def aclose(self) -> None:
        await self.sender.aclose()
        await self.http.aclose()
        await self.hosted.aclose()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.db.dispose()


def run_celery_worker(settings: Settings, *, queues: tuple[str, ...], concurrency: int,
                      loglevel: str = "INFO") -> None:
    """`nodeloom worker` on the Celery queue: a thin wrapper over Celery's own worker.

    Tasks run on Celery's thread pool; each hands its execution to the runner on one asyncio loop that
    also runs this worker's periodic duties (sweepers, webhook sender).
    """
    import threading

    from nodeloom.queue.celery import TASK_NAME

    rt = Runtime(settings)
    if rt.celery is None:
        raise ValueError("`nodeloom worker` with NODELOOM_QUEUE=sql runs the embedded loop; set NODELOOM_QUEUE=celery")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    worker_id = make_worker_id()

    def loop_main() -> None:
        asyncio.set_event_loop(loop)
        idle = Worker(queue=rt.queue, runner=rt.runner, concurrency=1, poll_interval=3600, queues=(),
                      periodic=rt.periodic)
        loop.run_until_complete(idle.run_periodic(stop))

    thread = threading.Thread(target=loop_main, name="nodeloom-loop", daemon=True)
    thread.start()

    @rt.celery.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
    def execute(task: Any, execution_id: str) -> None:
        # claimed and started (marked RUNNING) in one transaction, as the embedded loop does
        claimed = rt.queue.claim_execution(execution_id=execution_id, worker_id=worker_id, start=rt.runner.start_in)
        if claimed is None:
            if rt.queue.is_waiting(execution_id):  # capped by its plan's concurrency: try again shortly
                raise task.retry(countdown=1.0)
            return  # done, cancelled, or a live worker holds it: this message was a duplicate
        claim, started = claimed
        asyncio.run_coroutine_threadsafe(rt.runner.run(claim, started), loop).result()

    try:
        rt.celery.worker_main(["worker", "-Q", ",".join(queues), "-c", str(concurrency), "--pool", "threads",
                               "-n", f"nodeloom-{worker_id.split(':')[-1]}@%h", "--loglevel", loglevel,
                               "--without-gossip", "--without-mingle"])
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
