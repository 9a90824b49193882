#!/usr/bin/env bash
# Browser tests: headless Chromium pages use the browser client (built by
# 20-node.sh into js/client/dist) against the Rust server and a two-server
# cluster (PostgreSQL + Redis; helpers from tests/sdk). Chromium is Debian's
# package, installed here if missing; Playwright never downloads one.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium for the browser test"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 chromium >/dev/null
  else
    echo "error: the browser test needs chromium (apt-get install chromium) or CHROMIUM_PATH" >&2
    exit 1
  fi
fi
[ -f js/client/dist/index.html ] || (cd js && npm run build:client)
cargo build -p chatseal-server --locked
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && node --test --test-force-exit)
# The outage race against the Node server too: its history restarts at seq 1,
# which pages tell by the join ack's historyId (docs/protocol.md §3).
(cd tests/browser && CHATSEAL_TARGET=node node --test --test-force-exit outage.test.js)
echo "screenshots: tests/artifacts/*.png"
