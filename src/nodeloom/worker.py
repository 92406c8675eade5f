"""The worker loop: claims jobs from a queue backend and hands them to the runner; runs the periodic duties.

In the embedded default these loops run inside `nodeloom serve`; with Celery, `nodeloom worker`
wraps Celery's own worker around the same runner (`run_celery_worker`). What they run with is built
by the composition root (`compose.py`); this module only loops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from nodeloom.queue.base import Claim, QueueBackend
from nodeloom.services.environment import SleepingSlots
from nodeloom.services.hub import WorkSignal
from nodeloom.services.runner import ExecutionRunner

log = logging.getLogger("nodeloom.worker")


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def run_guarded(runner: ExecutionRunner, claim: Claim, started: Any = None) -> None:
    """Run a claimed execution; a bug in the runner is logged, and the lease left to expire so it is retried."""
    try:
        await runner.run(claim, started)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("execution %s crashed in the runner; its lease will expire and it will be retried",
                      claim.execution_id)


@dataclass(frozen=True, slots=True)
class Duty:
    """A periodic background duty (a sweeper, the webhook sender): `run()` every `interval` seconds."""

    name: str
    interval: float
    run: Callable[[], Awaitable[Any]]


def _exit_now(stalled: float) -> None:  # pragma: no cover - ends the process
    log.critical("the event loop stalled for %.1f s while holding leases: exiting, so that no frozen run outlives "
                 "its lease (the next attempt starts elsewhere, or after a restart)", stalled)
    logging.shutdown()
    os._exit(75)


class LoopWatchdog:
    """A thread that ends the process when the event loop stops turning for `stall_s` while `armed()` (the worker
    holds leases). A node that freezes the loop (a blocking call, a C extension spinning) stops the heartbeats
    too; the lease then runs out and another attempt starts. Exiting first means the frozen run can never go on
    beside that attempt — SIGTERM cannot stop it, since signal handlers run on the frozen loop."""

    def __init__(self, stall_s: float, *, armed: Callable[[], bool],
                 on_stall: Callable[[float], None] = _exit_now):
        self.stall_s = stall_s
        self.armed = armed
        self.on_stall = on_stall
        self.tick = max(0.01, min(0.25, stall_s / 10))
        self._last = time.monotonic()
        self._stopped = threading.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """The loop's side: note every tick that the loop still turns; the thread compares."""
        self._last = time.monotonic()
        thread = threading.Thread(target=self._watch, name="nodeloom-watchdog", daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                self._last = time.monotonic()
                await asyncio.sleep(self.tick)
        finally:
            self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(self.tick):
            stalled = time.monotonic() - self._last
            if stalled > self.stall_s and self.armed():
                self.on_stall(stalled)
                return


class Worker:
    def __init__(self, *, queue: QueueBackend, runner: ExecutionRunner, concurrency: int, poll_interval: float,
                 queues: tuple[str, ...] = ("cpu", "io", "gpu"), worker_id: str | None = None,
                 signal: WorkSignal | None = None, duties: Sequence[Duty] = (),
                 sleeping: SleepingSlots | None = None, sleeping_slots: int = 0, watchdog_s: float = 0.0):
        self.queue = queue
        self.runner = runner
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.queues = queues
        self.worker_id = worker_id or make_worker_id()
        self.duties = tuple(duties)
        self._signal = signal or WorkSignal()
        self._tasks: set[asyncio.Task[None]] = set()
        #: executions whose nodes only sleep lend their slot back (at most `sleeping_slots` of them)
        self.sleeping = sleeping
        self.sleeping_slots = sleeping_slots
        self.watchdog = LoopWatchdog(watchdog_s, armed=lambda: bool(self._tasks)) if watchdog_s > 0 else None

    def capacity(self) -> int:
        """Executions this worker runs at once: its concurrency, plus those parked in a sleep."""
        lent = min(self.sleeping.count, self.sleeping_slots) if self.sleeping is not None else 0
        return self.concurrency + lent

    def wake(self) -> None:
        """Something was enqueued: look now rather than at the next poll (thread-safe)."""
        self._signal.notify()

    async def run(self, stop: asyncio.Event) -> None:
        wakeup = self._signal.bind()
        slept = self.sleeping.bind() if self.sleeping is not None and self.sleeping_slots > 0 else None
        periodic = [asyncio.create_task(self._every(duty, stop)) for duty in self.duties]
        if self.watchdog is not None:
            periodic.append(asyncio.create_task(self.watchdog.run(stop)))
        try:
            while not stop.is_set():
                if len(self._tasks) >= self.capacity():
                    # full: wait for a run to end, or for one to fall asleep (it lends its slot back)
                    waits: set[asyncio.Future[Any]] = set(self._tasks)
                    slept_wait = asyncio.ensure_future(slept.wait()) if slept is not None else None
                    if slept_wait is not None:
                        waits.add(slept_wait)
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    if slept_wait is not None:
                        slept_wait.cancel()
                    if slept is not None:
                        slept.clear()
                    continue
                room = self.capacity() - len(self._tasks)
                wakeup.clear()  # before claiming: an enqueue during the claim still wakes the next look
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
                wake_wait = asyncio.create_task(wakeup.wait())
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
        await run_guarded(self.runner, claim, started)

    async def run_periodic(self, stop: asyncio.Event) -> None:
        """Only the periodic duties (a Celery worker's loop: its tasks arrive from the broker)."""
        tasks = [asyncio.create_task(self._every(duty, stop)) for duty in self.duties]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _every(self, duty: Duty, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await duty.run()
            except Exception:
                log.exception("periodic duty %s failed", duty.name)
            try:
                await asyncio.wait_for(stop.wait(), duty.interval)
            except TimeoutError:
                pass

    async def shutdown(self) -> None:
        """Graceful: running executions are handed back to the queue (resumed by whoever claims next)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class CeleryRuns:
    """The executions one Celery worker process runs, all on its one event loop (beside its periodic duties).

    Each Celery task is a pool thread — a slot: it claims, then waits here until its execution ends. One whose
    node falls asleep (`util.delay`, `SleepingSlots`) lends that slot back, as the embedded loop does: its task
    returns while the execution sleeps on, so Celery hands the thread the next message (at most `sleeping_slots`
    executions are lent at once). A task waits for room before claiming, so an execution that woke up takes its
    slot back before anything new is claimed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, runner: ExecutionRunner, *, concurrency: int,
                 sleeping: SleepingSlots | None = None, sleeping_slots: int = 0, poll_s: float = 0.1):
        self.loop = loop
        self.runner = runner
        self.concurrency = concurrency
        self.sleeping = sleeping if sleeping_slots > 0 else None
        self.sleeping_slots = sleeping_slots
        self.poll_s = poll_s
        self._cond = threading.Condition()
        self._running: dict[Future[None], str] = {}  # execution futures on the loop → their execution ids
        self._lent: set[Future[None]] = set()  # those whose task returned while they sleep
        self._tasks: set[asyncio.Task[Any]] = set()  # the same runs, as the loop's tasks (for shutdown)

    def armed(self) -> bool:
        """Executions run here (this worker holds leases): the loop watchdog's condition."""
        with self._cond:
            return bool(self._running)

    def busy(self) -> int:
        """Slots held: executions running here, less those asleep (at most `sleeping_slots` of them)."""
        with self._cond:
            running = list(self._running.values())
        if self.sleeping is None:
            return len(running)
        asleep = sum(1 for eid in running if self.sleeping.is_asleep(eid))
        return len(running) - min(asleep, self.sleeping_slots)

    def wait_for_room(self, timeout: float) -> bool:
        """Before claiming: True once fewer than `concurrency` slots are held (always, unless sleeps lend slots:
        without lending, Celery's threads are the slots)."""
        if self.sleeping is None:
            return True
        deadline = time.monotonic() + timeout
        while self.busy() >= self.concurrency:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._cond:
                self._cond.wait(min(self.poll_s, left))
        return True

    def run(self, claim: Claim, started: Any = None) -> None:
        """Run the claimed execution on the loop; return when it ends, or once it sleeps and may lend its slot."""
        future = asyncio.run_coroutine_threadsafe(self._guarded(claim, started), self.loop)
        with self._cond:
            self._running[future] = claim.execution_id
        future.add_done_callback(self._ended)
        if self.sleeping is None:
            future.result()
            return
        while True:
            try:
                future.result(timeout=self.poll_s)
                return
            except TimeoutError:
                pass
            if self.sleeping.is_asleep(claim.execution_id) and self._lend(future):
                log.debug("execution %s sleeps: its Celery slot is lent back", claim.execution_id)
                return

    def _lend(self, future: Future[None]) -> bool:
        with self._cond:
            if future.done() or len(self._lent) >= self.sleeping_slots:
                return False
            self._lent.add(future)
            return True

    def _ended(self, future: Future[None]) -> None:
        with self._cond:
            self._running.pop(future, None)
            self._lent.discard(future)
            self._cond.notify_all()

    async def _guarded(self, claim: Claim, started: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await run_guarded(self.runner, claim, started)
        finally:
            if task is not None:
                self._tasks.discard(task)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Hand back what still runs here (lent executions: Celery's warm shutdown already waited for its tasks)."""

        async def cancel_all() -> None:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()  # the runner hands the job back to the queue
            await asyncio.gather(*tasks, return_exceptions=True)

        if not self.loop.is_running():
            return
        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout=timeout)
        except Exception:
            log.exception("handing back the executions still running failed")


def message_queues(delivery_info: Any, queues: tuple[str, ...]) -> tuple[str, ...]:
    """The queue a Celery message came from (its routing key), where it is one this worker serves; else all."""
    routing_key = delivery_info.get("routing_key") if isinstance(delivery_info, dict) else None
    return (routing_key,) if routing_key in queues else queues


def run_celery_worker(*, celery: Any, queue: QueueBackend, runner: ExecutionRunner, duties: Sequence[Duty],
                      queues: tuple[str, ...], concurrency: int, loglevel: str = "INFO",
                      sleeping: SleepingSlots | None = None, sleeping_slots: int = 0, watchdog_s: float = 0.0) -> None:
    """`nodeloom worker` on the Celery queue: a thin wrapper over Celery's own worker.

    Tasks run on Celery's thread pool; each hands its execution to the runner on one asyncio loop that
    also runs this worker's periodic duties (sweepers, webhook sender) and, with `watchdog_s`, the loop
    watchdog (armed while executions run here). A message means "work is ready in this queue": it takes the
    turn the fair order gives (`QueueBackend.claim_many`, as the embedded loop claims), which may be another
    account's job than the one it names; the named one, still waiting, is then sent again. So one account's
    backlog in the broker never starves another account's run.
    """
    from nodeloom.queue.celery import TASK_NAME  # Celery is optional: imported when used

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    worker_id = make_worker_id()
    runs = CeleryRuns(loop, runner, concurrency=concurrency, sleeping=sleeping, sleeping_slots=sleeping_slots)
    watchdog = LoopWatchdog(watchdog_s, armed=runs.armed) if watchdog_s > 0 else None

    def loop_main() -> None:
        asyncio.set_event_loop(loop)
        idle = Worker(queue=queue, runner=runner, concurrency=1, poll_interval=3600, queues=(), duties=duties)

        async def main() -> None:
            await asyncio.gather(idle.run_periodic(stop), *([watchdog.run(stop)] if watchdog is not None else []))

        loop.run_until_complete(main())

    thread = threading.Thread(target=loop_main, name="nodeloom-loop", daemon=True)
    thread.start()

    @celery.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
    def execute(task: Any, execution_id: str) -> None:
        if not runs.wait_for_room(timeout=5.0):  # executions that woke from a sleep took the slots back
            raise task.retry(countdown=1.0)
        # claimed and started (marked RUNNING) in one transaction, as the embedded loop does, in fair order
        claimed = queue.claim_many(worker_id=worker_id, queues=message_queues(task.request.delivery_info, queues),
                                   limit=1, start=runner.start_in)
        if not claimed:
            if queue.is_waiting(execution_id):  # capped by its plan's concurrency: try again shortly
                raise task.retry(countdown=1.0)
            return  # done, cancelled, or a live worker holds it: this message was a duplicate
        claim, started = claimed[0]
        if claim.execution_id != execution_id and queue.is_waiting(execution_id):
            try:  # this message served another turn: send it again for its own job
                task.retry(countdown=0, throw=False)
            except Exception:  # the broker refused: the sweeper re-publishes the job once it is stale
                log.exception("sending the message for %s again failed", execution_id)
        runs.run(claim, started)

    try:
        celery.worker_main(["worker", "-Q", ",".join(queues), "-c", str(concurrency), "--pool", "threads",
                            "-n", f"nodeloom-{worker_id.split(':')[-1]}@%h", "--loglevel", loglevel,
                            "--without-gossip", "--without-mingle"])
    finally:
        runs.shutdown()
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
