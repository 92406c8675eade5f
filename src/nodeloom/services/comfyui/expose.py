"""A ComfyUI API-format prompt → a nodeloom graph with exposed inputs and outputs (API.md "ComfyUI workflows").

Every ComfyUI node becomes a node of type `comfyui.<class_type>` whose `inputs` are ComfyUI's inputs: literals as
they are, links as `{"from": id, "output": port}` with the source's output names lower-cased (`_2`, `_3` … where a
name repeats). Exposed inputs become `input.*` nodes linked in place of the literal they replace (which becomes their
default); exposed outputs become `output.*` nodes linked from the port that carries an output node's results
(`result_port`). `import_notes` says what was exposed and why, and what was not.

Pure: no I/O. Problems → ValidationFailed (422) with `details[{path, message}]`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nodeloom.errors import ValidationFailed
from nodeloom.services.comfyui.convert import FRONTEND_DISPLAY_NAMES, Conversion, runnable_prompt, ui_to_api
from nodeloom.services.comfyui.formats import ParsedWorkflow, check_api, is_api_format, is_api_link

NODE_TYPE_PREFIX = "comfyui."
#: input.seed's range (nodes/workflow_io.py); a fixed seed above it is exposed as a plain integer
SEED_MAX = 2**32 - 1
MAX_NAME = 64
#: samplers whose prompts, seed and latent size the default rules expose (when the workflow has exactly one)
SAMPLERS = frozenset({"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"})
#: output node class → (kind, nodeloom type of its results)
OUTPUT_KINDS: dict[str, tuple[str, str]] = {
    "SaveImage": ("image", "list<image>"), "PreviewImage": ("image", "list<image>"),
    "MaskPreview": ("image", "list<image>"),
    "SaveAnimatedWEBP": ("image", "image"), "SaveAnimatedPNG": ("image", "image"),
    "SaveVideo": ("video", "video"), "SaveWEBM": ("video", "video"),
    "SaveAudio": ("audio", "audio"), "SaveAudioMP3": ("audio", "audio"), "SaveAudioOpus": ("audio", "audio"),
    "PreviewAudio": ("audio", "audio"),
    "PreviewAny": ("text", "text"),
}
#: the nodeloom output node for each result type, and its input port
OUTPUT_NODES = {"list<image>": ("output.image", "image"), "image": ("output.image", "image"),
                "video": ("output.video", "video"), "audio": ("output.audio", "audio"), "text": ("output.text", "text")}
#: the port a ComfyUI output node's results leave by, per result type
RESULT_PORTS = {"list<image>": "images", "image": "image", "video": "video", "audio": "audio", "text": "text"}
#: a loader's upload flag (on its file combo) → what kind of file it loads
UPLOAD_FLAGS = {"image_upload": "image", "animated_image_upload": "image", "video_upload": "video",
                "audio_upload": "audio"}
#: nodeloom input node type per kind of value: (type, its output port)
INPUT_NODES = {"image": ("input.image", "image"), "video": ("input.video", "video"), "audio": ("input.audio", "audio"),
               "text": ("input.text", "text"), "integer": ("input.integer", "value"),
               "number": ("input.number", "value"), "boolean": ("input.boolean", "value"),
               "select": ("input.select", "value"), "seed": ("input.seed", "value"), "json": ("input.json", "value"),
               "mask": ("input.image", "image")}
#: ComfyUI socket types an explicit mapping may expose as a media input
MEDIA_SOCKETS = {"IMAGE": "image", "MASK": "mask", "VIDEO": "video", "AUDIO": "audio"}


@dataclass(frozen=True)
class ExposedInput:
    name: str
    node: str
    input: str
    kind: str  # a key of INPUT_NODES
    default: Any = None
    required: bool = False
    minimum: Any = None
    maximum: Any = None
    options: list[Any] | None = None
    randomize: bool = False


@dataclass(frozen=True)
class ExposedOutput:
    name: str
    node: str
    type: str  # the nodeloom type of the results: list<image>, image, video, audio, text


@dataclass(frozen=True)
class ImportResult:
    """What an import makes: the graph for `POST /api/v1/workflows` and the notes for `importNotes`."""

    graph: dict[str, Any]
    import_notes: list[str]
    prompt: dict[str, dict[str, Any]]  # the API-format prompt the graph was made from
    inputs: list[ExposedInput] = field(default_factory=list)
    outputs: list[ExposedOutput] = field(default_factory=list)


# --- ports ----------------------------------------------------------------------------------------------------------


def output_port_names(class_info: Mapping[str, Any]) -> list[str]:
    """A class's output ports in nodeloom: ComfyUI's output names lower-cased, `_2`, `_3` … where a name repeats."""
    names = class_info.get("output_name") or class_info.get("output") or []
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(names):
        base = str(raw if isinstance(raw, str) and raw else f"output_{i}").lower()
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return out


def result_port(class_type: str) -> tuple[str, str] | None:
    """The extra output port by which a ComfyUI output node's results (its saved files, or PreviewAny's text) leave
    the `comfyui.<class_type>` node: (port name, nodeloom type), or None for classes whose results are not exposed."""
    kind = OUTPUT_KINDS.get(class_type)
    return (RESULT_PORTS[kind[1]], kind[1]) if kind else None


def node_type(class_type: str) -> str:
    return NODE_TYPE_PREFIX + class_type


# --- entry points ---------------------------------------------------------------------------------------------------


def import_workflow(parsed: ParsedWorkflow, object_info: Mapping[str, Any], *,
                    inputs: Mapping[str, Any] | None = None, outputs: Mapping[str, Any] | None = None) -> ImportResult:
    """An upload in any of the three shapes (formats.parse_upload) → the graph to store, with its notes."""
    notes: list[str] = []
    conversion: Conversion | None = None
    if parsed.shape == "ui":
        assert parsed.ui is not None
        conversion = ui_to_api(parsed.ui, object_info)
        prompt, left_out = runnable_prompt(conversion, object_info)
        notes.append("converted from ComfyUI's UI format as its frontend would queue it")
        notes += conversion.notes + left_out
        if not prompt:
            raise ValidationFailed("nothing in the workflow would run: muted nodes feed every node",
                                   [{"path": "workflow", "message": "every node depends on a muted node"}])
    else:
        assert parsed.api is not None
        prompt = parsed.api
        if parsed.ui is not None:  # a PNG: the editor graph beside the prompt tells titles and seed controls
            try:
                conversion = ui_to_api(parsed.ui, object_info)
            except ValidationFailed:
                conversion = None
    controls = conversion.controls if conversion is not None else None
    titles = conversion.titles if conversion is not None else None
    result = expose(prompt, object_info, inputs=inputs, outputs=outputs, controls=controls, titles=titles)
    return ImportResult(result.graph, notes + result.import_notes, result.prompt, result.inputs, result.outputs)


def expose(prompt: Mapping[str, Any], object_info: Mapping[str, Any], *, inputs: Mapping[str, Any] | None = None,
           outputs: Mapping[str, Any] | None = None, controls: Mapping[str, Mapping[str, str]] | None = None,
           titles: Mapping[str, str] | None = None) -> ImportResult:
    """An API-format prompt → a nodeloom graph. `inputs`/`outputs` are the caller's explicit mappings (each replaces
    the default rules of its side); `controls` (node → input → "randomize"|"fixed"|…) and `titles` (node → the
    title the author gave) come from the UI format when the workflow came as one."""
    return _Exposer(dict(prompt), object_info, controls, titles).run(inputs, outputs)


# --- the work -------------------------------------------------------------------------------------------------------


def fail(errors: list[dict[str, str]]) -> ValidationFailed:
    return ValidationFailed(errors[0]["message"] if len(errors) == 1 else
                            f"{errors[0]['message']} (and {len(errors) - 1} more problems)", errors)


def api_name(text: str) -> str:
    """A caller-facing name from a title: words joined in camelCase (`Reference photo` → `referencePhoto`)."""
    words = [w for w in re.split(r"[\W_]+", text) if w]
    if not words:
        return ""
    name = words[0][:1].lower() + words[0][1:] + "".join(w[:1].upper() + w[1:] for w in words[1:])
    return name[:MAX_NAME]


class _Exposer:
    def __init__(self, prompt: dict[str, Any], object_info: Mapping[str, Any],
                 controls: Mapping[str, Mapping[str, str]] | None, titles: Mapping[str, str] | None):
        self.prompt = prompt
        self.info = object_info
        self.controls = controls
        self.given_titles = titles
        self.notes: list[str] = []
        self.exposed: list[ExposedInput] = []
        self.exposed_outputs: list[ExposedOutput] = []
        self.taken: dict[tuple[str, str], str] = {}  # (node, input) → the name that exposes it
        self.reserved: set[str] = set()  # names a rule found ambiguous: no other rule takes them

    # the prompt and its classes -----------------------------------------------------------------------------------

    def run(self, inputs: Mapping[str, Any] | None, outputs: Mapping[str, Any] | None) -> ImportResult:
        self._check_classes()
        if inputs is not None:
            self._explicit_inputs(inputs)
            self._loaders(only_uncovered=True)
        else:
            self._titled_inputs()
            self._loaders(only_uncovered=False)
            self._sampler_inputs()
        if outputs is not None:
            self._explicit_outputs(outputs)
        else:
            self._default_outputs()
        if not self.exposed:
            self.notes.append("no input exposed: the workflow runs with the values it was saved with")
        if not self.exposed_outputs:
            self.notes.append("no output exposed: the workflow has no output node that nodeloom can return "
                              "(SaveImage, PreviewImage, SaveAnimatedWEBP/PNG, SaveVideo, SaveAudio, PreviewAny)")
        return ImportResult(self._graph(), self.notes, self.prompt, self.exposed, self.exposed_outputs)

    def _check_classes(self) -> None:
        if not is_api_format(self.prompt):
            raise fail([{"path": "workflow", "message": "not a ComfyUI API-format workflow"}])
        check_api(self.prompt)
        errors = []
        for nid, node in self.prompt.items():
            class_type = node.get("class_type")
            if not isinstance(self.info.get(class_type), Mapping):
                errors.append({"path": f"workflow.{nid}.class_type",
                               "message": f"node {nid}: node type '{class_type}' is not available on the ComfyUI "
                                          "servers"})
                continue
            for name, value in (node.get("inputs") or {}).items():
                if is_api_link(value):
                    source = self.prompt.get(str(value[0]))
                    ports = output_port_names(self.info.get(source.get("class_type"), {})) if source else []
                    if source is not None and not 0 <= value[1] < len(ports) \
                            and isinstance(self.info.get(source.get("class_type")), Mapping):
                        errors.append({"path": f"workflow.{nid}.inputs.{name}",
                                       "message": f"node {nid}: input '{name}' links to output {value[1]} of node "
                                                  f"{value[0]}, which has {len(ports)} outputs"})
        if errors:
            raise fail(errors)

    def cls(self, nid: str) -> Mapping[str, Any]:
        info = self.info[self.prompt[nid]["class_type"]]
        assert isinstance(info, Mapping)
        return info

    def spec(self, nid: str, name: str) -> list[Any] | None:
        inputs = self.cls(nid).get("input") or {}
        for section in ("required", "optional"):
            spec = (inputs.get(section) or {}).get(name)
            if spec is not None:
                return spec if isinstance(spec, list) else [spec]
        return None

    def display_name(self, nid: str) -> str:
        class_type = self.prompt[nid]["class_type"]
        return str(self.cls(nid).get("display_name") or FRONTEND_DISPLAY_NAMES.get(class_type) or class_type)

    def title(self, nid: str) -> str:
        meta = self.prompt[nid].get("_meta")
        title = meta.get("title") if isinstance(meta, Mapping) else None
        return title if isinstance(title, str) and title else self.display_name(nid)

    def user_title(self, nid: str) -> str | None:
        """The title the author gave the node, if any."""
        if self.given_titles is not None:
            return self.given_titles.get(nid)
        title = self.title(nid)
        class_type = self.prompt[nid]["class_type"]
        return None if title in (self.display_name(nid), class_type) else title

    def literal(self, nid: str, name: str) -> tuple[bool, Any]:
        value = (self.prompt[nid].get("inputs") or {}).get(name, _MISSING)
        if value is _MISSING or is_api_link(value):
            return False, None
        return True, value

    def link(self, nid: str, name: str) -> tuple[str, int] | None:
        value: Any = (self.prompt[nid].get("inputs") or {}).get(name)
        return (str(value[0]), int(value[1])) if is_api_link(value) else None

    def order(self) -> list[str]:
        return sorted(self.prompt, key=_id_key)

    # naming ----------------------------------------------------------------------------------------------------------

    def names(self) -> set[str]:
        return {e.name for e in self.exposed} | self.reserved

    def numbered(self, base: str) -> str:
        used = self.names()
        if base not in used:
            return base
        n = 2
        while f"{base}_{n}" in used:
            n += 1
        return f"{base}_{n}"

    # what a ComfyUI input is, for nodeloom -----------------------------------------------------------------------------

    def describe(self, nid: str, name: str, value: Any) -> tuple[str, dict[str, Any]] | None:
        """The kind of input node for a literal, and its constraints; None where nodeloom has no such input."""
        spec = self.spec(nid, name)
        kind = spec[0] if spec else None
        opts = spec[1] if spec and len(spec) > 1 and isinstance(spec[1], Mapping) else {}
        if isinstance(kind, list) or kind == "COMBO":
            choices = kind if isinstance(kind, list) else opts.get("options") or []
            if choices and all(isinstance(c, str) for c in choices):
                return "select", {"options": list(choices)}
            if choices and all(isinstance(c, int) and not isinstance(c, bool) for c in choices):
                return "integer", {"min": min(choices), "max": max(choices)}
            if choices and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
                return "number", {"min": min(choices), "max": max(choices)}
            return ("text", {}) if isinstance(value, str) or value is None else ("json", {})
        if kind == "INT":
            if opts.get("control_after_generate") or name in ("seed", "noise_seed"):
                return "seed", {"min": opts.get("min"), "max": opts.get("max")}
            return "integer", {"min": opts.get("min"), "max": opts.get("max")}
        if kind == "FLOAT":
            return "number", {"min": opts.get("min"), "max": opts.get("max")}
        if kind == "BOOLEAN":
            return "boolean", {}
        if kind == "STRING":
            return "text", {}
        if isinstance(kind, str) and kind in MEDIA_SOCKETS:
            return MEDIA_SOCKETS[kind], {}
        if isinstance(value, bool):
            return "boolean", {}
        if isinstance(value, int):
            return "integer", {}
        if isinstance(value, float):
            return "number", {}
        if isinstance(value, str):
            return "text", {}
        return None

    def add_input(self, name: str, nid: str, input_name: str, why: str, *, kind: str | None = None,
                  default: Any = None, required: bool = False, minimum: Any = None, maximum: Any = None,
                  explicit: bool = False) -> bool:
        where = f"node {nid} ({self.title(nid)}).{input_name}"
        if (nid, input_name) in self.taken:
            if not explicit:
                self.notes.append(f"{where} is already exposed as '{self.taken[(nid, input_name)]}': not also "
                                  f"as '{name}'")
            return False
        present, value = self.literal(nid, input_name)
        if kind is None:
            described = self.describe(nid, input_name, value)
            if described is None:
                self.notes.append(f"{where} is not exposed: nodeloom has no input for its value")
                return False
            kind, constraints = described
        else:
            constraints = {}
        if isinstance(value, Mapping) and "__value__" in value:
            self.notes.append(f"{where} holds a list value: not exposed")
            return False
        options = constraints.get("options")
        lo = minimum if minimum is not None else constraints.get("min")
        hi = maximum if maximum is not None else constraints.get("max")
        if default is None and present and kind not in ("image", "video", "audio", "mask"):
            default = value
        randomize = False
        if kind == "seed":
            mode = (self.controls or {}).get(nid, {}).get(input_name)
            randomize = mode == "randomize"
            if isinstance(default, int) and not isinstance(default, bool) and default > SEED_MAX:
                if randomize:
                    self.notes.append(f"'{name}': the saved seed {default} is above {SEED_MAX}; the default kept is "
                                      f"{default % (SEED_MAX + 1)} (a fresh seed is drawn on each run anyway)")
                    default = default % (SEED_MAX + 1)
                else:
                    kind = "integer"
            if kind == "seed":
                lo = hi = None
            if randomize:
                why += "; randomized on each run unless the caller passes one (set to randomize in ComfyUI)"
            elif self.controls is None:
                why += f"; fixed at {default} unless the caller passes one (the API format does not say whether " \
                       "it was randomized)"
            elif mode in ("increment", "decrement"):
                why += f"; fixed at {default} unless the caller passes one (ComfyUI's '{mode}' does not carry over)"
        if kind == "select" and options is not None and default is not None and default not in options:
            options = [*options, default]
        if kind in ("image", "video", "audio", "mask"):
            required = True
        self.exposed.append(ExposedInput(name, nid, input_name, kind, default, required, lo, hi, options, randomize))
        self.taken[(nid, input_name)] = name
        type_name = "image" if kind == "mask" else kind
        self.notes.append(f"input '{name}' ({type_name}{', required' if required else ''}) → {where}: {why}")
        return True

    # rules -----------------------------------------------------------------------------------------------------------

    def _explicit_inputs(self, mapping: Mapping[str, Any]) -> None:
        errors: list[dict[str, str]] = []
        seen: dict[tuple[str, str], str] = {}
        for name, entry in mapping.items():
            path = f"inputs.{name}"
            if not isinstance(name, str) or not name or len(name) > MAX_NAME:
                errors.append({"path": path, "message": f"an input name is 1 to {MAX_NAME} characters"})
                continue
            if not isinstance(entry, Mapping):
                errors.append({"path": path, "message": "expected {\"node\": id, \"input\": name, \"default\"?, "
                                                        "\"min\"?, \"max\"?}"})
                continue
            unknown = set(entry) - {"node", "input", "default", "min", "max"}
            if unknown:
                errors.append({"path": f"{path}.{sorted(unknown)[0]}", "message": "unknown key"})
                continue
            nid = str(entry.get("node")) if entry.get("node") is not None else None
            input_name = entry.get("input")
            if nid is None or nid not in self.prompt:
                errors.append({"path": f"{path}.node", "message": f"no node '{entry.get('node')}' in the workflow"})
                continue
            if not isinstance(input_name, str) or self.spec(nid, input_name) is None:
                errors.append({"path": f"{path}.input", "message": f"node {nid} ({self.prompt[nid]['class_type']}) "
                                                                   f"has no input '{input_name}'"})
                continue
            if (nid, input_name) in seen:
                errors.append({"path": path, "message": f"node {nid}.{input_name} is already exposed as "
                                                        f"'{seen[(nid, input_name)]}'"})
                continue
            seen[(nid, input_name)] = name
            spec = self.spec(nid, input_name) or []
            loader = self.loader_kind(nid)
            media = MEDIA_SOCKETS.get(spec[0]) if spec and isinstance(spec[0], str) else None
            kind = loader[1] if loader is not None and loader[0] == input_name else media
            if kind is None and self.link(nid, input_name) is not None:
                errors.append({"path": f"{path}.input", "message": f"node {nid}.{input_name} is linked to another "
                                                                   "node; only a literal value can be exposed"})
                continue
            present, value = self.literal(nid, input_name)
            described = (kind, {}) if kind is not None else self.describe(nid, input_name, value)
            if described is None:
                errors.append({"path": f"{path}.input", "message": f"node {nid}.{input_name}: nodeloom has no input "
                                                                   "for this kind of value"})
                continue
            problem = _check_default(described[0], entry, described[1])
            if problem:
                errors.append({"path": problem[0].replace("$", path), "message": problem[1]})
                continue
            if self.link(nid, input_name) is not None:
                self.notes.append(f"input '{name}' replaces the link into node {nid}.{input_name}")
            self.add_input(name, nid, input_name, "mapped by the request", kind=kind if kind else None,
                           default=entry.get("default"), minimum=entry.get("min"), maximum=entry.get("max"),
                           explicit=True)
        if errors:
            raise fail(errors)

    def _titled_inputs(self) -> None:
        wanted: list[tuple[str, str, str, str]] = []  # (name, node, input, title)
        for nid in self.order():
            title = self.title(nid)
            if not title.lower().startswith("input:"):
                continue
            base = api_name(title[len("input:"):])
            if self.loader_kind(nid) is not None:
                continue  # the loader rule names it after the title
            literals = [name for name, value in (self.prompt[nid].get("inputs") or {}).items()
                        if not is_api_link(value)]
            if not base:
                self.notes.append(f"node {nid} is titled '{title}' without a name after 'input:': not exposed")
            elif not literals:
                self.notes.append(f"node {nid} ({title}) has no literal input to expose")
            for name in literals if base else []:
                wanted.append((base if len(literals) == 1 else api_name(f"{base} {name}"), nid, name, title))
        counts = Counter(name for name, *_ in wanted)
        for name, nid, input_name, title in wanted:
            if counts[name] > 1:
                self.reserved.add(name)
                where = ", ".join(f"{n}.{i}" for other, n, i, _ in wanted if other == name)
                note = f"'{name}' is ambiguous ({where} are all titled for it): none of them is exposed"
                if note not in self.notes:
                    self.notes.append(note)
                continue
            self.add_input(name, nid, input_name, f"the node is titled '{title}'")

    def loader_kind(self, nid: str) -> tuple[str, str] | None:
        """(file input, kind) of a loader: a class whose combo input carries an upload flag."""
        inputs = self.cls(nid).get("input") or {}
        for section in ("required", "optional"):
            for name, spec in (inputs.get(section) or {}).items():
                opts = spec[1] if isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], Mapping) else {}
                for flag, kind in UPLOAD_FLAGS.items():
                    if opts.get(flag) is True:
                        return name, kind
        return None

    def _loaders(self, *, only_uncovered: bool) -> None:
        for nid in self.order():
            loader = self.loader_kind(nid)
            if loader is None:
                continue
            file_input, kind = loader
            if (nid, file_input) in self.taken:
                continue
            if self.link(nid, file_input) is not None:
                continue  # fed by another node
            title = self.user_title(nid)
            named = api_name(title[len("input:"):] if title and title.lower().startswith("input:") else title or "")
            name = named if named and named not in self.names() else self.numbered(kind)
            why = ("its file must come from the caller (a file name in the workflow names a file on the author's "
                   "machine)")
            if only_uncovered:
                why += "; exposed although the request maps inputs, because no mapping covers it"
            self.add_input(name, nid, file_input, why, kind=kind, required=True)

    def _sampler_inputs(self) -> None:
        samplers = [nid for nid in self.order() if self.prompt[nid]["class_type"] in SAMPLERS]
        if len(samplers) != 1:
            what = "prompt, negativePrompt, seed, width, height and batchSize are not exposed"
            if samplers:
                listed = ", ".join(f"{nid} ({self.prompt[nid]['class_type']})" for nid in samplers)
                self.notes.append(f"{len(samplers)} samplers ({listed}): which one to expose is ambiguous, so {what}; "
                                  "title nodes 'input:<name>' in ComfyUI or pass 'inputs' to choose")
            else:
                self.notes.append(f"no sampler (KSampler, KSamplerAdvanced, SamplerCustom, SamplerCustomAdvanced): "
                                  f"{what}")
            return
        sampler = samplers[0]
        class_type = self.prompt[sampler]["class_type"]
        why = f"the workflow's one sampler, node {sampler} ({class_type})"
        positive: tuple[str, str] | None = None
        negative: tuple[str, str] | None = None
        seed: tuple[str, str] | None = None
        if class_type == "SamplerCustomAdvanced":
            guider = self.link(sampler, "guider")
            noise = self.link(sampler, "noise")
            if guider is not None:
                gclass = self.prompt[guider[0]]["class_type"]
                if self.spec(guider[0], "positive") is not None:
                    positive = (guider[0], "positive")
                    negative = (guider[0], "negative") if self.spec(guider[0], "negative") is not None else None
                elif self.spec(guider[0], "conditioning") is not None:
                    positive = (guider[0], "conditioning")
                else:
                    self.notes.append(f"the sampler's guider, node {guider[0]} ({gclass}), has no prompt to expose")
            if noise is not None:
                seed = self._number_source(noise[0], ("noise_seed", "seed"))
        else:
            positive, negative = (sampler, "positive"), (sampler, "negative")
            seed_input = "seed" if self.spec(sampler, "seed") is not None else "noise_seed"
            seed = self._number_at(sampler, seed_input)
        prompt_at = self._text_source(*positive) if positive else None
        negative_at = self._text_source(*negative) if negative else None
        if prompt_at is not None and prompt_at == negative_at:
            self.notes.append("the positive and negative prompts come from the same text: exposed as 'prompt' only")
            negative_at = None
        for name, found, what in (("prompt", prompt_at, "positive prompt"),
                                  ("negativePrompt", negative_at, "negative prompt")):
            if found is None:
                self.notes.append(f"'{name}' is not exposed: no single text feeds the sampler's {what}")
            elif name in self.names():
                self.notes.append(f"'{name}' is not exposed again: the name is taken")
            else:
                self.add_input(name, found[0], found[1], f"the {what} of {why}")
        if seed is None:
            self.notes.append("'seed' is not exposed: the sampler's seed is not a single number")
        elif "seed" not in self.names():
            self.add_input("seed", seed[0], seed[1], f"the seed of {why}")
        latent = self.link(sampler, "latent_image")
        size = self._latent_size(latent[0]) if latent is not None else None
        if size is None:
            self.notes.append("'width', 'height' and 'batchSize' are not exposed: the sampler's latent is not an "
                              "empty latent of a set size (it may come from an image)")
            return
        for name, found in size.items():
            if name in self.names():
                self.notes.append(f"'{name}' is not exposed again: the name is taken")
            else:
                self.add_input(name, found[0], found[1], f"the latent size of {why}")

    def _number_at(self, nid: str, name: str) -> tuple[str, str] | None:
        present, value = self.literal(nid, name)
        if present and isinstance(value, (int, float)) and not isinstance(value, bool):
            return nid, name
        link = self.link(nid, name)
        return self._number_source(link[0], None) if link is not None else None

    def _number_source(self, nid: str, names: tuple[str, ...] | None) -> tuple[str, str] | None:
        """A node that gives a number: the named literal, else its only numeric literal."""
        inputs = self.prompt[nid].get("inputs") or {}
        for name in names or ():
            if name in inputs and not is_api_link(inputs[name]):
                return nid, name
        numeric = [n for n, v in inputs.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if names is None and len(numeric) == 1:
            return nid, numeric[0]
        for name in names or ():
            link = self.link(nid, name)
            if link is not None:
                return self._number_source(link[0], None)
        return None

    def _text_source(self, nid: str, name: str, depth: int = 0) -> tuple[str, str] | None:
        """Follow a conditioning input back to the one text that makes it."""
        link = self.link(nid, name)
        if link is None or depth > 32:
            return None
        source, slot = link
        if source not in self.prompt:
            return None
        texts = self._string_inputs(source)
        if len(texts) == 1:
            return source, texts[0]
        if len(texts) > 1:
            return None  # two texts (CLIPTextEncodeSDXL's text_g and text_l …): ambiguous
        for text_input in self._linked_strings(source):  # text from a primitive or another node
            found = self._string_origin(*text_input)
            if found is not None:
                return found
        # pass-through conditioning (FluxGuidance, ControlNetApplyAdvanced, …): the input named like the output
        ports = output_port_names(self.cls(source))
        wanted = ports[slot] if 0 <= slot < len(ports) else ""
        conditioning = [n for n in (self.prompt[source].get("inputs") or {})
                        if self._type(source, n) == "CONDITIONING"]
        if wanted in conditioning:
            return self._text_source(source, wanted, depth + 1)
        if len(conditioning) == 1:
            return self._text_source(source, conditioning[0], depth + 1)
        return None

    def _type(self, nid: str, name: str) -> Any:
        spec = self.spec(nid, name)
        return spec[0] if spec else None

    def _string_inputs(self, nid: str) -> list[str]:
        return [n for n, v in (self.prompt[nid].get("inputs") or {}).items()
                if isinstance(v, str) and self._type(nid, n) == "STRING"]

    def _linked_strings(self, nid: str) -> list[tuple[str, str]]:
        return [(nid, n) for n, v in (self.prompt[nid].get("inputs") or {}).items()
                if is_api_link(v) and self._type(nid, n) == "STRING"]

    def _string_origin(self, nid: str, name: str) -> tuple[str, str] | None:
        link = self.link(nid, name)
        if link is None or link[0] not in self.prompt:
            return None
        texts = self._string_inputs(link[0])
        return (link[0], texts[0]) if len(texts) == 1 else None

    def _latent_size(self, nid: str, depth: int = 0) -> dict[str, tuple[str, str]] | None:
        if nid not in self.prompt or depth > 32:
            return None
        found: dict[str, tuple[str, str]] = {}
        for name, key in (("width", "width"), ("height", "height"), ("batch_size", "batchSize")):
            if self.spec(nid, name) is None:
                continue
            at = self._number_at(nid, name)
            if at is not None:
                found[key] = at
        if found:
            return found
        latents = [n for n in (self.prompt[nid].get("inputs") or {}) if self._type(nid, n) == "LATENT"]
        if len(latents) == 1:
            link = self.link(nid, latents[0])
            return self._latent_size(link[0], depth + 1) if link is not None else None
        return None

    def _explicit_outputs(self, mapping: Mapping[str, Any]) -> None:
        errors: list[dict[str, str]] = []
        for name, entry in mapping.items():
            path = f"outputs.{name}"
            if not isinstance(name, str) or not name or len(name) > MAX_NAME:
                errors.append({"path": path, "message": f"an output name is 1 to {MAX_NAME} characters"})
                continue
            if not isinstance(entry, Mapping) or set(entry) - {"node"}:
                errors.append({"path": path, "message": "expected {\"node\": id}"})
                continue
            nid = str(entry.get("node")) if entry.get("node") is not None else None
            if nid is None or nid not in self.prompt:
                errors.append({"path": f"{path}.node", "message": f"no node '{entry.get('node')}' in the workflow"})
                continue
            kind = OUTPUT_KINDS.get(self.prompt[nid]["class_type"])
            if kind is None:
                errors.append({"path": f"{path}.node", "message": f"node {nid} ({self.prompt[nid]['class_type']}) "
                                                                  "is not an output node nodeloom can return"})
                continue
            if any(o.node == nid for o in self.exposed_outputs):
                errors.append({"path": f"{path}.node", "message": f"node {nid} is already an output"})
                continue
            self.exposed_outputs.append(ExposedOutput(name, nid, kind[1]))
            self.notes.append(f"output '{name}' ({kind[1]}) ← node {nid} ({self.title(nid)}): mapped by the request")
        if errors:
            raise fail(errors)

    def _default_outputs(self) -> None:
        used: set[str] = set()
        for nid in self.order():
            class_type = self.prompt[nid]["class_type"]
            kind = OUTPUT_KINDS.get(class_type)
            if kind is None:
                if self.cls(nid).get("output_node"):
                    self.notes.append(f"node {nid} ({self.title(nid)}) is an output node whose results nodeloom "
                                      "does not return: not exposed")
                continue
            title = self.user_title(nid)
            name = api_name(title[len("output:"):] if title and title.lower().startswith("output:") else title or "")
            if not name or name in used:
                base, n = kind[0], 2
                name = base
                while name in used:
                    name, n = f"{base}_{n}", n + 1
            used.add(name)
            self.exposed_outputs.append(ExposedOutput(name, nid, kind[1]))
            self.notes.append(f"output '{name}' ({kind[1]}) ← node {nid} ({self.title(nid)})")

    # the graph -------------------------------------------------------------------------------------------------------

    def _graph(self) -> dict[str, Any]:
        nodes: list[dict[str, Any]] = []
        ids = set(self.prompt)
        replaced: dict[tuple[str, str], dict[str, str]] = {}
        input_nodes = []
        for exposed in self.exposed:
            node_id = _unique(f"input_{exposed.name}", ids)
            node_kind, port = INPUT_NODES[exposed.kind]
            params: dict[str, Any] = {"name": exposed.name}
            if exposed.kind not in ("image", "video", "audio", "mask") and exposed.default is not None:
                params["default"] = exposed.default
            if exposed.required:
                params["required"] = True
            if exposed.kind in ("integer", "number"):
                if exposed.minimum is not None:
                    params["min"] = exposed.minimum
                if exposed.maximum is not None:
                    params["max"] = exposed.maximum
            if exposed.kind == "select":
                params["options"] = exposed.options or []
            if exposed.kind == "seed":
                params["randomize"] = exposed.randomize
            input_nodes.append({"id": node_id, "type": node_kind, "params": params,
                                "label": f"{exposed.name} → {self.title(exposed.node)}.{exposed.input}"})
            replaced[(exposed.node, exposed.input)] = {"from": node_id, "output": port}
        undeclared: list[str] = []
        for nid in self.order():
            node = self.prompt[nid]
            inputs: dict[str, Any] = {}
            for name, value in (node.get("inputs") or {}).items():
                if self.spec(nid, name) is None:
                    undeclared.append(f"{nid}.{name}")  # the frontend's extras (PreviewAny's preview, …)
                    continue
                if (nid, name) in replaced:
                    inputs[name] = replaced[(nid, name)]
                elif is_api_link(value):
                    source = str(value[0])
                    ports = output_port_names(self.cls(source))
                    inputs[name] = {"from": source, "output": ports[int(value[1])]}
                else:
                    inputs[name] = value
            for (target, name), link in replaced.items():  # an exposed input the prompt left out
                if target == nid and name not in inputs:
                    inputs[name] = link
            nodes.append({"id": nid, "type": node_type(node["class_type"]), "inputs": inputs,
                          "label": self.title(nid)})
        if undeclared:
            self.notes.append(f"left out inputs that the node types do not declare (ComfyUI ignores them; its "
                              f"frontend adds some): {', '.join(undeclared)}")
        output_nodes = []
        for exposed_output in self.exposed_outputs:
            node_id = _unique(f"output_{exposed_output.name}", ids)
            node_kind, port = OUTPUT_NODES[exposed_output.type]
            result = result_port(self.prompt[exposed_output.node]["class_type"])
            assert result is not None
            output_nodes.append({"id": node_id, "type": node_kind, "params": {"name": exposed_output.name},
                                 "inputs": {port: {"from": exposed_output.node, "output": result[0]}}})
        return {"nodes": input_nodes + nodes + output_nodes}


_MISSING = object()


def _unique(base: str, ids: set[str]) -> str:
    candidate, n = base[:60], 2
    while candidate in ids:
        candidate, n = f"{base[:56]}_{n}", n + 1
    ids.add(candidate)
    return candidate


def _id_key(nid: str) -> tuple[int, int | str]:
    """Numeric ids in numeric order, then the others."""
    return (0, int(nid)) if nid.isdigit() else (1, nid)


def _check_default(kind: str, entry: Mapping[str, Any], constraints: Mapping[str, Any]) -> tuple[str, str] | None:
    default = entry.get("default")
    for key in ("min", "max"):
        bound = entry.get(key)
        if bound is not None:
            if kind not in ("integer", "number", "seed"):
                return f"$.{key}", f"'{key}' applies to numbers only"
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                return f"$.{key}", "expected a number"
    if default is None:
        return None
    if kind in ("image", "video", "audio", "mask"):
        return "$.default", "a loader's file is always required: it takes no default"
    if kind in ("integer", "seed") and (isinstance(default, bool) or not isinstance(default, int)):
        return "$.default", "expected a whole number"
    if kind == "number" and (isinstance(default, bool) or not isinstance(default, (int, float))):
        return "$.default", "expected a number"
    if kind == "boolean" and not isinstance(default, bool):
        return "$.default", "expected true or false"
    if kind == "text" and not isinstance(default, str):
        return "$.default", "expected text"
    if kind == "select":
        options = constraints.get("options") or []
        if default not in options:
            return "$.default", f"expected one of {', '.join(map(str, options[:20]))}"
    lo, hi = entry.get("min"), entry.get("max")
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if lo is not None and default < lo:
            return "$.default", f"below the minimum {lo}"
        if hi is not None and default > hi:
            return "$.default", f"above the maximum {hi}"
    return None
