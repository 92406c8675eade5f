"""The local models pack: small AI models that run offline from weights shipped inside pip packages
(pinned in scripts/install-models.sh), plus diffusers text-to-image on GPU workers from the operator's model folder.
docs/models.md lists each model, its package and how the models are installed.

Every node here states in `availability()` whether its runtime and weights are installed, and how to install
them when not; runtimes are imported only when a node runs.
"""

from __future__ import annotations

from nodeloom.engine.node import Node
from nodeloom.nodes.models_diffusers import GenerateDiffusers
from nodeloom.nodes.models_text import LlmPromptExpandLocal, TextEmbed, TextSimilarity
from nodeloom.nodes.models_vision import (
    BackgroundRemove,
    BackgroundReplace,
    ImageOcr,
    UpscaleLanczos,
    UpscaleRealesrgan,
)


def nodes() -> list[type[Node]]:
    return [BackgroundRemove, BackgroundReplace, UpscaleLanczos, UpscaleRealesrgan, ImageOcr,
            LlmPromptExpandLocal, TextEmbed, TextSimilarity, GenerateDiffusers]
