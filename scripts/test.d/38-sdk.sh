#!/usr/bin/env bash
# The client SDK (chatseal/client, js/client) in Node against the Rust
# server, the Node server and a two-server cluster, and the README's JS
# snippet run as written (tests/sdk). js/ was built by 20-node.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p chatseal-server --locked
(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)
node tests/sdk/run.js rust node cluster
