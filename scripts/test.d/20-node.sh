#!/usr/bin/env bash
# The npm package `chatseal`: build the addon from source with @napi-rs/cli,
# check the committed loader and .d.ts for drift, type-check, run node:test.
set -euo pipefail
cd "$(dirname "$0")/../../js"
command -v node >/dev/null || { echo "error: Node.js 18+ is required" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
npm run build
if ! git diff --exit-code -- index.js index.d.ts; then
  echo "error: js/index.js or js/index.d.ts differ from what napi build generates; commit the regenerated files" >&2
  exit 1
fi
npm run typecheck
npm test
