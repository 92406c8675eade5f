"""nodeloom-client: the Python client for a nodeloom server (node-based AI workflows as a REST API).

    from nodeloom_client import Nodeloom

    with Nodeloom(api_key="sk-...", base_url="http://127.0.0.1:8000") as nl:
        result = nl.run("wf_...", {"prompt": "a red fox"}, on_progress=lambda p: print(p.event, p.node_id))
        nl.download(result.outputs["image"], "fox.png")

`AsyncNodeloom` is the same client for asyncio. It depends on httpx alone.
"""

from nodeloom_client._async import DEFAULT_BASE_URL, AsyncNodeloom, ProgressCallback, __version__
from nodeloom_client._errors import (
    APIError,
    BadRequest,
    Conflict,
    CreditLine,
    ErrorDetail,
    ExecutionFailed,
    Forbidden,
    InsufficientCredits,
    NodeloomError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    StreamError,
    Unauthorized,
    ValidationFailed,
)
from nodeloom_client._sync import Nodeloom
from nodeloom_client._types import (
    BatchResult,
    Event,
    Execution,
    ExecutionError,
    Media,
    NodeState,
    Progress,
    Submitted,
    UploadedFile,
)
from nodeloom_client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "AsyncNodeloom",
    "BadRequest",
    "BatchResult",
    "Conflict",
    "CreditLine",
    "ErrorDetail",
    "Event",
    "Execution",
    "ExecutionError",
    "ExecutionFailed",
    "Forbidden",
    "InsufficientCredits",
    "Media",
    "NodeState",
    "Nodeloom",
    "NodeloomError",
    "NotFound",
    "PayloadTooLarge",
    "Progress",
    "ProgressCallback",
    "RateLimited",
    "ServerError",
    "StreamError",
    "Submitted",
    "Unauthorized",
    "UploadedFile",
    "ValidationFailed",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]
