#!/usr/bin/env bash
# Runs the TypeScript client's unit tests (clients/typescript: node:test, after `npm ci` when its node_modules are
# missing or older than its lock file) and the dashboard's unit tests (Vitest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -f "$root/clients/typescript/package.json" ]; then
  cd "$root/clients/typescript"
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  npm test --silent
fi
cd "$root/web" 2>/dev/null || exit 0
[ -f package.json ] || exit 0
npm test --silent
