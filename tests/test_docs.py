"""The documents in the repository stand alone: docs/nodes.md matches the node schemas, and no document or
source file points at a file outside the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.server import ROOT

#: what is not the project's own text
SKIP_DIRS = {".git", ".venv", "node_modules", "dist", "build", ".nodeloom", "__pycache__", ".mypy_cache",
             ".ruff_cache", ".pytest_cache", "test-artifacts", "outputs"}
TEXT = {".md", ".py", ".toml", ".txt", ".sh", ".ts", ".tsx", ".js", ".json", ".yml", ".yaml", ".cfg", ".ini", ""}
#: a path into the folder beside the repository (spelt in two parts, so this file does not match itself)
OUTSIDE = re.compile("(\\.\\./)+" + "shared" + r"\b|(?<![\w./-])" + "shared" + r"/[A-Z]+\.md")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def project_files() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            if path.suffix in TEXT or name in ("Makefile", "Dockerfile"):
                found.append(path)
    return found


def test_nodes_md_is_generated_from_the_current_schemas() -> None:
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-nodes-doc.py"), "--check"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr


def test_nothing_points_outside_the_repository() -> None:
    offending = []
    for path in project_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                offending.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offending == []


def test_relative_links_in_the_docs_resolve_inside_the_repository() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "clients").glob("*/README.md"))]
    broken = []
    for doc in docs:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or an anchor on the same page
            resolved = (doc.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{doc.relative_to(ROOT)} → {target}")
    assert broken == []
