"""The nodeloom Python SDK, re-exported from the `nodeloom-client` distribution (clients/python in this
repository; it depends on httpx alone, so an app that calls the API installs only that):

    from nodeloom_client import Nodeloom          # or, from the server's package: nodeloom.client
    with Nodeloom(api_key="sk-...", base_url="http://127.0.0.1:8000") as nl:
        result = nl.run("wf_...", {"prompt": "a red fox"}, on_progress=print)
        print(result.status, result.outputs)

`Client`, `AsyncClient` and `NodeloomAPIError` are the names this module had before the split.
"""

from nodeloom_client import (
    APIError,
    AsyncNodeloom,
    BadRequest,
    BatchResult,
    Conflict,
    CreditLine,
    ErrorDetail,
    Event,
    Execution,
    ExecutionError,
    ExecutionFailed,
    Forbidden,
    InsufficientCredits,
    Media,
    Nodeloom,
    NodeloomError,
    NodeState,
    NotFound,
    PayloadTooLarge,
    Progress,
    RateLimited,
    ServerError,
    StreamError,
    Submitted,
    Unauthorized,
    UploadedFile,
    ValidationFailed,
    WebhookVerificationError,
    verify_webhook,
)

Client = Nodeloom
AsyncClient = AsyncNodeloom
NodeloomAPIError = APIError

__all__ = [
    "APIError", "AsyncClient", "AsyncNodeloom", "BadRequest", "BatchResult", "Client", "Conflict", "CreditLine",
    "ErrorDetail", "Event", "Execution", "ExecutionError", "ExecutionFailed", "Forbidden", "InsufficientCredits",
    "Media", "NodeState", "Nodeloom", "NodeloomAPIError", "NodeloomError", "NotFound", "PayloadTooLarge",
    "Progress", "RateLimited", "ServerError", "StreamError", "Submitted", "Unauthorized", "UploadedFile",
    "ValidationFailed", "WebhookVerificationError", "verify_webhook",
]
