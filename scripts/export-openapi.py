#!/usr/bin/env python3
"""Writes the API's OpenAPI document (what a server answers at /openapi.json) to a file, from the app itself:
`create_app(...).openapi()` over a throw-away data directory, so no server is started and nothing is kept.

    python scripts/export-openapi.py                    # → clients/typescript/openapi.json
    python scripts/export-openapi.py -o /tmp/api.json   # anywhere else
    python scripts/export-openapi.py --check            # exit 1 when the checked-in document is stale

The TypeScript client's types are generated from that file (`cd clients/typescript && npm run gen`); the test
tests/client/test_typescript.py fails when either is stale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "clients" / "typescript" / "openapi.json"


def document() -> dict[str, Any]:
    """The OpenAPI document of an app built over a temporary, empty data directory."""
    sys.path.insert(0, str(ROOT / "src"))
    from nodeloom.api import create_app
    from nodeloom.compose import build
    from nodeloom.settings import Settings

    logging.disable(logging.WARNING)  # building the services may log start-up notes: not part of the output
    with tempfile.TemporaryDirectory(prefix="nodeloom-openapi-") as tmp:
        settings = Settings(environment="test", data_dir=Path(tmp) / "data", secret_key="openapi-export-0123456789",
                            node_packs=[], comfyui_urls=[], rate_limits_enabled=False)
        services = build(settings, migrate=True)
        try:
            app = create_app(settings, services=services, run_workers=False)
            return app.openapi()
        finally:
            asyncio.run(services.aclose())


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT, help="where to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    text = render(document())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is stale: run `python scripts/export-openapi.py && "
                  f"(cd clients/typescript && npm run gen)`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
