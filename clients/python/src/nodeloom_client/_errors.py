"""Typed errors: one class per kind of answer, built from the API's envelope
``{"error": {"code", "message", ...extra}}``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nodeloom_client._types import Execution


class NodeloomError(Exception):
    """Base class of everything this client raises on purpose."""


class APIError(NodeloomError):
    """An error answer from the API.

    ``status`` is the HTTP status, ``code`` the envelope's snake_case code (``rate_limited``,
    ``invalid_inputs``, …), ``message`` its sentence and ``body`` the whole decoded body.
    ``request_id`` is the server's ``X-Request-Id`` (quote it when reporting a problem).
    """

    def __init__(self, status: int, code: str, message: str, body: Any = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body: Any = body if body is not None else {}
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        self.request_id = self.headers.get("x-request-id")

    @property
    def error(self) -> dict[str, Any]:
        """The envelope's ``error`` object (empty when the body was not the envelope)."""
        err = self.body.get("error") if isinstance(self.body, dict) else None
        return err if isinstance(err, dict) else {}


class BadRequest(APIError):
    """400: the request could not be read."""


class Unauthorized(APIError):
    """401: no key, a malformed key, or an unknown, revoked or expired one."""


@dataclass(frozen=True)
class CreditLine:
    """One line of a price: a node (or a ComfyUI segment, with its ``nodes``) and its credits."""

    node_id: str
    node_type: str
    credits: float
    nodes: tuple[str, ...] = ()


class InsufficientCredits(APIError):
    """402: the account's balance does not cover the run. ``required``, ``balance`` and the per-node
    ``breakdown`` say by how much (an anonymous webhook trigger gets neither balance nor breakdown)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        err = self.error
        self.required: float | None = _float(err.get("required"))
        self.balance: float | None = _float(err.get("balance"))
        self.breakdown: list[CreditLine] = [
            CreditLine(node_id=str(line.get("nodeId", "")), node_type=str(line.get("nodeType", "")),
                       credits=float(line.get("credits") or 0), nodes=tuple(line.get("nodes") or ()))
            for line in err.get("breakdown") or [] if isinstance(line, dict)]


class Forbidden(APIError):
    """403: the key is valid but lacks the scope the operation needs (or a file link's signature is bad)."""


class NotFound(APIError):
    """404: no such thing in this account (another account's resources are 404 too, never 403)."""


class Conflict(APIError):
    """409: e.g. ``workflow_not_published``, ``execution_finished``, ``idempotency_key_in_use``."""


class PayloadTooLarge(APIError):
    """413: the body or the upload is over the server's size limit."""


@dataclass(frozen=True)
class ErrorDetail:
    """Where a request was wrong: ``path`` like ``nodes[2].inputs.width`` or ``inputs.prompt``."""

    path: str
    message: str


class ValidationFailed(APIError):
    """422: the graph, the inputs or the body is invalid; ``details`` says where."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.details: list[ErrorDetail] = [
            ErrorDetail(path=str(d.get("path", "")), message=str(d.get("message", "")))
            for d in self.error.get("details") or [] if isinstance(d, dict)]


class RateLimited(APIError):
    """429: a request rate, execution rate or daily quota is spent (``code`` says which);
    ``retry_after`` is how many seconds to wait."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.retry_after: float | None = _float(self.error.get("retryAfter"))
        if self.retry_after is None:
            self.retry_after = parse_retry_after(self.headers.get("retry-after"))


class ServerError(APIError):
    """5xx: something went wrong on the server's side (``request_id`` identifies it)."""


class StreamError(NodeloomError):
    """The event stream could not be (re)opened; `run` then falls back to polling."""


class ExecutionFailed(NodeloomError):
    """An execution ended FAILED or CANCELLED; ``execution`` is its final state (``execution.error``
    has the code, message and the failing node)."""

    def __init__(self, execution: Execution):
        err = execution.error
        detail = f": {err.code}: {err.message}" if err else ""
        super().__init__(f"execution {execution.execution_id} ended {execution.status}{detail}")
        self.execution = execution


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest, 401: Unauthorized, 402: InsufficientCredits, 403: Forbidden, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 422: ValidationFailed, 429: RateLimited,
}


def error_for(status: int, body: Any, headers: Mapping[str, str] | None = None, text: str = "") -> APIError:
    """The typed error for an answer's status and body."""
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else {}
    code = str(err.get("code") or f"http_{status}")
    message = str(err.get("message") or text or f"HTTP {status}")
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return cls(status, code, message, body, headers)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds form; an HTTP date is read as 'soon')."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
