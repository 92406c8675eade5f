#!/usr/bin/env bash
# Builds the dashboard into web/dist (served by the API at /). Skips cleanly when web/ is absent.
set -euo pipefail
cd "$(dirname "$0")/../web" 2>/dev/null || { echo "no web/ folder: skipping dashboard build"; exit 0; }
[ -f package.json ] || { echo "no web/package.json: skipping dashboard build"; exit 0; }
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
