"""Errors that cross layers.

NodeloomError
├── ApiError                      — carries an HTTP status, a snake_case code and extra envelope fields
│   ├── NotFound (404)            — also for another account's resources, never 403
│   ├── Unauthorized (401)
│   ├── Forbidden (403)
│   ├── ValidationFailed (422)    — carries details [{path, message}]
│   ├── Conflict (409)
│   ├── PayloadTooLarge (413)
│   └── InvalidSignature (403)
└── (engine errors live in nodeloom.engine.errors and are translated by services)
"""

from __future__ import annotations

from typing import Any


class NodeloomError(Exception):
    """Root of every error nodeloom raises on purpose."""


class ApiError(NodeloomError):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"

    def __init__(self, message: str, details: list[dict[str, str]] | None = None, **extra: Any):
        super().__init__(message, details=details or [], **extra)


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class InvalidSignature(ApiError):
    status = 403
    code = "invalid_signature"
