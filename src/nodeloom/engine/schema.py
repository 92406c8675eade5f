"""Typed ports and params: one declaration drives validation, the catalogue, forms and execution."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PortType = str  # "text", "number", "integer", "boolean", "json", "image", "video", "audio", "file", "mask", "any", "list<T>"

SCALAR_TYPES = frozenset(
    {"text", "number", "integer", "boolean", "json", "image", "video", "audio", "file", "mask", "boxes", "any"}
)
MEDIA_TYPES = frozenset({"image", "video", "audio", "file", "mask"})
#: JSON values (params, inputs, parsed texts) may nest at most this deep: far beyond any real workflow, and far
#: below the depth at which Python's recursive JSON encoding and copying would fail
MAX_JSON_DEPTH = 64


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Does `value` nest objects/arrays more than `limit` levels deep? (Iterative: safe on any depth.)"""
    if not isinstance(value, (dict, list, tuple)):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, (dict, list, tuple)):
                stack.append((child, depth + 1))
    return False


def is_list(t: PortType) -> bool:
    return t.startswith("list<") and t.endswith(">")


def element_type(t: PortType) -> PortType:
    return t[5:-1] if is_list(t) else t


def list_of(t: PortType) -> PortType:
    return f"list<{t}>"


def valid_type(t: PortType) -> bool:
    return valid_type(element_type(t)) if is_list(t) else t in SCALAR_TYPES


def compatible(src: PortType, dst: PortType) -> bool:
    """Can a value of type `src` flow directly (without fan-out) into a port of type `dst`?"""
    if src == dst or dst == "any" or src == "any":
        return True
    if src == "integer" and dst == "number":
        return True
    if src == "mask" and dst == "image" or src == "image" and dst == "mask":
        return True
    if is_list(src) and is_list(dst):
        return compatible(element_type(src), element_type(dst))
    if (src == "json" and is_list(dst)) or (is_list(src) and dst == "json"):
        return True  # a JSON array is a list, and a list is valid JSON
    return False


def fans_out(src: PortType, dst: PortType) -> bool:
    """A list<T> flowing into a scalar T port runs the node once per element."""
    return is_list(src) and dst != "any" and compatible(element_type(src), dst)


@dataclass(frozen=True)
class Port:
    name: str
    type: PortType
    required: bool = True
    default: Any = None
    description: str = ""

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "description": self.description,
            "constraints": {},
        }


@dataclass(frozen=True)
class Param:
    """A literal setting of a node. `enum`, `min`, `max`, `max_length` are its constraints."""

    name: str
    type: PortType
    default: Any = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    enum: tuple[Any, ...] | None = None
    max_length: int | None = None
    description: str = ""
    multiline: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def constraints(self) -> dict[str, Any]:
        c: dict[str, Any] = {}
        if self.min is not None:
            c["min"] = self.min
        if self.max is not None:
            c["max"] = self.max
        if self.enum is not None:
            c["enum"] = list(self.enum)
        if self.max_length is not None:
            c["maxLength"] = self.max_length
        if self.multiline:
            c["multiline"] = True
        c.update(self.extra)
        return c

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "description": self.description,
            "constraints": self.constraints(),
        }

    def check(self, value: Any) -> tuple[Any, str | None]:
        """Coerce a literal to this param's type; return (value, error message or None)."""
        return check_value(self.type, value, minimum=self.min, maximum=self.max, enum=self.enum,
                           max_length=self.max_length)


def check_value(
    t: PortType,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    enum: tuple[Any, ...] | None = None,
    max_length: int | None = None,
) -> tuple[Any, str | None]:
    """Validate a JSON literal against a port type. Media types accept reference strings."""
    if is_list(t):
        if not isinstance(value, list):
            return value, f"expected a list of {element_type(t)}"
        out = []
        for i, item in enumerate(value):
            v, err = check_value(element_type(t), item, minimum=minimum, maximum=maximum, enum=enum,
                                 max_length=max_length)
            if err:
                return value, f"item {i}: {err}"
            out.append(v)
        return out, None
    if t == "any" or t == "json":
        return value, None
    if t == "text":
        if not isinstance(value, str):
            return value, "expected a string"
        if max_length is not None and len(value) > max_length:
            return value, f"must be at most {max_length} characters"
    elif t == "boolean":
        if not isinstance(value, bool):
            return value, "expected a boolean"
    elif t == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, "expected an integer"
        if isinstance(value, float):
            if not value.is_integer():
                return value, "expected an integer"
            value = int(value)
    elif t == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return value, "expected a number"
    elif t in MEDIA_TYPES:
        if not isinstance(value, (str, dict)):
            return value, f"expected a {t} reference (fileId, https URL or data: URI)"
    elif t == "boxes":
        if not isinstance(value, list):
            return value, "expected a list of boxes"
    if enum is not None and value not in enum:
        return value, "must be one of " + ", ".join(map(str, enum))
    if t in ("integer", "number"):
        if minimum is not None and value < minimum:
            return value, f"must be >= {minimum:g}"
        if maximum is not None and value > maximum:
            return value, f"must be <= {maximum:g}"
    return value, None
