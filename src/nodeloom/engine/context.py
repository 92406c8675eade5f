"""The concrete Context handed to a running node; the environment behind it is injected."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from nodeloom.engine.errors import NodeCancelled, NodeError

T = TypeVar("T")


class Environment(Protocol):
    """What the composition root provides to nodes: pools, services, secrets, durable node memory."""

    async def run_cpu(self, fn: Callable[..., T], /, *args: Any) -> T: ...

    async def run_thread(self, fn: Callable[..., T], /, *args: Any) -> T: ...

    def service(self, name: str) -> Any: ...

    def secret(self, name: str) -> str | None:
        """Any secret the environment holds; a node reaches only those its type declares (NodeContext)."""
        ...

    async def remember(self, node_id: str, key: str, value: Any) -> None: ...

    def recalled(self, node_id: str, key: str) -> Any: ...


class LocalEnvironment:
    """An environment for running graphs in-process (CLI `run`, tests): threads, no persistence."""

    def __init__(self, services: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None):
        self._services = dict(services or {})
        self._secrets = dict(secrets or {})
        self._memory: dict[tuple[str, str], Any] = {}

    async def run_cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def run_thread(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def service(self, name: str) -> Any:
        if name not in self._services:
            raise LookupError(f"service '{name}' is not configured")
        return self._services[name]

    def secret(self, name: str) -> str | None:
        return self._secrets.get(name)

    async def remember(self, node_id: str, key: str, value: Any) -> None:
        self._memory[(node_id, key)] = value

    def recalled(self, node_id: str, key: str) -> Any:
        return self._memory.get((node_id, key))


class NodeContext:
    """The Context of one node run. `secrets` are the names the node's type declares (`Node.secrets`):
    the environment may hold more, and a node must not read what it did not declare."""

    def __init__(
        self,
        *,
        execution_id: str,
        account_id: str,
        node_id: str,
        inputs: Mapping[str, Any],
        env: Environment,
        emit_progress: Callable[[str, float, str | None], Awaitable[None]],
        cancel_event: asyncio.Event,
        element: int | None = None,
        node_type: str = "",
        secrets: tuple[str, ...] = (),
    ):
        self.execution_id = execution_id
        self.account_id = account_id
        self.node_id = node_id
        self.inputs = inputs
        self.env = env
        self.element = element
        self.node_type = node_type
        self._emit = emit_progress
        self._cancel = cancel_event
        self._secrets = secrets

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"nodeloom.node.{self.node_id}")

    async def progress(self, fraction: float, message: str | None = None) -> None:
        if self._cancel.is_set():
            raise NodeCancelled()
        await self._emit(self.node_id, max(0.0, min(1.0, float(fraction))), message)

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    async def run_cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await self.env.run_cpu(fn, *args)

    async def run_thread(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await self.env.run_thread(fn, *args)

    def service(self, name: str) -> Any:
        return self.env.service(name)

    def secret(self, name: str) -> str | None:
        if name not in self._secrets:
            of = f"node type '{self.node_type}'" if self.node_type else "this node's type"
            raise NodeError(f"{of} reads the secret '{name}' without declaring it: the pack's author must add "
                            f"'{name}' to the node class's `secrets` (e.g. secrets = (\"{name}\",))",
                            code="secret_not_declared", node_id=self.node_id)
        return self.env.secret(name)

    def _memory_key(self, key: str) -> str:
        return key if self.element is None else f"{key}#{self.element}"

    async def remember(self, key: str, value: Any) -> None:
        await self.env.remember(self.node_id, self._memory_key(key), value)

    def recalled(self, key: str) -> Any:
        return self.env.recalled(self.node_id, self._memory_key(key))
