#!/usr/bin/env bash
# Runs the dashboard's unit tests (Vitest).
set -euo pipefail
cd "$(dirname "$0")/../web" 2>/dev/null || exit 0
[ -f package.json ] || exit 0
npm test --silent
