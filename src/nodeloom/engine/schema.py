"""Typed ports and params: one declaration drives validation, the catalogue, forms and execution."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PortType = str  # "text", "number", "integer", "boolean", "json", "image", "video", "audio", "file", "mask", "any", "list<T>",
#                 or a foreign type "comfyui:KIND"

SCALAR_TYPES = frozenset(
    {"text", "number", "integer", "boolean", "json", "image", "video", "audio", "file", "mask", "boxes", "any"}
)
MEDIA_TYPES = frozenset({"image", "video", "audio", "file", "mask"})
#: Foreign types are another system's own kinds of value, opaque to nodeloom: ComfyUI's MODEL, LATENT, CONDITIONING …
#: are spelled "comfyui:MODEL" … A foreign type links only to exactly the same type (never to or from a native type,
#: not even "any"), never fans out, and takes no literal: its values only pass between that system's nodes.
FOREIGN_PREFIX = "comfyui:"
#: ComfyUI's wildcard input ("*", e.g. PreviewAny's `source`): takes a link of any type, native or foreign, and any
#: literal
FOREIGN_ANY = FOREIGN_PREFIX + "*"
#: how many choices a refusal message lists before it says how many there are
MAX_LISTED_CHOICES = 30
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


def is_foreign(t: PortType) -> bool:
    """Is `t` a foreign type ("comfyui:MODEL"), or a list of one?"""
    while is_list(t):
        t = element_type(t)
    return t.startswith(FOREIGN_PREFIX)


def _valid_foreign(t: PortType) -> bool:
    kind = t[len(FOREIGN_PREFIX):]
    return t.startswith(FOREIGN_PREFIX) and bool(kind) and not any(c.isspace() or c in "<>" for c in kind)


def valid_type(t: PortType) -> bool:
    return valid_type(element_type(t)) if is_list(t) else t in SCALAR_TYPES or _valid_foreign(t)


def compatible(src: PortType, dst: PortType) -> bool:
    """Can a value of type `src` flow directly (without fan-out) into a port of type `dst`?"""
    if is_foreign(src) or is_foreign(dst):
        return src == dst or dst == FOREIGN_ANY
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
    """A list<T> flowing into a scalar T port runs the node once per element (never for foreign types)."""
    if is_foreign(src) or is_foreign(dst):
        return False
    return is_list(src) and dst != "any" and compatible(element_type(src), dst)


def value_constraints(*, minimum: float | None, maximum: float | None,
                      choices: tuple[Any, ...] | None) -> dict[str, Any]:
    """The public `constraints` of a port or param: its bounds and choices, where it has them."""
    c: dict[str, Any] = {}
    if minimum is not None:
        c["min"] = minimum
    if maximum is not None:
        c["max"] = maximum
    if choices is not None:
        c["enum"] = list(choices)
    return c


@dataclass(frozen=True)
class Port:
    """A typed input or output. An input's `choices`, `min` and `max` constrain the literals it takes (a link's
    values are not checked here). `accepts_one`: a `list<T>` input that also takes a link carrying one T, which
    enters as a list of one (a ComfyUI IMAGE batch fed by a native image). `links_only`: an input that never takes a
    literal (a loader's file on a shared server: it comes only from a nodeloom input)."""

    name: str
    type: PortType
    required: bool = True
    default: Any = None
    description: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    accepts_one: bool = False
    links_only: bool = False

    def constraints(self) -> dict[str, Any]:
        c = value_constraints(minimum=self.min, maximum=self.max, choices=self.choices)
        if self.links_only:
            c["linkOnly"] = True
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

    def takes(self, src: PortType) -> bool:
        """Can a link of type `src` feed this input without fan-out (`compatible`, or one T into `accepts_one`)?"""
        if compatible(src, self.type):
            return True
        return self.accepts_one and is_list(self.type) and not is_list(src) \
            and compatible(src, element_type(self.type))

    def check(self, value: Any) -> tuple[Any, str | None]:
        """Coerce a literal given to this input; return (value, error message or None)."""
        if self.links_only:
            return value, (f"input '{self.name}' takes its {self.type} only through a link (from a nodeloom input or "
                           "node), never as a literal such as a file name on the server")
        return check_value(self.type, value, minimum=self.min, maximum=self.max, enum=self.choices)


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
        c = value_constraints(minimum=self.min, maximum=self.max, choices=self.enum)
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
    """Validate a JSON literal against a port type. Media types accept reference strings; foreign types (but
    ComfyUI's wildcard) take none."""
    if t == FOREIGN_ANY:
        return value, None
    if is_foreign(t):
        return value, f"a {t} value comes only through a link from a node that gives one"
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
        if not enum:
            return value, "no value is allowed: there are no choices"
        listed = ", ".join(map(str, enum[:MAX_LISTED_CHOICES]))
        more = f", … ({len(enum)} choices)" if len(enum) > MAX_LISTED_CHOICES else ""
        return value, "must be one of " + listed + more
    if t in ("integer", "number"):
        if minimum is not None and value < minimum:
            return value, f"must be >= {minimum:g}"
        if maximum is not None and value > maximum:
            return value, f"must be <= {maximum:g}"
    return value, None
