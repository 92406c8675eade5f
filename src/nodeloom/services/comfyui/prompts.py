"""A segment of `comfyui.*` nodes → the one ComfyUI prompt that runs it (API.md "ComfyUI workflows", Segments).

Pure: values in, a `Job` out (the API-format prompt, the files to upload first, where each value that leaves the
segment will be found, what a server needs to run it). Our node ids are the prompt's node ids, so ComfyUI's events
and errors name our nodes; the nodes added here have ids starting with `nl.` (never a valid id of ours: ids of ours
are at most 64 characters and these carry the member's id after the prefix, so they are told apart by `owner`).

| a value entering the segment | becomes |
|---|---|
| a text, number, boolean, a combo's choice | the input's literal |
| one image / a `list<image>` into an IMAGE input | `LoadImage` of an upload (several: chained `ImageBatch`) |
| a mask into a MASK input | `LoadImageMask` (red channel) of an upload |
| a file into a loader's file input (`LoadImage.image` …) | an upload, named for this execution, as the literal |
| a video into a VIDEO input | `LoadVideo` of an upload |

| a value leaving the segment | brought out by |
|---|---|
| IMAGE | `PreviewImage` (the temp folder) → `list<image>` |
| MASK | `MaskToImage` → `PreviewImage` → `list<mask>` |
| STRING, INT, FLOAT, BOOLEAN, a combo | `PreviewAny` → text, parsed back to the type |
| VIDEO | `SaveVideo` under `nodeloom/<execution>` |
| an output node's results (SaveImage's images …) | the node's own report |
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from nodeloom.engine.errors import NodeError
from nodeloom.engine.graph import Graph
from nodeloom.engine.segments import Segment
from nodeloom.media.values import MediaFile
from nodeloom.services.comfyui.expose import OUTPUT_KINDS, result_port
from nodeloom.services.comfyui.nodes import ComfyNode, ComfyPolicy
from nodeloom.services.comfyui.pool import Need

SYNTHETIC = "nl."
#: ComfyUI output types brought out as text by PreviewAny, and how the text becomes the value again
TEXT_TYPES: dict[str, Callable[[str], Any]] = {
    "STRING": str, "INT": int, "FLOAT": float, "BOOLEAN": lambda text: text.strip() == "True",
}


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    data: bytes
    node: str  # the member whose input it feeds
    input: str


@dataclass(frozen=True, slots=True)
class Pickup:
    """Where the value of `member`.`port` is found once the prompt has run: the UI output of prompt node `node`."""

    node: str
    member: str
    port: str
    kind: str  # "images", "masks", "text", "animated", "video", "audio"
    parse: str = "STRING"  # for "text": the ComfyUI type to parse it back to
    #: images that go only to output nodes storing PNG: kept as the files ComfyUI wrote (never decoded, re-encoded)
    raw: bool = False


@dataclass
class Job:
    prompt: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    pickups: list[Pickup] = field(default_factory=list)
    #: prompt node id → the member of ours it stands for (itself, or the member a node added here serves)
    owner: dict[str, str] = field(default_factory=dict)
    need: Need = field(default_factory=lambda: Need(frozenset()))
    #: False for a prompt without an output node: ComfyUI refuses it, and it computes nothing anyone reads
    runs_anything: bool = False


def build_job(segment: Segment, graph: Graph, values: Mapping[str, Mapping[str, Any]], *, execution_id: str,
              policy: ComfyPolicy, encode: Callable[[Image.Image], bytes]) -> Job:
    """The prompt for `segment`; NodeError for a value the caps or the tenancy rules refuse."""
    inside = set(segment.nodes)
    job = Job()
    has_output_node = False
    files: list[tuple[str, str, str]] = []
    tag = _safe(execution_id)[:40]
    for nid in segment.nodes:
        node = graph.nodes[nid]
        t = node.type
        if not issubclass(t, ComfyNode):  # pragma: no cover - a segment holds only comfyui nodes
            raise NodeError(f"node '{nid}' ({t.type}) is not a ComfyUI node", node_id=nid)
        has_output_node = has_output_node or t.comfy_output_node
        if node.fanned_inputs:
            raise NodeError(f"node '{nid}' ({t.type}) would run once per element of a list: ComfyUI nodes take a "
                            "batch (list<image>) as one value, not a list of batches", code="invalid_graph",
                            node_id=nid)
        inputs: dict[str, Any] = {}
        given = values.get(nid, {})
        for port in t.inputs:
            name = port.name
            link = node.links.get(name)
            if link is not None and link.source in inside:
                source = graph.nodes[link.source]
                index = _output_index(source.type, link.output)
                if index is None:
                    raise NodeError(f"node '{nid}' takes {link.source}.{link.output}, the results of an output node; "
                                    "they can only go to nodeloom nodes", code="invalid_graph", node_id=nid)
                inputs[name] = [link.source, index]
                continue
            if name not in given or given[name] is None:
                continue
            value = given[name]
            if name in t.comfy_uploads:
                inputs[name] = _upload(job, value, nid, name, tag, policy, encode, kind=t.comfy_uploads[name])
            elif port.type in ("list<image>", "list<mask>"):
                inputs[name] = _load_batch(job, value, nid, name, tag, policy, encode, mask=port.type == "list<mask>")
            elif port.type == "video":
                uploaded = _upload(job, value, nid, name, tag, policy, encode, kind="video")
                loader = f"{SYNTHETIC}{nid}.{name}"
                job.prompt[loader] = {"class_type": "LoadVideo", "inputs": {"file": uploaded}}
                job.owner[loader] = nid
                inputs[name] = [loader, 0]
            elif isinstance(value, (str, int, float, bool)):
                inputs[name] = value
                if port.choices is not None and isinstance(value, str):
                    files.append((t.comfy_class, name, value))
            else:
                raise NodeError(f"input '{name}' of node '{nid}' ({t.type}) cannot take a {type(value).__name__} "
                                "from a nodeloom node", code="invalid_graph", node_id=nid)
        job.prompt[nid] = {"class_type": t.comfy_class, "inputs": inputs, "_meta": {"title": nid}}
        job.owner[nid] = nid
    for nid in segment.members:
        _pick_up(job, graph, nid, inside, tag)
    job.runs_anything = has_output_node or bool(job.pickups)
    job.need = Need(frozenset(n["class_type"] for n in job.prompt.values()), tuple(files))
    return job


def _output_index(node_type: type[Any], port: str) -> int | None:
    """The ComfyUI output index of a port (None for an output node's results port, which ComfyUI does not have)."""
    info = getattr(node_type, "comfy_info", {}) or {}
    count = len(info.get("output") or [])
    for i, p in enumerate(node_type.outputs):
        if p.name == port:
            return i if i < count else None
    return None


def _consumers(graph: Graph, nid: str, port: str, inside: set[str]) -> list[str]:
    return [other for other in graph.order if other not in inside
            and any(link.source == nid and link.output == port for link in graph.nodes[other].links.values())]


def _only_png_outputs(graph: Graph, consumers: list[str]) -> bool:
    return bool(consumers) and all(graph.nodes[c].type.role == "output"
                                   and str(graph.nodes[c].params.get("format") or "png") == "png" for c in consumers)


def _pick_up(job: Job, graph: Graph, nid: str, inside: set[str], tag: str) -> None:
    node = graph.nodes[nid]
    t = node.type
    if not issubclass(t, ComfyNode):  # pragma: no cover - a segment holds only comfyui nodes
        return
    info = t.comfy_info or {}
    kinds = list(info.get("output") or [])
    for i, port in enumerate(t.outputs):
        consumers = _consumers(graph, nid, port.name, inside)
        if not consumers:
            continue
        raw = _only_png_outputs(graph, consumers)
        if i >= len(kinds):  # the results port of an output node
            found = result_port(t.comfy_class)
            kind = OUTPUT_KINDS.get(t.comfy_class, ("image", ""))[0]
            if found is None:
                continue
            pick = {"image": "images", "video": "video", "audio": "audio", "text": "text"}[kind]
            if found[1] == "image":
                pick = "animated"
            job.pickups.append(Pickup(node=nid, member=nid, port=port.name, kind=pick, raw=raw))
            continue
        kind = kinds[i]
        out = f"{SYNTHETIC}{nid}.{i}"
        job.owner[out] = nid
        if kind == "IMAGE":
            job.prompt[out] = {"class_type": "PreviewImage", "inputs": {"images": [nid, i]}}
            job.pickups.append(Pickup(node=out, member=nid, port=port.name, kind="images", raw=raw))
        elif kind == "MASK":
            as_image = f"{out}.image"
            job.owner[as_image] = nid
            job.prompt[as_image] = {"class_type": "MaskToImage", "inputs": {"mask": [nid, i]}}
            job.prompt[out] = {"class_type": "PreviewImage", "inputs": {"images": [as_image, 0]}}
            job.pickups.append(Pickup(node=out, member=nid, port=port.name, kind="masks"))
        elif kind == "VIDEO":
            job.prompt[out] = {"class_type": "SaveVideo", "inputs": {
                "video": [nid, i], "filename_prefix": f"nodeloom/{tag}", "format": "auto", "codec": "auto"}}
            job.pickups.append(Pickup(node=out, member=nid, port=port.name, kind="video"))
        elif isinstance(kind, (list, tuple)) or kind in TEXT_TYPES:
            job.prompt[out] = {"class_type": "PreviewAny", "inputs": {"source": [nid, i]}}
            job.pickups.append(Pickup(node=out, member=nid, port=port.name, kind="text",
                                      parse=kind if isinstance(kind, str) else "STRING"))
        else:
            raise NodeError(f"output '{port.name}' of node '{nid}' is a ComfyUI {kind}, which nodeloom nodes cannot "
                            "take", code="invalid_graph", node_id=nid)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _upload(job: Job, value: Any, nid: str, name: str, tag: str, policy: ComfyPolicy,
            encode: Callable[[Image.Image], bytes], *, kind: str, index: int | None = None) -> str:
    """Queue an upload of `value` under a name unique to this execution and node; the name ComfyUI will know."""
    suffix = "" if index is None else f"-{index}"
    base = f"nl-{tag}-{_safe(nid)[:40]}-{_safe(name)[:20]}{suffix}"
    if isinstance(value, Image.Image):
        _check_pixels(value.width, value.height, nid, name, policy)
        data, ext = encode(value), "png"
    elif isinstance(value, MediaFile):
        if value.content_type.startswith("image/"):
            width, height = value.meta.get("width"), value.meta.get("height")
            if isinstance(width, int) and isinstance(height, int):
                _check_pixels(width, height, nid, name, policy)
        data = value.read_bytes()
        ext = _extension(value.content_type, kind)
    else:
        raise NodeError(f"input '{name}' of node '{nid}' takes a {kind} from a nodeloom input or node, never a file "
                        "name on the ComfyUI server", code="invalid_graph", node_id=nid)
    filename = f"{base}.{ext}"
    job.uploads.append(Upload(name=filename, data=data, node=nid, input=name))
    return filename


def _extension(content_type: str, kind: str) -> str:
    sub = content_type.split("/", 1)[-1].split(";")[0].strip().lower()
    known = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "mp4": "mp4", "webm": "webm",
             "quicktime": "mov", "x-matroska": "mkv", "flac": "flac", "mpeg": "mp3", "wav": "wav", "x-wav": "wav",
             "ogg": "ogg"}
    return known.get(sub, {"image": "png", "video": "mp4", "audio": "flac"}.get(kind, "bin"))


def _check_pixels(width: int, height: int, nid: str, name: str, policy: ComfyPolicy) -> None:
    if width * height > policy.max_image_pixels:
        raise NodeError(f"the image for input '{name}' of node '{nid}' is {width}×{height}, over the "
                        f"{policy.max_image_pixels} pixels this server sends to ComfyUI", code="image_too_large",
                        node_id=nid)


def _load_batch(job: Job, value: Any, nid: str, name: str, tag: str, policy: ComfyPolicy,
                encode: Callable[[Image.Image], bytes], *, mask: bool) -> list[Any]:
    images = value if isinstance(value, list) else [value]
    if not images:
        raise NodeError(f"input '{name}' of node '{nid}' got an empty list of images", code="invalid_graph",
                        node_id=nid)
    if len(images) > policy.max_batch:
        raise NodeError(f"input '{name}' of node '{nid}' got a batch of {len(images)}, over this server's cap of "
                        f"{policy.max_batch}", code="batch_too_large", node_id=nid)
    if mask and len(images) > 1:
        raise NodeError(f"input '{name}' of node '{nid}' takes one mask", code="invalid_graph", node_id=nid)
    links: list[list[Any]] = []
    for i, image in enumerate(images):
        if mask and isinstance(image, Image.Image) and image.mode != "L":
            image = image.convert("L")
        uploaded = _upload(job, image, nid, name, tag, policy, encode, kind="image",
                           index=i if len(images) > 1 else None)
        loader = f"{SYNTHETIC}{nid}.{name}.{i}"
        job.owner[loader] = nid
        job.prompt[loader] = ({"class_type": "LoadImageMask", "inputs": {"image": uploaded, "channel": "red"}}
                              if mask else {"class_type": "LoadImage", "inputs": {"image": uploaded}})
        links.append([loader, 0])
    joined = links[0]
    for i, link in enumerate(links[1:], start=1):
        batch = f"{SYNTHETIC}{nid}.{name}.batch{i}"
        job.owner[batch] = nid
        job.prompt[batch] = {"class_type": "ImageBatch", "inputs": {"image1": joined, "image2": link}}
        joined = [batch, 0]
    return joined
