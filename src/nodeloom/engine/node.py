"""The Node base class and the Context a running node receives.

A node type declares itself once with class attributes; `Node.spec()` turns that declaration
into the catalogue entry, and the validator and executor read the same attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from nodeloom.engine.schema import Param, Port

T = TypeVar("T")


class Context(Protocol):
    """What a running node may use. The engine defines it; services implement it."""

    execution_id: str
    node_id: str
    account_id: str
    inputs: Mapping[str, Any]

    @property
    def logger(self) -> logging.Logger: ...

    async def progress(self, fraction: float, message: str | None = None) -> None: ...

    def cancelled(self) -> bool: ...

    async def run_cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run a CPU-heavy pure function in the process pool so the API stays responsive."""
        ...

    async def run_thread(self, fn: Callable[..., T], /, *args: Any) -> T: ...

    def service(self, name: str) -> Any:
        """Named services wired by the composition root (media loader, blob store, providers …)."""
        ...

    def secret(self, name: str) -> str | None:
        """A raw secret the node's type declares in `Node.secrets` (None when the server has no value for it).
        Reading a name the type does not declare fails the node with code `secret_not_declared`."""
        ...

    async def remember(self, key: str, value: Any) -> None:
        """Persist a small JSON value for this node (e.g. a vendor request id) for resumption."""
        ...

    def recalled(self, key: str) -> Any: ...


class Node:
    """Base class of every node type. Subclasses set the class attributes and implement `run`."""

    type: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    params: ClassVar[tuple[Param, ...]] = ()
    credits: ClassVar[float] = 0
    credits_per: ClassVar[str | None] = None  # "image", "megapixel", "second", ... when price depends on params
    byok_credits: ClassVar[float] = 0
    resources: ClassVar[str] = "cpu"
    deterministic: ClassVar[bool] = True
    version: ClassVar[int] = 1
    timeout_s: ClassVar[float | None] = None
    #: input nodes read `ctx.inputs[params.name]`; output nodes publish `value` under `params.name`
    role: ClassVar[str] = "node"  # "input" | "output" | "node"
    provider: ClassVar[str | None] = None  # vendor needed by hosted model nodes
    #: names of the raw secrets (e.g. an API key in the server's environment) the node reads with `ctx.secret`.
    #: A node may read only these: the server hands nodes no other secret, so declare exactly what the node
    #: truly needs. Names only, never values. Hosted model nodes need none: the `providers` service holds keys.
    secrets: ClassVar[tuple[str, ...]] = ()
    #: the kind of remote server the node runs on ("comfyui"), or None to run in the worker: nodes of a kind run
    #: in segments, one job per segment, through the runner registered for the kind (engine/segments.py)
    segment: ClassVar[str | None] = None

    @classmethod
    def category(cls) -> str:
        return cls.type.split(".", 1)[0]

    @classmethod
    def availability(cls) -> str | None:
        """None when the node can run here; otherwise a human reason (how to install what is missing)."""
        return None

    @classmethod
    def is_deterministic(cls, params: Mapping[str, Any]) -> bool:
        """Whether this use of the node (with these params) may be served from the cache."""
        return cls.deterministic

    @classmethod
    def price_units(cls, params: Mapping[str, Any]) -> float:
        """How many `credits_per` units one run consumes, computed from params (1 for fixed prices)."""
        return 1.0

    @classmethod
    def price(cls, params: Mapping[str, Any]) -> float:
        return float(cls.credits) * (cls.price_units(params) if cls.credits_per else 1.0)

    @classmethod
    def input_port(cls, name: str) -> Port | None:
        return next((p for p in cls.inputs if p.name == name), None)

    @classmethod
    def output_port(cls, name: str) -> Port | None:
        return next((p for p in cls.outputs if p.name == name), None)

    @classmethod
    def param(cls, name: str) -> Param | None:
        return next((p for p in cls.params if p.name == name), None)

    @classmethod
    def spec(cls, *, unavailable_reason: str | None = None) -> dict[str, Any]:
        reason = unavailable_reason
        credits: Any = cls.credits if not cls.credits_per else {"per": cls.credits_per, "amount": cls.credits}
        return {
            "type": cls.type,
            "category": cls.category(),
            "displayName": cls.display_name or cls.type,
            "description": cls.description,
            "version": cls.version,
            "inputs": [p.public() for p in cls.inputs],
            "outputs": [p.public() for p in cls.outputs],
            "params": [p.public() for p in cls.params],
            "credits": credits,
            "byokCredits": cls.byok_credits,
            "resources": cls.resources,
            "deterministic": cls.deterministic,
            "provider": cls.provider,
            "available": reason is None,
            "unavailableReason": reason,
        }

    async def run(self, ctx: Context, /, *args: Any, **kwargs: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


NodeRun = Callable[..., Awaitable[dict[str, Any]]]
