"""The core pack: workflow inputs and outputs, text templating, image resize, delay."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import mimetypes
from pathlib import Path
from typing import Any, ClassVar

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from PIL import Image

from nodeloom.engine.errors import NodeError
from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port, check_value
from nodeloom.media.sandbox import sandbox_for
from nodeloom.media.values import MediaFile

NAME = Param("name", "text", required=True, description="The name callers use for this input or output",
             max_length=64)
REQUIRED = Param("required", "boolean", default=False, description="Refuse executions that omit this input")


class InputNode(Node):
    """Reads the execution input named by param `name`, falling back to `default`."""

    role = "input"
    category_label = "Inputs"
    value_type: ClassVar[str] = "any"

    async def run(self, ctx: Context, **kwargs: Any) -> dict[str, Any]:
        name = kwargs.get("name")
        value = ctx.inputs.get(name, kwargs.get("default")) if name else kwargs.get("default")
        if value is None and kwargs.get("required"):
            raise NodeError(f"input '{name}' is required", code="missing_input")
        return {self.outputs[0].name: await self.convert(ctx, value)}

    async def convert(self, ctx: Context, value: Any) -> Any:
        return value

    @classmethod
    def check_input(cls, value: Any, params: dict[str, Any]) -> tuple[Any, str | None]:
        default = cls.param("default")
        return check_value(
            cls.value_type, value,
            minimum=params.get("min", default.min if default else None),
            maximum=params.get("max", default.max if default else None),
            enum=tuple(params["options"]) if params.get("options") else None,
        )


class InputText(InputNode):
    type = "input.text"
    display_name = "Text input"
    description = "A text parameter of the workflow (for example a prompt)."
    value_type = "text"
    params = (NAME, Param("default", "text", multiline=True), REQUIRED)
    outputs = (Port("text", "text"),)


class InputNumber(InputNode):
    type = "input.number"
    display_name = "Number input"
    description = "A numeric parameter of the workflow."
    value_type = "number"
    params = (NAME, Param("default", "number"), REQUIRED, Param("min", "number"), Param("max", "number"))
    outputs = (Port("value", "number"),)


class InputInteger(InputNode):
    type = "input.integer"
    display_name = "Integer input"
    description = "A whole-number parameter of the workflow (counts, sizes, seeds)."
    value_type = "integer"
    params = (NAME, Param("default", "integer"), REQUIRED, Param("min", "integer"), Param("max", "integer"))
    outputs = (Port("value", "integer"),)


class InputBoolean(InputNode):
    type = "input.boolean"
    display_name = "Boolean input"
    description = "A yes/no parameter of the workflow."
    value_type = "boolean"
    params = (NAME, Param("default", "boolean"), REQUIRED)
    outputs = (Port("value", "boolean"),)


class InputImage(InputNode):
    type = "input.image"
    display_name = "Image input"
    description = "An image given as an uploaded fileId, an https URL (fetched through the address guard) or a data: URI."
    value_type = "image"
    deterministic = True
    resources = "io"
    params = (NAME, Param("default", "image"), REQUIRED)
    outputs = (Port("image", "image"),)

    async def convert(self, ctx: Context, value: Any) -> Any:
        if value is None:
            raise NodeError("no image was given", code="missing_input")
        return await ctx.service("media").load_image(value, account_id=ctx.account_id)


class InputMedia(InputNode):
    """A video, audio or other file given as a fileId, an https URL (guarded) or a data: URI."""

    value_type = "file"
    resources = "io"
    suffixes: ClassVar[dict[str, str]] = {}

    async def convert(self, ctx: Context, value: Any) -> Any:
        if value is None:
            raise NodeError(f"no {self.value_type} was given", code="missing_input")
        data, content_type = await ctx.service("media").load_bytes(value, account_id=ctx.account_id)
        content_type = (content_type or "application/octet-stream").lower()
        if self.value_type in ("video", "audio") and not content_type.startswith(f"{self.value_type}/") \
                and content_type != "application/octet-stream":
            raise NodeError(f"expected a {self.value_type} file, got {content_type}", code="invalid_input")
        workdir = Path(ctx.service("workdir"))
        suffix = mimetypes.guess_extension(content_type) or ""
        path = workdir / f"{ctx.node_id}-{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
        await ctx.run_thread(path.write_bytes, data)
        file_id = value if isinstance(value, str) and value.startswith("file_") else None
        return MediaFile(path=path, content_type=content_type, file_id=file_id)


class InputVideo(InputMedia):
    type = "input.video"
    display_name = "Video input"
    description = "A video given as an uploaded fileId, an https URL (fetched through the address guard) or a data: URI."
    value_type = "video"
    params = (NAME, Param("default", "video"), REQUIRED)
    outputs = (Port("video", "video"),)


class InputAudio(InputMedia):
    type = "input.audio"
    display_name = "Audio input"
    description = "An audio file given as an uploaded fileId, an https URL (guarded) or a data: URI."
    value_type = "audio"
    params = (NAME, Param("default", "audio"), REQUIRED)
    outputs = (Port("audio", "audio"),)


class InputFile(InputMedia):
    type = "input.file"
    display_name = "File input"
    description = "Any file given as an uploaded fileId, an https URL (guarded) or a data: URI."
    value_type = "file"
    params = (NAME, Param("default", "file"), REQUIRED)
    outputs = (Port("file", "file"),)


class OutputNode(Node):
    role = "output"
    deterministic = True

    async def run(self, ctx: Context, **kwargs: Any) -> dict[str, Any]:
        return {"value": kwargs.get(self.inputs[0].name)}


class OutputText(OutputNode):
    type = "output.text"
    display_name = "Text output"
    description = "Publishes text as a named output of the workflow."
    inputs = (Port("text", "text"),)
    params = (NAME,)


class OutputImage(OutputNode):
    type = "output.image"
    display_name = "Image output"
    description = "Publishes an image as a named output (a signed, expiring URL in the poll body)."
    inputs = (Port("image", "image"),)
    params = (NAME, Param("format", "text", default="png", enum=("png", "jpeg", "webp")))


class OutputJson(OutputNode):
    type = "output.json"
    display_name = "JSON output"
    description = "Publishes any JSON value as a named output."
    inputs = (Port("value", "any"),)
    params = (NAME,)


_SANDBOX = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@functools.lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """Compiling is most of a render's cost and a workflow renders the same template every run."""
    return _SANDBOX.from_string(source)


class TextTemplate(Node):
    type = "text.template"
    display_name = "Text template"
    description = "Renders a Jinja2 template (sandboxed) that sees `text` and every key of `values`."
    inputs = (Port("text", "text", required=False, default=""), Port("values", "json", required=False))
    params = (Param("template", "text", default="{{ text }}", multiline=True, max_length=20000),)
    outputs = (Port("text", "text"),)

    async def run(self, ctx: Context, *, template: str, text: str = "", values: Any = None) -> dict[str, Any]:
        scope: dict[str, Any] = {}
        if isinstance(values, dict):
            scope.update({str(k): v for k, v in values.items()})
        elif values is not None:
            scope["values"] = values
        scope["text"] = text
        # a template is a program: it runs in the sandbox, under a CPU-time and memory budget, off the loop
        return {"text": await sandbox_for(ctx).run(render_template, template, scope)}


MAX_RENDERED = 1_000_000


def render_template(template: str, scope: dict[str, Any]) -> str:
    """Compile (cached in the sandbox's warm child) and render; runs in the sandbox, never in the server."""
    try:
        rendered = compile_template(template).render(**scope)
    except TemplateError as exc:
        raise NodeError(f"template error: {exc}", code="template_error") from exc
    if len(rendered) > MAX_RENDERED:
        raise NodeError(f"rendered text exceeds {MAX_RENDERED:,} characters", code="template_error")
    return rendered


def resize_image(image: Image.Image, width: int, height: int, mode: str) -> Image.Image:
    if mode == "stretch":
        return image.resize((width, height), Image.Resampling.LANCZOS)
    if mode == "fill":
        scale = max(width / image.width, height / image.height)
        w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        scaled = image.resize((w, h), Image.Resampling.LANCZOS)
        left, top = (w - width) // 2, (h - height) // 2
        return scaled.crop((left, top, left + width, top + height))
    scale = min(width / image.width, height / image.height)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    return image.resize((w, h), Image.Resampling.LANCZOS)


class ImageResize(Node):
    type = "image.resize"
    display_name = "Resize image"
    description = ("Resizes an image: `fit` keeps the aspect ratio inside the box, `fill` covers the box and "
                   "crops the overflow, `stretch` ignores the aspect ratio.")
    inputs = (Port("image", "image"),)
    params = (
        Param("width", "integer", default=512, min=1, max=8192),
        Param("height", "integer", default=512, min=1, max=8192),
        Param("mode", "text", default="fit", enum=("fit", "fill", "stretch")),
    )
    outputs = (Port("image", "image"),)

    async def run(self, ctx: Context, *, image: Image.Image, width: int, height: int, mode: str) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(resize_image, image, width, height, mode)}


class UtilDelay(Node):
    type = "util.delay"
    display_name = "Delay"
    description = "Waits `seconds`, then passes its input through unchanged (useful for testing and pacing)."
    inputs = (Port("value", "any", required=False),)
    params = (Param("seconds", "number", default=1.0, min=0, max=3600),)
    outputs = (Port("value", "any"),)
    deterministic = False
    resources = "io"

    async def run(self, ctx: Context, *, seconds: float, value: Any = None) -> dict[str, Any]:
        step = 0.05
        waited = 0.0
        # a sleeping node holds no worker slot: the worker may run other work meanwhile
        with _asleep(ctx, seconds):
            while waited < seconds:
                chunk = min(step, seconds - waited)
                await asyncio.sleep(chunk)
                waited += chunk
                if seconds >= 1 and int((waited - chunk) * 4 / seconds) != int(waited * 4 / seconds):
                    await ctx.progress(waited / seconds)
        return {"value": value}


def _asleep(ctx: Context, seconds: float) -> contextlib.AbstractContextManager[Any]:
    """The worker's `sleeping` capability (lends the execution's slot back while it sleeps), where there is one."""
    try:
        slots = ctx.service("sleeping")
    except LookupError:
        return contextlib.nullcontext()
    return slots.asleep(ctx.execution_id, seconds)


def nodes() -> list[type[Node]]:
    return [InputText, InputNumber, InputInteger, InputBoolean, InputImage, InputVideo, InputAudio, InputFile, OutputText, OutputImage, OutputJson,
            TextTemplate, ImageResize, UtilDelay]
