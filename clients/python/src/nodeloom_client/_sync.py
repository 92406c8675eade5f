"""`Nodeloom`: the synchronous client. It drives one `AsyncNodeloom` on a private event loop in a background
thread, so there is one copy of the logic and it works from any thread — also one where an event loop is
already running (a notebook, an async web app calling sync code). ``on_progress`` callbacks run on that
background thread."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from nodeloom_client._async import AsyncNodeloom, Output, ProgressCallback
from nodeloom_client._types import BatchResult, Event, Execution, Submitted, UploadedFile

T = TypeVar("T")
_END = object()


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="nodeloom-client", daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:  # Ctrl-C in the caller: stop the work on the loop too
            future.cancel()
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        async def step() -> Any:
            try:
                return await agen.__anext__()
            except StopAsyncIteration:
                return _END

        try:
            while True:
                item = self.call(step())
                if item is _END:
                    return
                yield cast(T, item)
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and not self.loop.is_closed():
                self.call(aclose())

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Nodeloom:
    """The synchronous client: the same operations as `AsyncNodeloom`, without ``await``.

        with Nodeloom(api_key="sk-...", base_url="http://127.0.0.1:8000") as nl:
            result = nl.run("wf_...", {"prompt": "a red fox"}, on_progress=lambda p: print(p.event, p.node_id))
            nl.download(result.outputs["image"], "fox.png")
    """

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None, **options: Any):
        self._runner = _LoopThread()
        try:
            self._async = AsyncNodeloom(api_key, base_url=base_url, **options)
        except BaseException:
            self._runner.close()
            raise
        self.base_url = self._async.base_url

    @property
    def aio(self) -> AsyncNodeloom:
        """The async client underneath (its coroutines belong to this client's private loop)."""
        return self._async

    def __enter__(self) -> Nodeloom:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._runner.loop.is_closed():
            self._runner.call(self._async.aclose())
        self._runner.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._runner.call(self._async.request(method, path, **kwargs))

    # workflows
    def workflows(self, q: str | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        return self._runner.call(self._async.workflows(q, limit=limit))

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        return self._runner.call(self._async.get_workflow(workflow_id))

    def create_workflow(self, name: str, graph: Mapping[str, Any], description: str = "") -> dict[str, Any]:
        return self._runner.call(self._async.create_workflow(name, graph, description))

    def update_workflow(self, workflow_id: str, **fields: Any) -> dict[str, Any]:
        return self._runner.call(self._async.update_workflow(workflow_id, **fields))

    def delete_workflow(self, workflow_id: str) -> None:
        self._runner.call(self._async.delete_workflow(workflow_id))

    def publish(self, workflow_id: str) -> dict[str, Any]:
        return self._runner.call(self._async.publish(workflow_id))

    def validate(self, graph: Mapping[str, Any]) -> dict[str, Any]:
        return self._runner.call(self._async.validate(graph))

    def estimate(self, workflow_id: str, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._runner.call(self._async.estimate(workflow_id, inputs))

    def import_comfyui(self, source: str | os.PathLike[str] | Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._runner.call(self._async.import_comfyui(source, **kwargs))

    # executions
    def execute(self, workflow_id: str, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> Submitted:
        return self._runner.call(self._async.execute(workflow_id, inputs, **kwargs))

    def poll(self, execution_id: str) -> Execution:
        return self._runner.call(self._async.poll(execution_id))

    def wait(self, execution_id: str, **kwargs: Any) -> Execution:
        return self._runner.call(self._async.wait(execution_id, **kwargs))

    def run(self, workflow_id: str, inputs: Mapping[str, Any] | None = None, *,
            on_progress: ProgressCallback | None = None, **kwargs: Any) -> Execution:
        return self._runner.call(self._async.run(workflow_id, inputs, on_progress=on_progress, **kwargs))

    def follow(self, execution_id: str, **kwargs: Any) -> Execution:
        return self._runner.call(self._async.follow(execution_id, **kwargs))

    def events(self, execution_id: str, **kwargs: Any) -> Iterator[Event]:
        return self._runner.iterate(self._async.events(execution_id, **kwargs))

    def cancel(self, execution_id: str) -> dict[str, Any]:
        return self._runner.call(self._async.cancel(execution_id))

    def executions(self, **kwargs: Any) -> list[dict[str, Any]]:
        return self._runner.call(self._async.executions(**kwargs))

    def delete_execution(self, execution_id: str) -> None:
        self._runner.call(self._async.delete_execution(execution_id))

    def batch(self, workflow_id: str, inputs: Iterable[Mapping[str, Any]], **kwargs: Any) -> Iterator[BatchResult]:
        """Yields each `BatchResult` as it finishes (see `AsyncNodeloom.batch`)."""
        return self._runner.iterate(self._async.batch(workflow_id, inputs, **kwargs))

    def concurrency_cap(self) -> int | None:
        return self._runner.call(self._async.concurrency_cap())

    # files
    def upload(self, path: str | os.PathLike[str], content_type: str | None = None) -> UploadedFile:
        return self._runner.call(self._async.upload(path, content_type))

    def download(self, output: Output, path: str | os.PathLike[str]) -> Path:
        return self._runner.call(self._async.download(output, path))

    # account
    def usage(self) -> dict[str, Any]:
        return self._runner.call(self._async.usage())

    def account(self) -> dict[str, Any]:
        return self._runner.call(self._async.account())

    def nodes(self) -> list[dict[str, Any]]:
        return self._runner.call(self._async.nodes())
