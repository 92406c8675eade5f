"""What the API answers, as typed values. Each keeps the decoded JSON it came from in ``raw``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
TERMINAL_EVENTS = frozenset({"execution.completed", "execution.failed", "execution.cancelled"})


@dataclass(frozen=True)
class Media:
    """A media output (image, video, audio, file): a signed, expiring ``url`` usable without a key.
    Pass it to ``download(output, path)``."""

    url: str
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Media:
        return cls(url=str(value["url"]), content_type=value.get("contentType"), width=value.get("width"),
                   height=value.get("height"), duration_s=value.get("durationS"), raw=dict(value))


def typed_value(value: Any) -> Any:
    """An output value with media objects as `Media` (lists and dicts walked)."""
    if isinstance(value, dict):
        if isinstance(value.get("url"), str) and "contentType" in value:
            return Media.from_json(value)
        return {k: typed_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed_value(v) for v in value]
    return value


@dataclass(frozen=True)
class ExecutionError:
    """Why an execution (or one node) failed."""

    code: str
    message: str
    node_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> ExecutionError | None:
        if not isinstance(value, dict):
            return None
        return cls(code=str(value.get("code", "error")), message=str(value.get("message", "")),
                   node_id=value.get("nodeId"), raw=value)


@dataclass(frozen=True)
class NodeState:
    """One node of an execution, as the poll body's ``nodes`` has it."""

    status: str
    started_at: str | None = None
    completed_at: str | None = None
    cached: bool = False
    credits: float = 0.0
    outputs: dict[str, Any] | None = None
    error: ExecutionError | None = None
    skipped: bool = False

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> NodeState:
        outputs = value.get("outputs")
        return cls(status=str(value.get("status", "")), started_at=value.get("startedAt"),
                   completed_at=value.get("completedAt"), cached=bool(value.get("cached")),
                   credits=float(value.get("credits") or 0),
                   outputs=typed_value(outputs) if isinstance(outputs, dict) else None,
                   error=ExecutionError.from_json(value.get("error")), skipped=bool(value.get("skipped")))


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: 202 with the new execution's id."""

    execution_id: str
    status: str
    poll_url: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class Execution:
    """An execution as ``GET …/poll`` describes it; ``outputs`` maps each output's name to its value
    (media values as `Media`)."""

    execution_id: str
    status: str
    workflow_id: str | None = None
    version: int | str | None = None
    progress: float = 0.0
    queue_position: int | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    credits_used: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    error: ExecutionError | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Execution:
        return cls(execution_id=str(body["executionId"]), status=str(body["status"]),
                   workflow_id=body.get("workflowId"), version=body.get("version"),
                   progress=float(body.get("progress") or 0), queue_position=body.get("queuePosition"),
                   created_at=body.get("createdAt"), started_at=body.get("startedAt"),
                   completed_at=body.get("completedAt"), credits_used=float(body.get("creditsUsed") or 0),
                   outputs=typed_value(body.get("outputs") or {}),
                   nodes={k: NodeState.from_json(v) for k, v in (body.get("nodes") or {}).items()
                          if isinstance(v, dict)},
                   error=ExecutionError.from_json(body.get("error")), raw=dict(body))

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def ok(self) -> bool:
        return self.status == "COMPLETED"


@dataclass(frozen=True)
class Event:
    """One server-sent event: its ``id`` (a sequence number, what Last-Event-ID resumes after), its type
    in ``event`` (``node.completed`` …) and its JSON ``data``."""

    id: int | None
    event: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.event

    @property
    def node_id(self) -> str | None:
        value = self.data.get("nodeId")
        return str(value) if value is not None else None

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL_EVENTS


@dataclass(frozen=True)
class Progress:
    """What ``on_progress`` receives, once per event (or per change seen while polling).

    ``event`` is the event type (``execution.started``, ``node.started``, ``node.progress``,
    ``node.completed``, ``node.failed``, ``execution.completed|failed|cancelled``); ``node_id`` names the
    node for ``node.*`` events; ``nodes`` is every node's status known so far; ``fraction`` is the share of
    known nodes that have ended (0..1); ``value``/``max`` carry a node's own progress when it reports one (a
    fraction of 1, or ComfyUI's step counts), and ``data`` the event's JSON (``message`` among it, if any).
    """

    execution_id: str
    event: str
    node_id: str | None
    nodes: dict[str, str]
    fraction: float
    value: float | None = None
    max: float | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class UploadedFile:
    """An uploaded file: pass ``file_id`` as an image/video/audio/file input."""

    file_id: str
    url: str
    content_type: str | None = None
    size: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> UploadedFile:
        return cls(file_id=str(body["fileId"]), url=str(body.get("url", "")), content_type=body.get("contentType"),
                   size=body.get("size"), raw=dict(body))


@dataclass(frozen=True)
class BatchResult:
    """One item of a batch, yielded as soon as it finished: its ``index`` in the inputs given, the
    ``inputs``, and either the final ``execution`` or the ``error`` that kept it from running."""

    index: int
    inputs: dict[str, Any]
    execution: Execution | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.execution is not None and self.execution.ok

    @property
    def outputs(self) -> dict[str, Any]:
        return self.execution.outputs if self.execution is not None else {}
