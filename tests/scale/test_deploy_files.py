"""Deployment files cannot be built here (no Docker engine); check what can be checked."""

from __future__ import annotations

from pathlib import Path

import yaml

from nodeloom.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_consistent() -> None:
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "api", "worker-cpu"} <= set(services)
    for name in ("migrate", "api", "worker-cpu"):
        assert services[name]["build"] == ".." and services[name]["env_file"] == "nodeloom.env"
    assert services["worker-cpu"]["command"][:2] == ["nodeloom", "worker"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_env_example_names_real_settings() -> None:
    fields = {f"NODELOOM_{name.upper()}" for name in Settings.model_fields}
    keys = [line.split("=", 1)[0] for line in (ROOT / "deploy/nodeloom.env.example").read_text().splitlines()
            if line and not line.startswith("#")]
    unknown = [k for k in keys if k.startswith("NODELOOM_") and k not in fields]
    assert unknown == []


def test_dockerfile_copies_paths_that_exist() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src
    text = (ROOT / "Dockerfile").read_text()
    assert "USER nodeloom" in text and "HEALTHCHECK" in text and "torch" not in text
