#!/usr/bin/env bash
# The protocol conformance suite (tests/conformance), with socket.io-client,
# against every chat server: the Rust server and js/server.js.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p chatseal-server --locked
(cd tests/conformance && npm ci --no-audit --no-fund)
# js/ was built by 20-node.sh: the Node servers load that addon.
node tests/conformance/run.js rust rust-pg node node-remote
