"""`nodeloom run` serves hosted nodes with the operator's vendor keys from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image
from tests.hosted.helpers import flux_graph, standin_env
from tests.providers.standins.fal import FalStandIn
from tests.providers.standins.gemini import GeminiStandIn
from tests.providers.standins.openai import OpenAIStandIn
from tests.providers.standins.replicate import ReplicateStandIn
from tests.support.server import ROOT


def run_cli(graph: dict, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    gf = tmp_path / "graph.json"
    gf.write_text(json.dumps(graph))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NODELOOM_", "FAL_", "REPLICATE_", "OPENAI_",
                                                                          "GEMINI_"))}
    return subprocess.run([sys.executable, "-m", "nodeloom.cli", "run", str(gf), "-i", "prompt=a fox", "--out",
                           str(tmp_path / "out")], env={**clean, "PYTHONPATH": str(ROOT),
                                                        "NODELOOM_DATA_DIR": str(tmp_path / "d"), **env},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_local_run_uses_the_operators_vendor_key(tmp_path: Path, fal_standin: FalStandIn,
                                                 replicate_standin: ReplicateStandIn, openai_standin: OpenAIStandIn,
                                                 gemini_standin: GeminiStandIn) -> None:
    env = standin_env(fal_standin, replicate_standin, openai_standin, gemini_standin)
    res = run_cli(flux_graph(), tmp_path, env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert Image.open(tmp_path / "out" / "image.png").size[0] > 0
    assert len(fal_standin.submissions) == 1  # served by the first vendor on the route
    # without any vendor key the node fails with the setting to add, and the command says so
    res = run_cli(flux_graph(), tmp_path, {})
    assert res.returncode == 1 and "FAL_KEY" in res.stdout
