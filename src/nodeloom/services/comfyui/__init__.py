"""ComfyUI workflows in nodeloom (API.md "ComfyUI workflows"): the three shapes an import arrives in (`formats`),
the UI format converted as ComfyUI's frontend converts it (`convert`), and the nodeloom graph with its exposed inputs
and outputs (`expose`). Pure functions over dicts, bytes and an `/object_info` mapping: no I/O, no database."""

from nodeloom.services.comfyui.convert import Conversion, ui_to_api
from nodeloom.services.comfyui.expose import (
    ExposedInput,
    ExposedOutput,
    ImportResult,
    expose,
    import_workflow,
    output_port_names,
    result_port,
)
from nodeloom.services.comfyui.formats import ParsedWorkflow, detect_shape, parse_png, parse_upload, parse_workflow

__all__ = [
    "Conversion", "ExposedInput", "ExposedOutput", "ImportResult", "ParsedWorkflow", "detect_shape", "expose",
    "import_workflow", "output_port_names", "parse_png", "parse_upload", "parse_workflow", "result_port", "ui_to_api",
]
