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

from nodeloom.clock import Clock, SystemClock
from nodeloom.media.urlguard import Resolver
from nodeloom.queue.base import Claim, QueueBackend
from nodeloom.settings import Settings
from nodeloom.services.runner import ExecutionRunner

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
        self.periodic = periodic or []
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
                try:
                    claim = await asyncio.to_thread(self.queue.claim, worker_id=self.worker_id, queues=self.queues)
                except Exception:
                    log.exception("claim failed; retrying")
                    claim = None
                if claim is not None:
                    self._start(claim)
                    continue
                self._wakeup.clear()
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

    def _start(self, claim: Claim) -> None:
        task = asyncio.create_task(self._guarded(claim), name=f"execution:{claim.execution_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, claim: Claim) -> None:
        try:
            await self.runner.run(claim)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("execution %s crashed in the runner; its lease will expire and it will be retried",
                          claim.execution_id)

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
        from nodeloom.storage.blobs import LocalBlobStore
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
        self.registry = Registry(builtin_nodes(PACKS + tuple(settings.node_packs)))
        self.limits = Limits(max_nodes=settings.max_nodes, max_params_bytes=settings.max_params_bytes)
        self.blobs = LocalBlobStore(settings.files_dir)
        self.files = FileService(self.db, self.blobs, secret_key=secret, clock=self.clock,
                                 ttl_seconds=settings.signed_url_ttl_seconds)
        self.accounts = AccountService(self.db, secret_key=secret, clock=self.clock)
        self.workflows = WorkflowService(self.db, self.registry, clock=self.clock, limits=self.limits)
        self.hub = EventHub()
        self.queue = SqlQueue(self.db, clock=self.clock, lease_seconds=settings.lease_seconds)
        self.executions = ExecutionService(self.db, workflows=self.workflows, queue=self.queue, files=self.files,
                                           hub=self.hub, clock=self.clock)
        self.guard = AddressGuard(allow_private=settings.allow_private_urls, resolver=resolver)
        self.http = GuardedClient(self.guard)
        self.media = MediaResolver(self.files, self.http, max_bytes=settings.max_fetch_bytes)
        self.cache = MemoryCache(settings.cache_entries_per_account)
        self.pool = make_process_pool(settings.process_pool_size)
        self.runner = ExecutionRunner(
            db=self.db, registry=self.registry, queue=self.queue, files=self.files, hub=self.hub, clock=self.clock,
            cache=self.cache, pool=self.pool, services={"media": self.media, "files": self.files, "http": self.http},
            secrets=dict(os.environ), limits=self.limits,
            options=RunOptions(concurrency=settings.graph_concurrency, node_timeout_s=settings.node_timeout_seconds),
            heartbeat_seconds=settings.heartbeat_seconds, work_root=settings.data_dir.resolve() / "work",
            max_attempts=settings.max_attempts)
        self.worker = Worker(queue=self.queue, runner=self.runner, concurrency=settings.worker_concurrency,
                             poll_interval=settings.poll_interval_seconds)
        self.executions.on_enqueue.append(self.worker.wake)
        self._wire_webhooks(settings)

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
        self.worker.periodic.append((settings.webhook_poll_interval_seconds, self.sender.tick))
        self.triggers = TriggerService(self.db, executions=self.executions, clock=self.clock,
                                       check_callback_url=self.deliveries.check_callback_url)

    async def aclose(self) -> None:
        await self.sender.aclose()
        await self.http.aclose()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.db.dispose()
