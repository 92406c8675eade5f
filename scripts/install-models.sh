#!/usr/bin/env bash
# Installs the optional offline model packages (nodeloom[local-models]) into the given pip.
# The server runs without them: model nodes are then listed as unavailable with this hint.
set -euo pipefail
PIP=${1:-.venv/bin/pip}
echo "offline model packages: none yet"
