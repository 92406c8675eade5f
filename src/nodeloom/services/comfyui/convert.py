"""ComfyUI's UI (save) format → its API format, as its own frontend makes it (`app.graphToPrompt().output`).

The frontend (comfyui-frontend-package 1.27, litegraph inside it) is the reference; this module follows the steps it
takes between `app.loadGraphData(workflow)` and `graphToPrompt()`:

1. Each node class becomes a list of widgets built from `/object_info`: one per widget input (INT, FLOAT, STRING,
   BOOLEAN, a combo, and the frontend's custom widget types) in `input_order` (required, then optional, then inputs
   the order does not name), plus the widgets that follow some of them — a `control_after_generate` combo after every
   input flagged so (and after INT inputs named `seed`/`noise_seed` that do not say otherwise), a filter text after a
   flagged combo, LoadImage's upload button, the audio player of audio nodes, the 3D viewers.
2. `widgets_values` is assigned to those widgets by position (a dict assigns nothing); a saved list that also holds
   values of `forceInput` inputs is first thinned out (`migrateWidgetsValues`).
3. PrimitiveNode copies its value onto the widget of every input it feeds; Reroute passes its input through;
   Note/MarkdownNote are dropped.
4. Every node that is neither frontend-only nor muted (mode 2) nor bypassed (mode 4) becomes an API node: its widget
   values by widget name (a list value wrapped as `{"__value__": [...]}`; prompts with `dynamicPrompts` and save
   nodes' `filename_prefix` processed as the frontend does), then each linked input as `[origin_id, slot]`, resolved
   through Reroutes and bypassed nodes (a bypassed node passes on its first input of the requested type); a link that
   ends on a muted node, or on nothing, is left out.

What the frontend converts but this module refuses (`comfyui_ui_unsupported`, naming the node): subgraphs, group
nodes, and active nodes of a class that `/object_info` lacks. Where it knowingly differs: a `{a|b}` choice of a
dynamic prompt keeps its first option (the frontend draws one at random on each queue), and `%date:yyyy-MM-dd%` in a
save node's file name prefix becomes ComfyUI's own `%year%-%month%-%day%` (the frontend writes the date it queues).
`runnable_prompt` then leaves out what muting took the life out of (nodes that lost a required input). Pure: no
I/O.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nodeloom.errors import ValidationFailed

MODE_NEVER = 2  # muted
MODE_BYPASS = 4

#: frontend-only nodes: no class in /object_info, never sent to the server
VIRTUAL_TYPES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})
#: the frontend renames these on load (app.loadGraphData)
RENAMED_TYPES = {"T2IAdapterLoader": "ControlNetLoader", "ConditioningAverage ": "ConditioningAverage",
                 "SDV_img2vid_Conditioning": "SVD_img2vid_Conditioning"}
#: save nodes whose `filename_prefix` gets the frontend's text replacements (saveImageExtraOutput.ts)
SAVE_NODE_TYPES = frozenset({"SaveImage", "SaveAnimatedWEBP", "SaveWEBM", "SaveAudio", "SaveGLB", "SaveAnimatedPNG",
                             "CLIPSave", "VAESave", "ModelSave", "LoraSave", "SaveLatent"})
AUDIO_UI_TYPES = frozenset({"LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus"})
#: widget types the frontend has a constructor for (scripts/widgets.ts and the core extensions)
WIDGET_TYPES = frozenset({
    "INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD", "FILEUPLOAD", "COLOR", "IMAGECOMPARE",
    "TREESELECT", "MULTISELECT", "CHART", "GALLERIA", "SELECTBUTTON", "TEXTAREA",
    "WEBCAM", "AUDIO_UI", "AUDIOUPLOAD", "AUDIO_RECORD", "LOAD_3D", "LOAD_3D_ANIMATION", "PREVIEW_3D",
    "PREVIEW_3D_ANIMATION",
})
CORE_WIDGET_TYPES = frozenset({"INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD", "FILEUPLOAD",
                               "COLOR", "IMAGECOMPARE", "TREESELECT", "MULTISELECT", "CHART", "GALLERIA",
                               "SELECTBUTTON", "TEXTAREA"})
SEED_NAMES = ("seed", "noise_seed")
#: the frontend's English names (its locale) for core classes whose /object_info gives no display_name
FRONTEND_DISPLAY_NAMES = {"ImageBlend": "Image Blend", "ImageBlur": "Image Blur", "ImageQuantize": "Image Quantize",
                          "ImageSharpen": "Image Sharpen", "ImageScaleToTotalPixels": "Scale Image to Total Pixels"}
UNSUPPORTED = "comfyui_ui_unsupported"


# --- the result -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    """The API-format prompt, and what the editor knew that the prompt does not say."""

    prompt: dict[str, dict[str, Any]]
    #: node id → input name → its `control_after_generate` mode ("fixed", "randomize", …), for the inputs that have
    #: one (a PrimitiveNode's control is credited to every input it feeds)
    controls: dict[str, dict[str, str]] = field(default_factory=dict)
    #: node id → the title the author gave it (only where one was given)
    titles: dict[str, str] = field(default_factory=dict)
    #: what the conversion dropped and why, in words for `importNotes`
    notes: list[str] = field(default_factory=list)
    #: (node id, input) of the links the frontend left out because they end on a muted node, or on a bypassed node
    #: or reroute that passes nothing
    cut: list[tuple[str, str]] = field(default_factory=list)


def runnable_prompt(conversion: Conversion, object_info: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]],
                                                                                     list[str]]:
    """The prompt without the nodes that muting took the life out of: a node that lost a *required* input to a
    cut link is left out, and so, in turn, is every node that required one of its outputs (ComfyUI would refuse
    them; it runs the outputs that remain). What `graphToPrompt` sends keeps them; nodeloom's validation would
    refuse the whole graph for them. Returns the prompt and a note per node left out."""
    cut = set(conversion.cut)
    removed: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for nid, node in conversion.prompt.items():
            if nid in removed:
                continue
            info = object_info.get(node["class_type"])
            required = ((info.get("input") or {}).get("required") or {}) if isinstance(info, Mapping) else {}
            for name in required:
                value = node["inputs"].get(name)
                lost_here = (nid, name) in cut and name not in node["inputs"]
                source = str(value[0]) if isinstance(value, list) and len(value) == 2 else None
                if lost_here or (source is not None and source in removed):
                    why = (f"its input '{name}' came from a muted or bypassed node that passes nothing" if lost_here
                           else f"its input '{name}' came from node {source}, which is left out")
                    removed[nid] = f"node {nid} ({node['class_type']}) is left out: {why}"
                    changed = True
                    break
    prompt: dict[str, dict[str, Any]] = {}
    for nid, node in conversion.prompt.items():
        if nid in removed:
            continue
        inputs = {name: value for name, value in node["inputs"].items()
                  if not (isinstance(value, list) and len(value) == 2 and str(value[0]) in removed)}
        prompt[nid] = {**node, "inputs": inputs}
    return prompt, [removed[nid] for nid in sorted(removed, key=lambda n: (0, int(n), n) if n.isdigit() else (1, 0, n))]


def unsupported(node: dict[str, Any] | None, message: str, path: str = "workflow") -> ValidationFailed:
    if node is not None:
        message = f"node {node.get('id')} ({node.get('type')}): {message}"
    return ValidationFailed(message, [{"path": path, "message": message}], code=UNSUPPORTED)


# --- widgets of a node class --------------------------------------------------------------------------------------


@dataclass
class Widget:
    name: str
    type: str  # the widget's input type (INT, COMBO, …) or what the frontend adds (control, filter, button, …)
    value: Any
    #: `widget.serialize !== false`: counted in `widgets_values`
    saved: bool = True
    #: `widget.options.serialize !== false`: sent in the prompt
    sent: bool = True
    spec: dict[str, Any] = field(default_factory=dict)
    control_of: Widget | None = None
    dynamic_prompts: bool = False
    multiline: bool = False


@dataclass(frozen=True)
class ClassModel:
    """What the frontend builds for one class: its widgets (fresh copies per node) and its inputs (slot names)."""

    name: str
    title: str
    specs: dict[str, dict[str, Any]]  # V2 input specs in Object.values order
    ordered: list[dict[str, Any]]  # getOrderedInputSpecs
    input_names: list[str]  # the node's input slots: sockets first, then widget inputs
    widget_inputs: frozenset[str]  # the input slots that stand for a widget
    input_types: dict[str, str]
    output_types: list[str]

    def widgets(self) -> list[Widget]:
        out: list[Widget] = []
        for spec in self.ordered:
            _add_widgets(self.name, spec, out)
        if self.name == "PreviewAny":  # previewAny.ts: a read-only text widget, not saved, still sent
            out.append(Widget("preview", "STRING", "", saved=False, multiline=True))
        return out


def _is_combo_v1(spec: list[Any]) -> bool:
    return isinstance(spec[0], list)


def _spec_v2(name: str, spec_v1: Any, optional: bool) -> dict[str, Any]:
    if not isinstance(spec_v1, (list, tuple)) or not spec_v1:
        return {"name": name, "type": "UNKNOWN", "isOptional": optional}
    options = spec_v1[1] if len(spec_v1) > 1 and isinstance(spec_v1[1], dict) else {}
    base = {"name": name, "isOptional": optional, **options}
    if isinstance(spec_v1[0], list):
        return {"type": "COMBO", **base, "options": spec_v1[0]}
    if spec_v1[0] == "COMBO":
        return {"type": "COMBO", **base, "options": options.get("options", [])}
    if isinstance(spec_v1[0], str):
        return {"type": spec_v1[0], **base}
    return {"type": "UNKNOWN", **base}


def _required_v1(class_type: str, info: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The class's required and optional V1 specs after the core extensions' `beforeRegisterNodeDef`."""
    inputs = info.get("input") or {}
    required = dict(inputs.get("required") or {})
    optional = dict(inputs.get("optional") or {})
    # Comfy.AudioWidget, then Comfy.UploadAudio (registered in that order)
    if class_type in AUDIO_UI_TYPES:
        required["audioUI"] = ["AUDIO_UI", {}]
    audio = required.get("audio")
    if isinstance(audio, list) and len(audio) > 1 and isinstance(audio[1], dict) and audio[1].get("audio_upload") is True:
        required["upload"] = ["AUDIOUPLOAD", {}]
    # Comfy.UploadImage: the first media combo gets an upload button
    for name, spec in list(required.items()):
        if not isinstance(spec, list) or len(spec) < 2 or not isinstance(spec[1], dict):
            continue
        opts = spec[1]
        if (opts.get("image_upload") is True or opts.get("video_upload") is True
                or opts.get("animated_image_upload") is True) and (_is_combo_v1(spec) or name == "COMBO"):
            required["upload"] = ["IMAGEUPLOAD", {**opts, "imageInputName": name}]
            break
    if class_type in ("Preview3D", "SaveGLB"):
        required["image"] = ["PREVIEW_3D"]
    elif class_type == "Preview3DAnimation":
        required["image"] = ["PREVIEW_3D_ANIMATION"]
    return required, optional


def class_model(class_type: str, info: Mapping[str, Any]) -> ClassModel:
    required, optional = _required_v1(class_type, info)
    specs: dict[str, dict[str, Any]] = {}
    for name, spec in required.items():
        specs[name] = _spec_v2(name, spec, False)
    for name, spec in optional.items():
        specs[name] = _spec_v2(name, spec, True)
    order = info.get("input_order")
    ordered: list[dict[str, Any]]
    if not order:
        ordered = list(specs.values())
    else:
        ordered = []
        for name in order.get("required") or []:
            if name in specs and not specs[name]["isOptional"]:
                ordered.append(specs[name])
        for name in order.get("optional") or []:
            if name in specs and specs[name]["isOptional"]:
                ordered.append(specs[name])
        seen = {s["name"] for s in ordered}
        ordered += [s for s in specs.values() if s["name"] not in seen]
    sockets: list[str] = []
    widget_inputs: list[str] = []
    for spec in ordered:
        # every widget input also gets an input slot (no core widget is `socketless`)
        is_widget = _widget_type(spec) in WIDGET_TYPES and not spec.get("forceInput")
        (widget_inputs if is_widget else sockets).append(spec["name"])
    title = info.get("display_name") or FRONTEND_DISPLAY_NAMES.get(class_type) or class_type
    outputs = [t if isinstance(t, str) else "COMBO" for t in (info.get("output") or [])]
    return ClassModel(class_type, str(title), specs, ordered, sockets + widget_inputs, frozenset(widget_inputs),
                      {n: str(specs[n]["type"]) for n in sockets + widget_inputs}, outputs)


def _widget_type(spec: dict[str, Any]) -> str:
    return str(spec.get("widgetType") or spec["type"])


def _add_widgets(class_type: str, spec: dict[str, Any], out: list[Widget], *, primitive: bool = False) -> None:
    kind = _widget_type(spec)
    if primitive:  # a PrimitiveNode builds its widget with the core constructors only, forceInput or not
        if kind not in CORE_WIDGET_TYPES:
            out.append(Widget(spec["name"], kind, None, spec=spec))
            return
    elif kind not in WIDGET_TYPES or spec.get("forceInput"):
        return
    name = spec["name"]
    if kind == "INT":
        value = spec.get("default")
        w = Widget(name, kind, 0 if value is None else value, spec=spec)
        out.append(w)
        control = spec.get("control_after_generate")
        if control is None:
            control = name in SEED_NAMES
        if control:
            out.append(Widget(_companion_name(spec, "control_after_generate"), "control", "randomize", sent=False, control_of=w))
    elif kind == "FLOAT":
        value = spec.get("default")
        out.append(Widget(name, kind, 0 if value is None else value, spec=spec))
    elif kind == "BOOLEAN":
        value = spec.get("default")
        out.append(Widget(name, kind, False if value is None else value, spec=spec))
    elif kind in ("STRING", "TEXTAREA"):
        value = spec.get("default")
        out.append(Widget(name, kind, "" if value is None else value, spec=spec,
                          dynamic_prompts=spec.get("dynamicPrompts") is True,
                          multiline=bool(spec.get("multiline")) or kind == "TEXTAREA"))
    elif kind == "COMBO":
        options = spec.get("options") or []
        if spec.get("multi_select"):
            out.append(Widget(name, kind, [], spec=spec))
            return
        default = spec.get("default")
        if not default:
            default = options[0] if options else ("Loading..." if spec.get("remote") else None)
        w = Widget(name, kind, default, spec=spec)
        out.append(w)
        remote = spec.get("remote")
        if remote:  # useRemoteWidget: an auto-refresh toggle, and a refresh button where asked
            out.append(Widget("Auto-refresh after generation", "toggle", False, sent=False))
            if isinstance(remote, dict) and remote.get("refresh_button"):
                out.append(Widget("refresh", "button", "refresh"))
        if spec.get("control_after_generate"):
            out.append(Widget(_companion_name(spec, "control_after_generate"), "control", "randomize", sent=False, control_of=w))
            out.append(Widget(_companion_name(spec, "control_filter_list"), "filter", "", sent=False))
    elif kind in ("IMAGEUPLOAD", "AUDIOUPLOAD"):
        out.append(Widget(name, "button", "image" if kind == "IMAGEUPLOAD" else "", sent=False))
    elif kind == "AUDIO_UI":
        out.append(Widget(name, "audio_ui", "", saved=False))
    elif kind == "LOAD_3D":
        for button, value in (("upload 3d model", "upload3dmodel"), ("upload extra resources", "uploadExtraResources"),
                              ("clear", "clear")):
            out.append(Widget(button, "button", value))
        out.append(Widget(name, kind, None, spec=spec))
    else:
        out.append(Widget(name, kind, spec.get("default"), spec=spec))


def _companion_name(spec: dict[str, Any], key: str) -> str:
    """The name of the widget the frontend adds after an input (`control_after_generate`, `control_filter_list`):
    the name the spec gives it, else the key, behind the spec's `control_prefix` when it has one."""
    named = spec.get(key)
    if isinstance(named, str):
        return named
    if spec.get("control_prefix"):
        return f"{spec['control_prefix']} {key}"
    return key


def _migrate_widgets_values(model: ClassModel, widgets: list[Widget], values: list[Any]) -> list[Any]:
    """litegraphUtil.migrateWidgetsValues: a saved list that holds one value per original widget input (two where
    a control follows) loses the values of `forceInput` inputs."""
    names = {w.name for w in widgets}
    originals = [s for s in model.specs.values() if s["name"] in names or s.get("forceInput")]
    count = sum(2 if (s.get("control_after_generate") or s["name"] in SEED_NAMES) else 1 for s in originals)
    if count != len(values):
        return values
    kept = []
    for i in range(max(len(originals), len(values))):
        spec = originals[i] if i < len(originals) else None
        if spec is not None and spec.get("forceInput"):
            continue
        kept.append(values[i] if i < len(values) else None)
    return kept


# --- the graph as the frontend holds it ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkRecord:
    id: Any
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: Any


@dataclass
class Slot:
    name: str
    type: Any
    link: Any = None
    widget: str | None = None


@dataclass
class GNode:
    id: str
    raw: dict[str, Any]
    type: str
    mode: int
    title: str
    titled: bool
    virtual: bool
    inputs: list[Slot]
    outputs: list[dict[str, Any]]
    widgets: list[Widget]
    model: ClassModel | None
    properties: dict[str, Any]


def _links(workflow: dict[str, Any]) -> dict[str, LinkRecord]:
    links: dict[str, LinkRecord] = {}
    for raw in workflow.get("links") or []:
        if isinstance(raw, list) and len(raw) >= 5:
            rec = LinkRecord(raw[0], str(raw[1]), _int(raw[2]), str(raw[3]), _int(raw[4]),
                             raw[5] if len(raw) > 5 else None)
        elif isinstance(raw, dict):
            rec = LinkRecord(raw.get("id"), str(raw.get("origin_id")), _int(raw.get("origin_slot")),
                             str(raw.get("target_id")), _int(raw.get("target_slot")), raw.get("type"))
        else:
            continue
        links[_key(rec.id)] = rec
    return links


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _key(link_id: Any) -> str:
    return str(link_id)


def _js_string(value: Any) -> str:
    """What a textarea's value reads back after `textarea.value = value`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, (list, dict)):
        return _js_join(value) if isinstance(value, list) else "[object Object]"
    text = str(value)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _js_join(items: list[Any]) -> str:
    return ",".join("" if item is None else _js_string(item) for item in items)


def _build_node(raw: dict[str, Any], object_info: Mapping[str, Any], models: dict[str, ClassModel],
                groups: set[str], subgraphs: set[str], notes: list[str]) -> GNode:
    nid = str(raw.get("id"))
    node_type = str(raw.get("type"))
    node_type = RENAMED_TYPES.get(node_type, node_type)
    raw_mode = raw.get("mode")
    mode = raw_mode if isinstance(raw_mode, int) else 0
    raw_title = raw.get("title")
    titled = isinstance(raw_title, str) and bool(raw_title)
    title = str(raw_title) if titled else ""
    if node_type in subgraphs:
        raise unsupported(raw, "subgraphs are not supported: convert the subgraph back to nodes in ComfyUI "
                               "(or export the API format) and import again")
    if node_type in groups or node_type.startswith("workflow>") or node_type.startswith("workflow/"):
        raise unsupported(raw, "group nodes are not supported: convert the group node back to nodes in ComfyUI "
                               "(or export the API format) and import again")
    raw_inputs = [i for i in (raw.get("inputs") or []) if isinstance(i, dict)]
    outputs = [o if isinstance(o, dict) else {} for o in (raw.get("outputs") or [])]
    raw_properties = raw.get("properties")
    properties: dict[str, Any] = dict(raw_properties) if isinstance(raw_properties, dict) else {}
    if node_type in VIRTUAL_TYPES:
        inputs = [Slot(str(i.get("name", "")), i.get("type"), i.get("link")) for i in raw_inputs]
        if node_type == "Reroute" and not inputs:
            inputs = [Slot("", "*", None)]
        return GNode(nid, raw, node_type, mode, title if titled else node_type, titled, True, inputs, outputs, [],
                     None, properties)
    info = object_info.get(node_type)
    if not isinstance(info, Mapping):
        if mode in (MODE_NEVER, MODE_BYPASS):
            # the frontend keeps a placeholder; bypassed it still passes its inputs through
            inputs = [Slot(str(i.get("name", "")), i.get("type"), i.get("link")) for i in raw_inputs]
            notes.append(f"node {nid} ({node_type}) is {'muted' if mode == MODE_NEVER else 'bypassed'} and of a "
                         "type this server does not have: left out")
            return GNode(nid, raw, node_type, mode, title if titled else node_type, titled, False, inputs, outputs,
                         [], None, properties)
        raise unsupported(raw, f"node type '{node_type}' is not available on the ComfyUI servers "
                               "(a custom node that is not installed, or not allowed)")
    if "Node name for S&R" not in properties and node_type not in SAVE_NODE_TYPES:
        properties = {**properties, "Node name for S&R": node_type}  # saveImageExtraOutput.ts
    model = models.get(node_type)
    if model is None:
        model = models[node_type] = class_model(node_type, info)
    by_name = {str(i.get("name")): i for i in raw_inputs}
    defined = set(model.input_names)
    inputs = []
    for name in model.input_names:
        data = by_name.get(name)
        widget = name if name in model.widget_inputs else None
        inputs.append(Slot(name, model.input_types.get(name), data.get("link") if data else None, widget))
    for name, data in by_name.items():
        if name not in defined:
            inputs.append(Slot(name, data.get("type"), data.get("link"),
                               (data.get("widget") or {}).get("name") if isinstance(data.get("widget"), dict) else None))
    widgets = model.widgets()
    values = raw.get("widgets_values")
    if isinstance(values, list):
        values = _migrate_widgets_values(model, widgets, values)
        saved = [w for w in widgets if w.saved]
        for i, value in enumerate(values):
            if i < len(saved):
                _set_value(saved[i], value)
    # app.loadGraphData patches
    for w in widgets:
        if node_type in ("KSampler", "KSamplerAdvanced") and w.name == "sampler_name" \
                and isinstance(w.value, str) and w.value.startswith("sample_"):
            w.value = w.value[7:]
        if node_type in ("KSampler", "KSamplerAdvanced") and w.type == "control" and isinstance(w.value, bool):
            w.value = "randomize" if w.value else "fixed"
    return GNode(nid, raw, node_type, mode, title if titled else model.title, titled, False, inputs, outputs, widgets,
                 model, properties)


def _set_value(widget: Widget, value: Any) -> None:
    if widget.multiline or widget.type == "audio_ui":
        widget.value = _js_string(value)
    else:
        widget.value = value


# --- conversion -----------------------------------------------------------------------------------------------------


def ui_to_api(workflow: dict[str, Any], object_info: Mapping[str, Any]) -> Conversion:
    """Convert a UI-format workflow into the API-format prompt the ComfyUI frontend would queue."""
    try:
        return _convert(workflow, object_info)
    except RecursionError:
        raise unsupported(None, "the workflow nests too deeply (chains of reroutes or bypassed nodes, or a dynamic "
                                "prompt, thousands deep)") from None


def _convert(workflow: dict[str, Any], object_info: Mapping[str, Any]) -> Conversion:
    graph = _build_graph(workflow, object_info)
    notes = graph.notes
    cut: list[tuple[str, str]] = []
    controls: dict[str, dict[str, str]] = {}
    graph.configure_primitives(controls)
    for nid in graph.execution_order():
        if graph.nodes[nid].virtual:
            graph.apply_primitive(graph.nodes[nid])
    prompt: dict[str, dict[str, Any]] = {}
    titles: dict[str, str] = {}
    for nid in graph.execution_order():
        node = graph.nodes[nid]
        if node.virtual:
            continue
        if node.mode == MODE_NEVER:
            notes.append(f"node {nid} ({node.type}) is muted: left out")
            continue
        if node.mode == MODE_BYPASS:
            notes.append(f"node {nid} ({node.type}) is bypassed: its inputs are passed through")
            continue
        inputs: dict[str, Any] = {}
        for w in node.widgets:
            if not w.name or not w.sent:
                continue
            value = _serialize_value(node, w, graph)
            inputs[w.name] = {"__value__": value} if isinstance(value, list) else value
        for w in node.widgets:  # a PrimitiveNode's control, recorded first, wins over the widget's own
            if w.type == "control" and w.control_of is not None and isinstance(w.value, str):
                controls.setdefault(nid, {}).setdefault(w.control_of.name, w.value)
        for i, slot in enumerate(node.inputs):
            resolved = graph.resolve_input(node, i, set())
            if resolved is not None:
                inputs[slot.name] = [resolved[0], resolved[1]]
            elif slot.link is not None and slot.name not in inputs:
                cut.append((nid, slot.name))  # linked to something that passes nothing
        prompt[nid] = {"inputs": inputs, "class_type": node.type, "_meta": {"title": node.title}}
        if node.titled:
            titles[nid] = node.title
    # graphToPrompt: "Remove inputs connected to removed nodes"
    for nid, api_node in prompt.items():
        for name, value in list(api_node["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and value[0] not in prompt:
                del api_node["inputs"][name]
                cut.append((nid, name))
    if not prompt:
        raise unsupported(None, "the workflow has no node that ComfyUI would run")
    controls = {nid: c for nid, c in controls.items() if nid in prompt}
    return Conversion(prompt, controls, titles, notes, cut)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _build_graph(workflow: dict[str, Any], object_info: Mapping[str, Any]) -> _Graph:
    """The graph as the frontend holds it after `loadGraphData`: every node with its input slots and widgets, its
    widgets holding the saved values."""
    notes: list[str] = []
    definitions = _object(workflow.get("definitions"))
    subgraphs = {str(s.get("id")) for s in (definitions.get("subgraphs") or []) if isinstance(s, dict)}
    group_nodes = _object(_object(workflow.get("extra")).get("groupNodes"))
    groups = {f"workflow>{name}" for name in group_nodes} | {f"workflow/{name}" for name in group_nodes}
    models: dict[str, ClassModel] = {}
    nodes: dict[str, GNode] = {}
    order: list[str] = []
    for i, raw in enumerate(workflow.get("nodes") or []):
        if not isinstance(raw, dict):
            raise unsupported(None, f"nodes[{i}] is not a node", f"workflow.nodes[{i}]")
        node = _build_node(raw, object_info, models, groups, subgraphs, notes)
        if node.id in nodes:
            raise unsupported(raw, "duplicate node id", f"workflow.nodes[{i}].id")
        nodes[node.id] = node
        order.append(node.id)
    return _Graph(nodes, _links(workflow), order, notes)


def _serialize_value(node: GNode, widget: Widget, graph: _Graph) -> Any:
    value = widget.value
    if widget.dynamic_prompts and isinstance(value, str):
        return process_dynamic_prompt(value)
    if widget.name == "filename_prefix" and node.type in SAVE_NODE_TYPES:
        return apply_text_replacements(graph, "" if value is None else str(value))
    return value


class _Graph:
    def __init__(self, nodes: dict[str, GNode], links: dict[str, LinkRecord], order: list[str], notes: list[str]):
        self.nodes = nodes
        self.notes = notes
        self.links = links
        self.order = order
        self._execution_order: list[str] | None = None

    def link(self, link_id: Any) -> LinkRecord | None:
        if link_id is None:
            return None
        return self.links.get(_key(link_id))

    def execution_order(self) -> list[str]:
        """A topological order (LGraph.computeExecutionOrder: nodes without inputs first, then by links)."""
        if self._execution_order is None:
            indegree = {nid: 0 for nid in self.order}
            children: dict[str, list[str]] = {nid: [] for nid in self.order}
            for nid in self.order:
                for slot in self.nodes[nid].inputs:
                    rec = self.link(slot.link)
                    if rec is not None and rec.origin_id in self.nodes and rec.origin_id != nid:
                        indegree[nid] += 1
                        children[rec.origin_id].append(nid)
            ready = deque(nid for nid in self.order if indegree[nid] == 0)
            out: list[str] = []
            while ready:
                nid = ready.popleft()
                out.append(nid)
                for child in children[nid]:
                    indegree[child] -= 1
                    if indegree[child] == 0:
                        ready.append(child)
            placed = set(out)
            out += [nid for nid in self.order if nid not in placed]  # on a cycle: in the file's order
            self._execution_order = out
        return self._execution_order

    # PrimitiveNode (widgetInputs.ts) ----------------------------------------------------------------------------

    def _primitive_links(self, node: GNode) -> list[LinkRecord]:
        """The links of a PrimitiveNode's output, as the link fixer leaves them: those the output lists, plus
        those whose target input names them."""
        listed = node.outputs[0].get("links") if node.outputs else None
        ids = [lid for lid in (listed or []) if lid is not None]
        recs = []
        for lid in ids:
            rec = self.link(lid)
            if rec is not None:
                recs.append(rec)
        known = {_key(r.id) for r in recs}
        for rec in self.links.values():
            if rec.origin_id == node.id and _key(rec.id) not in known:
                target = self.nodes.get(rec.target_id)
                if target is not None and any(_key(s.link) == _key(rec.id) for s in target.inputs if s.link is not None):
                    recs.append(rec)
                    known.add(_key(rec.id))
        # a listed link whose target input holds a different link is dropped by the fixer
        kept = []
        for rec in recs:
            target = self.nodes.get(rec.target_id)
            slot = self._target_slot(rec)
            if target is None:
                continue
            if slot is not None and slot.link is not None and _key(slot.link) != _key(rec.id):
                continue
            kept.append(rec)
        return kept

    def _target_slot(self, rec: LinkRecord) -> Slot | None:
        """The input a link ends on: found by the link id (fixLinkInputSlots), else by its slot index."""
        target = self.nodes.get(rec.target_id)
        if target is None:
            return None
        for slot in target.inputs:
            if slot.link is not None and _key(slot.link) == _key(rec.id):
                return slot
        if 0 <= rec.target_slot < len(target.inputs):
            return target.inputs[rec.target_slot]
        return None

    def configure_primitives(self, controls: dict[str, dict[str, str]]) -> None:
        """onAfterGraphConfigured: a connected PrimitiveNode takes its widget (and a control for numbers and
        combos) from the first input it feeds, then its saved values; numbers are clamped to the inputs' range."""
        for nid in self.order:
            node = self.nodes[nid]
            if node.type != "PrimitiveNode":
                continue
            listed = (node.outputs[0].get("links") if node.outputs else None) or []
            if not listed:
                continue
            first = self.link(listed[0])
            target = self.nodes.get(first.target_id) if first is not None else None
            slot = self._target_slot(first) if first is not None else None
            if target is None or slot is None or slot.widget is None or target.model is None:
                continue
            theirs = next((w for w in target.widgets if w.name == slot.widget), None)
            spec = target.model.specs.get(slot.widget)
            if spec is None:
                continue
            widgets: list[Widget] = []
            _add_widgets("PrimitiveNode", spec, widgets, primitive=True)
            if not widgets:
                continue
            value_widget = widgets[0]
            value_widget.value = theirs.value if theirs is not None else value_widget.value
            values = node.raw.get("widgets_values")
            values = values if isinstance(values, list) else None
            kind = _widget_type(spec)
            display = _display_type(spec)
            if not spec.get("control_after_generate") and display in ("number", "combo"):
                control = values[1] if values is not None and len(values) > 1 and values[1] else "fixed"
                widgets.append(Widget("control_after_generate", "control", control, sent=False,
                                      control_of=value_widget))
                if kind == "COMBO":
                    widgets.append(Widget("control_filter_list", "filter", "", sent=False))
                    if values is not None and len(values) > 2 and values[2] and len(widgets) == 3:
                        widgets[2].value = values[2]
            if values is not None:
                for i, value in enumerate(values):
                    if i < len(widgets):
                        _set_value(widgets[i], value)
            if kind in ("INT", "FLOAT"):
                merged = self._merged_number_spec(node, spec)
                if merged is not None:
                    _clamp(value_widget, merged)
                    value_widget.spec = merged
                    _widget_callback(value_widget)
            for w in widgets:  # app.loadGraphData
                if w.type == "control" and isinstance(w.value, bool):
                    w.value = "randomize" if w.value else "fixed"
            node.widgets = widgets
            mode = next((w.value for w in widgets if w.type == "control" and isinstance(w.value, str)), None)
            if mode is not None:
                for rec in self._primitive_links(node):
                    tslot = self._target_slot(rec)
                    if tslot is not None and tslot.widget is not None:
                        controls.setdefault(rec.target_id, {})[tslot.widget] = mode

    def _merged_number_spec(self, node: GNode, spec: dict[str, Any]) -> dict[str, Any] | None:
        """nodeDefUtil.mergeInputSpec over every input the PrimitiveNode feeds (None where they do not merge)."""
        merged: dict[str, Any] | None = dict(spec)
        for rec in self._primitive_links(node):
            target = self.nodes.get(rec.target_id)
            slot = self._target_slot(rec)
            if target is None or slot is None or slot.widget is None or target.model is None:
                continue
            other = target.model.specs.get(slot.widget)
            if other is None or merged is None:
                return None
            merged = _merge_numeric(merged, other)
        return merged

    def apply_primitive(self, node: GNode) -> None:
        if node.type != "PrimitiveNode" or not node.widgets:
            return
        value = node.widgets[0].value
        if value and node.properties.get("Run widget replace on values") and isinstance(value, str):
            value = apply_text_replacements(self, value)
        for rec in self._primitive_links(node):
            target = self.nodes.get(rec.target_id)
            slot = self._target_slot(rec)
            if target is None or slot is None or slot.widget is None:
                continue
            widget = next((w for w in target.widgets if w.name == slot.widget), None)
            if widget is None:
                continue
            _set_value(widget, value)
            _widget_callback(widget)

    # link resolution (ExecutableNodeDTO) -------------------------------------------------------------------------

    def resolve_input(self, node: GNode, index: int, visited: set[str],
                      want: Any = None) -> tuple[str, int] | None:
        key = f"{node.id}[I]{index}"
        if key in visited:
            raise unsupported(node.raw, "a circular link through reroutes or bypassed nodes")
        visited.add(key)
        if index >= len(node.inputs):
            return None
        slot = node.inputs[index]
        if slot.link is None:
            return None
        rec = self.link(slot.link)
        if rec is None:
            raise unsupported(node.raw, f"input '{slot.name}' names link {slot.link}, which the workflow lacks")
        origin = self.nodes.get(rec.origin_id)
        if origin is None:
            raise unsupported(node.raw, f"input '{slot.name}' is linked to node {rec.origin_id}, which the "
                                        "workflow lacks")
        return self.resolve_output(origin, rec.origin_slot, want if want is not None else slot.type, visited)

    def resolve_output(self, node: GNode, slot: int, want: Any, visited: set[str]) -> tuple[str, int] | None:
        key = f"{node.id}[O]{slot}"
        if key in visited:
            raise unsupported(node.raw, "a circular link through reroutes or bypassed nodes")
        visited.add(key)
        if node.mode == MODE_BYPASS:
            index = self._bypass_slot(node, slot, want)
            if index == -1:
                return None
            return self.resolve_input(node, index, visited)
        if node.virtual:
            if slot < len(node.inputs):
                return self.resolve_input(node, slot, visited, want)
            return None
        return (node.id, slot)

    def _bypass_slot(self, node: GNode, slot: int, want: Any) -> int:
        inputs = node.inputs
        opposite = inputs[slot] if slot < len(inputs) else None
        out_type = self._output_type(node, slot)
        if want == "*" or want == "" or want is None:
            return slot if len(inputs) > slot else 0
        if opposite is not None and valid_connection(opposite.type, out_type) and valid_connection(opposite.type, want):
            return slot
        for i, s in enumerate(inputs):
            if s.type == want:
                return i
        for i, s in enumerate(inputs):
            if valid_connection(s.type, out_type) and valid_connection(s.type, want):
                return i
        return -1

    def _output_type(self, node: GNode, slot: int) -> Any:
        if node.model is not None and slot < len(node.model.output_types):
            return node.model.output_types[slot]
        if slot < len(node.outputs):
            return node.outputs[slot].get("type")
        return None


def valid_connection(a: Any, b: Any) -> bool:
    """LiteGraph.isValidConnection."""
    a = 0 if a in ("", "*") else a
    b = 0 if b in ("", "*") else b
    if not a or not b or a == b:
        return True
    sa, sb = str(a).lower(), str(b).lower()
    if "," not in sa and "," not in sb:
        return sa == sb
    return any(valid_connection(x, y) for x in sa.split(",") for y in sb.split(","))


def _display_type(spec: dict[str, Any]) -> str:
    """The litegraph widget type a spec gets: number, slider, knob, combo, …"""
    kind = _widget_type(spec)
    if kind in ("INT", "FLOAT"):
        display = spec.get("display")
        return "slider" if display == "slider" else "knob" if display == "knob" else "number"
    return "combo" if kind == "COMBO" else kind.lower()


_MERGE_IGNORED = frozenset({"default", "forceInput", "defaultInput", "control_after_generate", "multiline", "tooltip",
                            "dynamicPrompts"})


def _bound(spec: dict[str, Any], key: str, missing: float) -> float:
    value = spec.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else missing


def _merge_numeric(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    if a.get("type") != b.get("type"):
        return None
    lo1, hi1 = _bound(a, "min", -math.inf), _bound(a, "max", math.inf)
    lo2, hi2 = _bound(b, "min", -math.inf), _bound(b, "max", math.inf)
    if lo1 > hi2 or hi1 < lo2:
        return None
    step = math.lcm(int(a.get("step") or 1), int(b.get("step") or 1)) \
        if float(a.get("step") or 1).is_integer() and float(b.get("step") or 1).is_integer() else a.get("step") or 1
    common = {"min": _number(max(lo1, lo2)), "max": _number(min(hi1, hi2)), "step": step}
    o1, o2 = {**a, **common}, {**b, **common}
    for key in set(o1) | set(o2):
        if key in _MERGE_IGNORED:
            continue
        if o1.get(key) != o2.get(key):
            return None
    return {**o1, **o2}


def _number(value: float) -> float | int:
    return int(value) if math.isfinite(value) and value.is_integer() else value


def _clamp(widget: Widget, spec: dict[str, Any]) -> None:
    """mergeIfValid: the recreated widget's value kept within its options' min (default 0) and max (2048)."""
    lo, hi = _bound(spec, "min", 0.0), _bound(spec, "max", 2048.0)
    value = widget.value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < lo:
            widget.value = _number(lo)
        elif value > hi:
            widget.value = _number(hi)


def _widget_callback(widget: Widget) -> None:
    """The widget's callback after a PrimitiveNode set its value: INT rounds to its step (useIntWidget
    onValueChange), FLOAT to its rounding and precision within its range (useFloatWidget onFloatValueChange)."""
    value = widget.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    spec = widget.spec
    if widget.type == "INT":
        step = _bound(spec, "step", 1.0) or 1.0
        if step == 1:
            widget.value = _js_round(value)
        else:
            offset = math.fmod(_bound(spec, "min", 0.0), step)
            widget.value = _number(_js_round((value - offset) / step) * step + offset)
    elif widget.type == "FLOAT":
        step = _bound(spec, "step", 0.5)
        precision = max(0, -math.floor(math.log10(step))) if step > 0 else 0
        round_to = _bound(spec, "round", 0.0)
        if precision and not round_to:
            round_to = 10.0 ** -precision
        if round_to:
            rounded = float(f"{_js_round(value / round_to) * round_to:.{precision}f}")
            rounded = max(_bound(spec, "min", 0.0), min(_bound(spec, "max", 2048.0), rounded))
            widget.value = _number(rounded)


def _js_round(value: float) -> int:
    return math.floor(value + 0.5)


# --- the frontend's text processing -------------------------------------------------------------------------------

_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//.*")


def process_dynamic_prompt(text: str) -> str:
    """formatUtil.processDynamicPrompt, with one difference: where the frontend picks one option of `{a|b|c}` at
    random each time it queues, this keeps the first (an imported workflow must convert the same way every time)."""
    source = _COMMENTS.sub("", text)
    pos = 0

    def escape() -> str:
        nonlocal pos
        nxt = source[pos] if pos < len(source) else "undefined"
        pos += 1
        return "\\" + nxt

    def choice_block() -> str:
        nonlocal pos
        options: list[str] = []
        choice = ""
        depth = 0
        while pos < len(source):
            char = source[pos]
            pos += 1
            if char == "\\":
                choice += escape()
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                if not depth:
                    break
                depth -= 1
            elif char == "|" and not depth:
                options.append(choice)
                choice = ""
                continue
            choice += char
        options.append(choice)
        return process_dynamic_prompt(options[0])

    result = ""
    while pos < len(source):
        char = source[pos]
        pos += 1
        if char == "\\":
            result += escape()
        elif char == "{":
            result += choice_block()
        else:
            result += char
    return re.sub(r"\\([{}|])", r"\1", result)


_REPLACEMENT = re.compile(r"%([^%]+)%")
_UNSAFE_FILENAME = re.compile(r'[/?<>\\:*|"\x00-\x1f\x7f]')


def apply_text_replacements(graph: _Graph, value: str) -> str:
    """searchAndReplace.applyTextReplacements: `%Node name.widget%` becomes that widget's value. `%date:…%` is left
    as written (the frontend writes the date of the moment it queues; ComfyUI itself leaves it)."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(1)
        parts = text.split(".")
        if len(parts) != 2:
            if parts[0].startswith("date:"):
                return _date_to_server_variables(match.group(0), parts[0][5:])
            return match.group(0)
        nodes = [n for n in (graph.nodes[i] for i in graph.order) if n.properties.get("Node name for S&R") == parts[0]]
        if not nodes:
            nodes = [n for n in (graph.nodes[i] for i in graph.order) if n.title == parts[0]]
        if not nodes:
            return match.group(0)
        widget = next((w for w in nodes[0].widgets if w.name == parts[1]), None)
        if widget is None:
            return match.group(0)
        shown = "" if widget.value is None else _js_string(widget.value)
        return _UNSAFE_FILENAME.sub("_", shown)

    return _REPLACEMENT.sub(replace, value)


_DATE_TOKENS = re.compile(r"dd?|MM?|hh?|mm?|ss?|yyy?y?")
_SERVER_DATE_VARIABLES = {"yyyy": "%year%", "MM": "%month%", "dd": "%day%", "hh": "%hour%", "mm": "%minute%",
                          "ss": "%second%"}


def _date_to_server_variables(written: str, pattern: str) -> str:
    """`%date:yyyy-MM-dd%` → `%year%-%month%-%day%`, which ComfyUI's save nodes fill in with the date of each run (the
    frontend writes the date of the moment it queues, which an imported workflow must not freeze). A pattern with
    other tokens (`yy`, `d`, …) is left as written."""
    tokens = _DATE_TOKENS.findall(pattern)
    if not tokens or any(t not in _SERVER_DATE_VARIABLES for t in tokens):
        return written
    return _DATE_TOKENS.sub(lambda m: _SERVER_DATE_VARIABLES[m.group(0)], pattern)
