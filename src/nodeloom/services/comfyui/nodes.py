"""`comfyui.<class_type>` node types built from a ComfyUI server's `/object_info` (API.md "ComfyUI workflows").

One `Node` subclass per allowed class, so a graph holding ComfyUI nodes is validated like any other: its inputs are
ComfyUI's inputs (required then optional, in `input_order`; hidden ones left out), typed as the contract crosses
types between native and ComfyUI nodes, with a combo's choices and a number's bounds as constraints on literals;
its outputs are ComfyUI's output names lower-cased (`_2`, `_3` … where a name repeats), plus, on an output node
whose results nodeloom returns (SaveImage …), the port those results leave by (`expose.result_port`).

| ComfyUI | nodeloom |
|---|---|
| IMAGE, MASK | `list<image>`, `list<mask>` (a batch; an input also takes one native image/mask, as a batch of one) |
| STRING, INT, FLOAT, BOOLEAN | `text`, `integer`, `number`, `boolean` (INT/FLOAT `min`/`max` as constraints) |
| a combo (`[[...], {}]` or `["COMBO", {"options": [...]}]`) | `text` with its choices (`integer`/`number` when they all are) |
| a loader's file combo (`image_upload`, `video_upload` …) | `image`, `video`, `audio`, `file`: the file comes from nodeloom, never a name on the server |
| VIDEO, AUDIO | `video`, `audio` |
| `*` | `comfyui:*` (takes a link of any type) |
| anything else (MODEL, LATENT, CONDITIONING …) | `comfyui:<TYPE>`, which links only to the same type |

An output that ComfyUI marks `output_is_list` is a `list<…>` of its element. Pure: no I/O. The types cannot run in
the worker's process (`comfyui_not_runnable_here`): ComfyUI nodes run in segments on ComfyUI servers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import FOREIGN_ANY, FOREIGN_PREFIX, Port, PortType, list_of, valid_type
from nodeloom.services.comfyui.expose import node_type, output_port_names, result_port

Allowed = Callable[[str, dict[str, Any]], bool]

#: ComfyUI socket/widget types that cross into native types
NATIVE_TYPES: dict[str, PortType] = {
    "IMAGE": "list<image>", "MASK": "list<mask>", "STRING": "text", "INT": "integer", "FLOAT": "number",
    "BOOLEAN": "boolean", "VIDEO": "video", "AUDIO": "audio", "*": FOREIGN_ANY,
}
#: a loader's upload flag on its file combo → the media type nodeloom hands it
UPLOAD_TYPES: dict[str, PortType] = {
    "image_upload": "image", "animated_image_upload": "image", "video_upload": "video", "audio_upload": "audio",
    "file_upload": "file",
}
SECTIONS = ("required", "optional")


def default_allowed(class_type: str, entry: dict[str, Any]) -> bool:
    """Every class but the paid partner nodes (`api_node: true`), which would spend the operator's money."""
    return not entry.get("api_node")


#: INT inputs that size an image (their bound is the side of the largest image allowed) or a batch
SIZE_INPUTS = frozenset({"width", "height"})
BATCH_INPUTS = frozenset({"batch_size", "length", "amount"})


@dataclass(frozen=True)
class ComfyPolicy:
    """The operator's rules for the pool (API.md "Tenancy on shared servers", "Credits")."""

    allowed_classes: frozenset[str] = frozenset()  # empty: `default_allowed`
    credits_per_second: float = 0.0
    max_seconds: float = 600.0
    max_image_pixels: int = 4096 * 4096
    max_batch: int = 16

    def allowed(self, class_type: str, entry: dict[str, Any]) -> bool:
        if self.allowed_classes:
            return class_type in self.allowed_classes
        return default_allowed(class_type, entry)

    @property
    def max_side(self) -> int:
        return max(1, math.isqrt(self.max_image_pixels))


class ComfyNode(Node):
    """The base of every generated `comfyui.*` type. Its class attributes say which ComfyUI class it stands for."""

    comfy_class: ClassVar[str] = ""
    comfy_category: ClassVar[str] = ""
    comfy_output_node: ClassVar[bool] = False
    #: input name → media type, for a loader's file input (LoadImage's `image` …): its file comes only from nodeloom
    #: (a link from an input node), never as a file name on a shared server (API.md "Tenancy")
    comfy_uploads: ClassVar[Mapping[str, str]] = {}
    #: the `/object_info` entry the type was built from (publishing snapshots the entries a workflow uses)
    comfy_info: ClassVar[Mapping[str, Any]] = {}
    resources = "gpu"
    deterministic = False  # ComfyUI caches by itself
    segment = "comfyui"
    credits_per = "runSecond"
    #: a segment is interrupted and fails `node_timeout` past this many seconds, and holds price × this
    max_seconds: ClassVar[float] = 600.0

    @classmethod
    def price(cls, params: Mapping[str, Any]) -> float:
        return 0.0  # priced per segment, by run-second (services/billing.py)

    @classmethod
    def spec(cls, *, unavailable_reason: str | None = None) -> dict[str, Any]:
        out = super().spec(unavailable_reason=unavailable_reason)
        out["credits"] = {"per": "runSecond", "amount": cls.credits, "maxSeconds": cls.max_seconds}
        return out

    @classmethod
    def category(cls) -> str:
        return f"comfyui/{cls.comfy_category}" if cls.comfy_category else "comfyui"

    async def run(self, ctx: Context, /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise NodeError(f"the ComfyUI node {self.comfy_class!r} ({self.type}) runs only on a ComfyUI server, "
                        "not in the worker's process", code="comfyui_not_runnable_here")


def comfy_node_types(object_info: Mapping[str, Any], *, allowed: Allowed | None = None,
                     policy: ComfyPolicy | None = None) -> list[type[Node]]:
    """One `comfyui.<class_type>` node type per class of `object_info` that `allowed(class_type, entry)` lets in
    (default: the policy's allow-list, else every class without `api_node: true`). A class whose entry cannot be
    read (a malformed custom node) is left out."""
    policy = policy or ComfyPolicy()
    allow = allowed or policy.allowed
    out: list[type[Node]] = []
    for class_type, entry in object_info.items():
        if not isinstance(class_type, str) or not class_type or not isinstance(entry, dict):
            continue
        if not allow(class_type, entry):
            continue
        built = build_node_type(class_type, entry, policy=policy)
        if built is not None:
            out.append(built)
    return out


def build_node_type(class_type: str, entry: Mapping[str, Any], *,
                    policy: ComfyPolicy | None = None) -> type[ComfyNode] | None:
    """The `comfyui.<class_type>` node type for one `/object_info` entry, or None when the entry cannot be read.
    The policy's caps become bounds of its size and batch inputs, so a graph over them is refused (422)."""
    policy = policy or ComfyPolicy()
    inputs = _inputs(entry, policy)
    outputs = _outputs(class_type, entry)
    if inputs is None or outputs is None:
        return None
    uploads = {p.name: p.type for p in inputs if _upload_type(_options(_spec(entry, p.name))) is not None}
    category = entry.get("category")
    display = entry.get("display_name")
    description = entry.get("description")
    attrs: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": f"ComfyUI's {class_type} node.",
        "type": node_type(class_type),
        "display_name": display if isinstance(display, str) and display else class_type,
        "description": description if isinstance(description, str) else "",
        "inputs": inputs,
        "outputs": outputs,
        "comfy_class": class_type,
        "comfy_category": category if isinstance(category, str) else "",
        "comfy_output_node": entry.get("output_node") is True,
        "comfy_uploads": uploads,
        "comfy_info": entry,
        "credits": policy.credits_per_second,
        "max_seconds": policy.max_seconds,
    }
    name = "Comfy_" + re.sub(r"\W", "_", class_type)
    return type(name, (ComfyNode,), attrs)


# --- inputs ---------------------------------------------------------------------------------------------------------


def _sections(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    sections = entry.get("input")
    return sections if isinstance(sections, Mapping) else {}


def _spec(entry: Mapping[str, Any], name: str) -> Any:
    for section in SECTIONS:
        declared = _sections(entry).get(section)
        if isinstance(declared, Mapping) and name in declared:
            return declared[name]
    return None


def _options(spec: Any) -> Mapping[str, Any]:
    if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], Mapping):
        return spec[1]
    return {}


def _upload_type(options: Mapping[str, Any]) -> PortType | None:
    return next((t for flag, t in UPLOAD_TYPES.items() if options.get(flag) is True), None)


def _names(entry: Mapping[str, Any], section: str) -> list[str]:
    """The section's inputs in `input_order`, then any it declares that the order leaves out."""
    declared = _sections(entry).get(section)
    if not isinstance(declared, Mapping):
        return []
    order = entry.get("input_order")
    listed = order.get(section) if isinstance(order, Mapping) else None
    names = [n for n in listed if isinstance(n, str) and n in declared] if isinstance(listed, list) else []
    return names + [n for n in declared if isinstance(n, str) and n not in names]


def _inputs(entry: Mapping[str, Any], policy: ComfyPolicy) -> tuple[Port, ...] | None:
    ports: list[Port] = []
    seen: set[str] = set()
    for section in SECTIONS:
        for name in _names(entry, section):
            if name in seen:
                continue
            seen.add(name)
            port = _input_port(name, _spec(entry, name), required=section == "required", policy=policy)
            if port is None:
                return None
            ports.append(port)
    return tuple(ports)


def _input_port(name: str, spec: Any, *, required: bool, policy: ComfyPolicy) -> Port | None:
    if not isinstance(spec, (list, tuple)) or not spec:
        return None
    kind, options = spec[0], _options(spec)
    tooltip = options.get("tooltip")
    description = tooltip if isinstance(tooltip, str) else ""
    default = options.get("default")
    if isinstance(kind, (list, tuple)) or kind == "COMBO":
        upload = _upload_type(options)
        if upload is not None:  # the choices are files on the server: never offered, never taken
            return Port(name, upload, required=required, description=description, links_only=True)
        choices = kind if isinstance(kind, (list, tuple)) else options.get("options")
        if not isinstance(choices, (list, tuple)):  # choices the frontend fetches from a route: not known here
            return Port(name, "text", required=required, default=default, description=description)
        return Port(name, _combo_type(choices), required=required, default=default, description=description,
                    choices=tuple(choices))
    if not isinstance(kind, str):
        return None
    t = NATIVE_TYPES.get(kind, FOREIGN_PREFIX + kind)
    if not valid_type(t):
        return None
    if t in ("integer", "number"):
        high = _bound(options.get("max"))
        cap = policy.max_side if name in SIZE_INPUTS else policy.max_batch if name in BATCH_INPUTS else None
        if t == "integer" and cap is not None:
            high = cap if high is None else min(high, cap)
        return Port(name, t, required=required, default=default, description=description,
                    min=_bound(options.get("min")), max=high)
    if t.startswith("list<"):  # IMAGE and MASK: a batch, or one native image/mask as a batch of one
        return Port(name, t, required=required, description=description, accepts_one=True)
    if t.startswith(FOREIGN_PREFIX):
        return Port(name, t, required=required, description=description)
    return Port(name, t, required=required, default=default, description=description)


def _combo_type(choices: list[Any] | tuple[Any, ...]) -> PortType:
    if choices and all(isinstance(c, int) and not isinstance(c, bool) for c in choices):
        return "integer"
    if choices and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
        return "number"
    return "text"


def _bound(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --- outputs --------------------------------------------------------------------------------------------------------


def _outputs(class_type: str, entry: Mapping[str, Any]) -> tuple[Port, ...] | None:
    kinds = entry.get("output") or []
    is_list = entry.get("output_is_list") or []
    if not isinstance(kinds, (list, tuple)) or not isinstance(is_list, (list, tuple)):
        return None
    names = output_port_names(entry)
    if len(names) != len(kinds):
        names = output_port_names({"output": kinds})
    ports: list[Port] = []
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        if isinstance(kind, (list, tuple)):  # a combo output (a custom node's choices): its value is text
            t: PortType = "text"
        elif isinstance(kind, str) and kind:
            t = NATIVE_TYPES.get(kind, FOREIGN_PREFIX + kind)
        else:
            return None
        if i < len(is_list) and is_list[i] is True:
            t = list_of(t)
        if not valid_type(t):
            return None
        ports.append(Port(name, t))
    result = result_port(class_type)
    if result is not None and entry.get("output_node") is True and result[0] not in names:
        ports.append(Port(result[0], result[1], description="what the output node saved or shows"))
    return tuple(ports)
