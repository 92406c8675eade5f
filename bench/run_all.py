"""Run every benchmark in turn (`make bench`). Each prints its figures beside a baseline from the same run."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    scripts = ["bench_engine.py", "bench_platform.py", "bench_model_nodes.py", "bench_vs_comfyui.py", "bench_comfyui.py",
               "soak_rss.py"]
    if reachable(5432) and reachable(6379):
        scripts.append("bench_scale.py")
    else:
        print("skipping bench_scale.py: it needs PostgreSQL on :5432 and Redis on :6379")
    failed = 0
    for script in scripts:
        print(f"\n===== {script} =====", flush=True)
        failed += subprocess.call([sys.executable, str(HERE / script)], cwd=HERE.parent) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
