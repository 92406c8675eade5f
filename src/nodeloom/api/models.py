"""Response models: what each route answers, as Pydantic models for `/openapi.json` (docs/api.md "OpenAPI").

The services build the answers as plain dicts in the API.md shapes, and the routes send those dicts unchanged:
these models document them (and let the tests validate live answers against the published document) without
re-serialising anything. Every object allows extra fields, because the server may add fields to any answer
(it never renames or drops one); the error envelope alone is closed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ExecutionStatus = Literal["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
Timestamp = str  # ISO 8601 UTC, e.g. 2026-11-29T12:00:00.123Z


class Answer(BaseModel):
    """An object the server answers with: fields may be added, never renamed or dropped."""

    model_config = ConfigDict(extra="allow")


# errors ------------------------------------------------------------------------------------------------
class ErrorDetail(Answer):
    """One problem with the request: where (`nodes[2].inputs.width`, `inputs.prompt`, `body`) and what."""

    path: str
    message: str


class PriceLine(Answer):
    """One line of an estimate, a hold or a 402's breakdown: a node (or a ComfyUI segment) and its credits."""

    nodeId: str
    nodeType: str
    credits: float
    perElement: bool | None = Field(default=None, description="present (true) where fan-out prices each element")
    nodes: list[str] | None = Field(default=None, description="a ComfyUI segment's node ids")


class ErrorBody(Answer):
    code: str = Field(description="stable, snake_case, meant for programs (see each operation's error responses)")
    message: str = Field(description="a sentence for people")
    details: list[ErrorDetail] | None = Field(default=None, description="422: what is wrong, and where")
    retryAfter: int | None = Field(default=None, description="429: seconds to wait (also the Retry-After header)")
    required: float | None = Field(default=None, description="402 insufficient_credits: what the run needs")
    balance: float | None = Field(default=None, description="402 insufficient_credits: the account's balance")
    breakdown: list[PriceLine] | None = Field(default=None, description="402 insufficient_credits: per node")


class ErrorEnvelope(BaseModel):
    """Every 4xx and 5xx answer: `{"error": {"code", "message", "details"?, ...}}`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"error": {"code": "invalid_inputs", "message": "the inputs are invalid",
                   "details": [{"path": "inputs.nope", "message": "unknown input 'nope'"}]}}]})

    error: ErrorBody


# workflows -----------------------------------------------------------------------------------------------
class WorkflowInput(Answer):
    """One API input of a workflow, derived from an input node."""

    name: str
    type: str
    required: bool
    default: Any = None
    constraints: dict[str, Any]
    nodeId: str


class WorkflowOutput(Answer):
    name: str
    type: str
    nodeId: str


class Workflow(Answer):
    """A workflow: its draft graph, the API it offers, and where it is published."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "wf_01JD8ZK3", "name": "Greeter", "description": "",
        "graph": {"nodes": [{"id": "prompt", "type": "input.text", "params": {"name": "prompt"}}]},
        "inputs": [{"name": "prompt", "type": "text", "required": False, "default": "world", "constraints": {},
                    "nodeId": "prompt"}],
        "outputs": [{"name": "greeting", "type": "text", "nodeId": "out"}],
        "publishedVersion": 1, "webhookId": "wh_5Jk2", "webhookEnabled": True,
        "createdAt": "2026-11-29T12:00:00.123Z", "updatedAt": "2026-11-29T12:00:00.123Z"}]})

    id: str
    name: str
    description: str
    graph: dict[str, Any]
    inputs: list[WorkflowInput]
    outputs: list[WorkflowOutput]
    publishedVersion: int | None
    webhookId: str
    webhookEnabled: bool
    createdAt: Timestamp
    updatedAt: Timestamp


class ComfyImport(Workflow):
    """A workflow made (or re-made) from a ComfyUI export, and what the import exposed and why."""

    importNotes: list[str]


class WorkflowPage(Answer):
    data: list[Workflow]
    nextCursor: str | None


class GraphCheck(Answer):
    """`POST /workflows/validate`: nothing is saved."""

    valid: bool
    errors: list[ErrorDetail]


class Published(Answer):
    workflowId: str
    version: int
    publishedAt: Timestamp


class WorkflowVersion(Answer):
    """A published version: an immutable snapshot of the graph."""

    workflowId: str
    version: int
    graph: dict[str, Any]
    nodeVersions: dict[str, Any]
    publishedAt: Timestamp


class WorkflowVersionList(Answer):
    data: list[WorkflowVersion]


class Estimate(Answer):
    """What a run would cost, without starting it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "credits": 25.0, "balance": 100.0, "sufficient": True, "estimateComplete": True,
        "breakdown": [{"nodeId": "gen", "nodeType": "generate.flux_2_pro", "credits": 19.0},
                      {"nodeId": "up", "nodeType": "upscale.crystal", "credits": 6.0}]}]})

    credits: float
    balance: float
    sufficient: bool
    estimateComplete: bool = Field(description="false where fan-out lengths are only known at run time")
    breakdown: list[PriceLine]


# executions ----------------------------------------------------------------------------------------------
class Accepted(Answer):
    """An execution was queued (`202`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"executionId": "ex_01JD8ZQ7", "status": "QUEUED", "pollUrl": "/api/v1/workflows/executions/ex_01JD8ZQ7/poll"}]})

    executionId: str
    status: Literal["QUEUED"]
    pollUrl: str


class ExecutionError(Answer):
    """Why an execution (or a node) failed."""

    code: str
    message: str
    nodeId: str | None = None


class NodeState(Answer):
    status: ExecutionStatus
    nodeType: str
    startedAt: Timestamp | None
    completedAt: Timestamp | None
    cached: bool
    credits: float
    outputs: dict[str, Any] | None = Field(default=None, description="the node's outputs, once it completed")
    error: ExecutionError | None = None


class ExecutionSummary(Answer):
    """An execution as listed: the poll body without outputs and nodes."""

    executionId: str
    workflowId: str
    version: int | Literal["draft"]
    status: ExecutionStatus
    progress: float = Field(ge=0, le=1)
    createdAt: Timestamp
    startedAt: Timestamp | None
    completedAt: Timestamp | None
    creditsUsed: float
    error: ExecutionError | None


class Execution(ExecutionSummary):
    """The poll body. Media outputs are `{url, contentType, width?, height?, durationS?}` with a signed URL."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "executionId": "ex_01JD8ZQ7", "workflowId": "wf_01JD8ZK3", "version": 1, "status": "COMPLETED",
        "progress": 1.0, "createdAt": "2026-11-29T12:00:00.123Z", "startedAt": "2026-11-29T12:00:00.200Z",
        "completedAt": "2026-11-29T12:00:00.900Z", "creditsUsed": 0.0, "outputs": {"greeting": "Hello nodeloom!"},
        "nodes": {"tpl": {"status": "COMPLETED", "nodeType": "text.template", "startedAt": "2026-11-29T12:00:00.300Z",
                          "completedAt": "2026-11-29T12:00:00.310Z", "cached": False, "credits": 0.0}},
        "error": None}]})

    outputs: dict[str, Any]
    nodes: dict[str, NodeState]
    queuePosition: int | None = Field(default=None, description="present while QUEUED")


class ExecutionPage(Answer):
    data: list[ExecutionSummary]
    nextCursor: str | None


class CancelAnswer(Answer):
    """`CANCELLED` at once for a queued run; `CANCELLING` while a running one stops."""

    executionId: str
    status: Literal["QUEUED", "RUNNING", "CANCELLING", "COMPLETED", "FAILED", "CANCELLED"]


class ExecutionEvent(Answer):
    """One Server-Sent Event of `GET /executions/{id}/events`: `id:` (its sequence number, for `Last-Event-ID`),
    `event:` (the type) and `data:` (this JSON)."""

    id: int
    event: Literal["execution.started", "node.started", "node.progress", "node.completed", "node.failed",
                   "execution.completed", "execution.failed", "execution.cancelled"]
    data: dict[str, Any]


# the node catalogue ---------------------------------------------------------------------------------------
class PortSpec(Answer):
    """An input, output or param of a node type."""

    name: str
    type: str
    required: bool
    default: Any = None
    description: str | None = None
    constraints: dict[str, Any]


class NodeSpec(Answer):
    """A node type of the catalogue. `credits` is a number (a fixed price) or `{per, amount, maxSeconds?}`."""

    type: str
    category: str
    displayName: str
    description: str | None
    version: int | str | None = None
    inputs: list[PortSpec]
    outputs: list[PortSpec]
    params: list[PortSpec]
    credits: float | dict[str, Any]
    byokCredits: float | None = None
    resources: str
    deterministic: bool
    provider: str | None = None
    available: bool
    unavailableReason: str | None


class NodeList(Answer):
    data: list[NodeSpec]


# keys, account, usage, vendor keys -------------------------------------------------------------------------
class ApiKey(Answer):
    id: str
    name: str
    prefix: str
    scopes: list[Literal["execute", "read", "usage", "manage"]]
    createdAt: Timestamp
    lastUsedAt: Timestamp | None
    expiresAt: Timestamp | None


class CreatedKey(Answer):
    """A new key: `key` (`sk-…`) appears in this answer only."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "key_01JD90A1", "name": "render worker", "key": "sk-live-…", "prefix": "sk-live-ab12",
        "scopes": ["execute", "read"], "createdAt": "2026-11-29T12:00:00.123Z", "expiresAt": None}]})

    id: str
    name: str
    key: str
    prefix: str
    scopes: list[Literal["execute", "read", "usage", "manage"]]
    createdAt: Timestamp
    expiresAt: Timestamp | None


class ApiKeyList(Answer):
    data: list[ApiKey]


class Account(Answer):
    id: str
    name: str
    plan: str
    credits: float
    webhookSecret: str = Field(description="`whsec_…`: the key that signs callbacks")
    createdAt: Timestamp | None = None


class UsageCredits(Answer):
    balance: float
    held: float | None = None


class UsageExecutions(Answer):
    today: int
    dailyLimit: int | None = Field(description="null: unlimited")
    thisMonth: int


class UsageRateLimits(Answer):
    requestsPerMinute: int | None
    executionsPerMinute: int | None
    concurrency: int | None
    windowSeconds: int | None = None


class UsageDay(Answer):
    date: str
    executions: int
    credits: float


class Usage(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "plan": "pro", "credits": {"balance": 975.0, "held": 0.0},
        "executions": {"today": 3, "dailyLimit": 1000, "thisMonth": 42},
        "rateLimits": {"requestsPerMinute": 60, "executionsPerMinute": 10, "concurrency": 10, "windowSeconds": 60},
        "daily": [{"date": "2026-11-29", "executions": 3, "credits": 25.0}]}]})

    plan: str
    credits: UsageCredits
    executions: UsageExecutions
    rateLimits: UsageRateLimits
    daily: list[UsageDay]


class ProviderKey(Answer):
    """An account's own vendor key: whether it is set, never its value."""

    provider: str
    configured: bool
    updatedAt: Timestamp | None


class ProviderKeyList(Answer):
    data: list[ProviderKey]


# files -------------------------------------------------------------------------------------------------------
class UploadedFile(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "fileId": "file_01JD90C4", "url": "http://127.0.0.1:8000/api/v1/files/file_01JD90C4?exp=1796040000&sig=…",
        "contentType": "image/png", "size": 48213, "width": 512, "height": 512}]})

    fileId: str
    url: str = Field(description="a signed, expiring link that needs no header")
    contentType: str
    size: int
    width: int | None = None
    height: int | None = None


# webhooks -----------------------------------------------------------------------------------------------------
class WebhookSettings(Answer):
    workflowId: str
    webhookId: str
    enabled: bool
    active: bool = Field(description="enabled and published: triggers start runs")
    triggerUrl: str
    triggerSecretSet: bool
    callbackUrl: str | None
    callbackEvents: list[str]


class DeliveryAttempt(Answer):
    attempt: int
    startedAt: Timestamp | None
    finishedAt: Timestamp | None
    statusCode: int | None
    error: str | None
    responseBody: str | None
    nextAttemptAt: Timestamp | None


class Delivery(Answer):
    """One callback and its attempts (`id` is the `webhook-id` header the receiver saw)."""

    id: str
    webhookId: str
    executionId: str
    type: str
    url: str
    status: str
    attemptCount: int
    nextAttemptAt: Timestamp | None
    lastStatusCode: int | None
    lastError: str | None
    createdAt: Timestamp
    lastAttemptAt: Timestamp | None
    deliveredAt: Timestamp | None
    attempts: list[DeliveryAttempt]


class DeliveryPage(Answer):
    data: list[Delivery]
    nextCursor: str | None


# dashboard sessions and operations -----------------------------------------------------------------------------
class AuthConfig(Answer):
    signupEnabled: bool


class SessionUser(Answer):
    id: str
    email: str
    role: str


class SessionAccount(Answer):
    id: str
    name: str
    plan: str


class Session(Answer):
    """A dashboard sign-in: who, which account, and the CSRF token its writes carry (`X-CSRF-Token`)."""

    user: SessionUser
    account: SessionAccount
    csrfToken: str


class Health(Answer):
    status: Literal["ok"]


class Readiness(Answer):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]
