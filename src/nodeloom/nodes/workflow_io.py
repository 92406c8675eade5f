"""Workflow inputs and outputs beyond core's: a choice, JSON, a list (which fans out), a seed, and
outputs for video, audio and files."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes.core import NAME, REQUIRED, InputNode, OutputNode

SEED_MAX = 2**32 - 1


# --- inputs and outputs --------------------------------------------------------------------------------


class InputSelect(InputNode):
    type = "input.select"
    display_name = "Choice input"
    description = "A text parameter restricted to the values listed in `options` (a drop-down in forms)."
    value_type = "text"
    params = (NAME, Param("options", "list<text>", required=True, description="The allowed values"),
              Param("default", "text"), REQUIRED)
    outputs = (Port("value", "text"),)

    async def run(self, ctx: Context, **kwargs: Any) -> dict[str, Any]:
        options = kwargs.get("options") or []
        if not options:
            raise NodeError("input.select needs at least one option", code="invalid_param")
        out = await super().run(ctx, **kwargs)
        value = options[0] if out["value"] is None else out["value"]
        if value not in options:
            raise NodeError(f"'{value}' is not one of the options: {', '.join(options)}",
                            code="invalid_input")
        return {"value": value}


class InputJson(InputNode):
    type = "input.json"
    display_name = "JSON input"
    description = "A parameter holding any JSON value (object, array, string, number, boolean)."
    value_type = "json"
    params = (NAME, Param("default", "json"), REQUIRED)
    outputs = (Port("value", "json"),)


class InputList(InputNode):
    type = "input.list"
    display_name = "List input"
    description = ("A parameter holding a JSON array; linked to a single-value port it runs that node once "
                   "per item.")
    value_type = "list<any>"
    params = (NAME, Param("default", "list<any>"), REQUIRED,
              Param("maxItems", "integer", default=1000, min=1, max=10000))
    outputs = (Port("value", "list<any>"),)

    async def run(self, ctx: Context, **kwargs: Any) -> dict[str, Any]:
        value = (await super().run(ctx, **kwargs))["value"]
        items = [] if value is None else value
        if not isinstance(items, list):
            raise NodeError(f"input '{kwargs.get('name')}' must be a JSON array", code="invalid_input")
        if len(items) > kwargs["maxItems"]:
            raise NodeError(f"input '{kwargs.get('name')}' has {len(items)} items, over the limit of "
                            f"{kwargs['maxItems']}", code="invalid_input")
        return {"value": items}


class InputSeed(InputNode):
    type = "input.seed"
    display_name = "Seed input"
    description = ("A random seed: the caller's value, else `default`; with `randomize` an omitted seed is "
                   "drawn fresh each run.")
    value_type = "integer"
    # a randomized seed must not let the cache serve an earlier run's results downstream
    deterministic = False
    params = (NAME, Param("default", "integer", default=0, min=0, max=SEED_MAX), REQUIRED,
              Param("randomize", "boolean", default=False,
                    description="Draw a new seed when the caller gives none"))
    outputs = (Port("value", "integer"),)

    @classmethod
    def is_deterministic(cls, params: Mapping[str, Any]) -> bool:
        return not params.get("randomize")  # a given or default seed is a plain value

    async def run(self, ctx: Context, **kwargs: Any) -> dict[str, Any]:
        name = kwargs.get("name")
        if name is not None and ctx.inputs.get(name) is not None:
            seed = ctx.inputs[name]
        elif kwargs.get("required"):
            raise NodeError(f"input '{name}' is required", code="missing_input")
        elif kwargs.get("randomize"):
            seed = secrets.randbelow(SEED_MAX + 1)
        else:
            seed = kwargs.get("default") or 0
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
            raise NodeError(f"input '{name}' must be a whole number from 0 to {SEED_MAX}",
                            code="invalid_input")
        return {"value": seed}


class OutputVideo(OutputNode):
    type = "output.video"
    display_name = "Video output"
    description = "Publishes a video as a named output (a signed, expiring URL in the poll body)."
    inputs = (Port("video", "video"),)
    params = (NAME,)


class OutputAudio(OutputNode):
    type = "output.audio"
    display_name = "Audio output"
    description = "Publishes an audio clip as a named output (a signed, expiring URL in the poll body)."
    inputs = (Port("audio", "audio"),)
    params = (NAME,)


class OutputFile(OutputNode):
    type = "output.file"
    display_name = "File output"
    description = "Publishes a file as a named output (a signed, expiring URL in the poll body)."
    inputs = (Port("file", "file"),)
    params = (NAME,)


def nodes() -> list[type[Node]]:
    return [InputSelect, InputJson, InputList, InputSeed, OutputVideo, OutputAudio, OutputFile]
