#!/usr/bin/env bash
# Faults under the Rust server (tests/faults): a full disk (a small tmpfs in
# the server's own user and mount namespace, made with `unshare`), a
# PostgreSQL that hangs (a proxy that stops forwarding), a keyring file that
# never answers (a FIFO). Each is bounded in time; loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p chatseal-server --locked
(cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
if ! unshare --user --map-root-user --mount true 2>/dev/null; then
  echo "error: the disk-full test needs user namespaces (unshare --user --map-root-user --mount)" >&2
  exit 1
fi
node --test --test-force-exit tests/faults/*.test.js
