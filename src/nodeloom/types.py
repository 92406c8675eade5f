"""Shared vocabulary: type aliases only, importable from every layer without cycles."""

from __future__ import annotations

from typing import Any, Literal

JSON = Any
JSONDict = dict[str, Any]
Scope = Literal["execute", "read", "usage", "manage"]
ALL_SCOPES: tuple[str, ...] = ("execute", "read", "usage", "manage")
ExecutionStatus = Literal["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
Resource = Literal["cpu", "io", "gpu"]
