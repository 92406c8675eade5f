"""Errors a hosted provider raises.

NodeloomError
└── ProviderError              — provider, status, retryable, retry_after, request_id
    ├── ProviderTimeout        — no answer within the call's deadline or an HTTP timeout (retryable)
    ├── ProviderCancelled      — the vendor reports the job as cancelled (someone cancelled it there)
    └── ProviderUnavailable    — not configured (no key) or no provider left on the route

`retryable` is the one fact routing acts on: transient failures (5xx, 429, timeouts, lost
connections) may be retried and may fall back to the next provider; everything else (400, 401,
403, 404, 422, a model's own refusal) is final, because another try would fail the same way.
When the awaiting task is cancelled the adapters send the vendor's cancel and re-raise
`asyncio.CancelledError` itself, never one of these.
"""

from __future__ import annotations

from nodeloom.errors import NodeloomError


class ProviderError(NodeloomError):
    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        request_id: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.request_id = request_id

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.provider}: {self.message}{status}"


class ProviderTimeout(ProviderError):
    def __init__(self, message: str, *, provider: str, request_id: str | None = None):
        super().__init__(message, provider=provider, retryable=True, request_id=request_id)


class ProviderCancelled(ProviderError):
    def __init__(self, message: str, *, provider: str, request_id: str | None = None):
        super().__init__(message, provider=provider, retryable=False, request_id=request_id)


class ProviderUnavailable(ProviderError):
    def __init__(self, message: str, *, provider: str):
        super().__init__(message, provider=provider, retryable=False)


def is_retryable_status(status: int) -> bool:
    """408 and 429 are the vendor saying "not now"; 5xx is the vendor failing, not the request."""
    return status in (408, 429) or status >= 500
