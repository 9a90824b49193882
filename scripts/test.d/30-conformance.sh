#!/usr/bin/env bash
# The protocol conformance suite (tests/conformance), with socket.io-client,
# against every chat server: the Rust server and js/server.js.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p chatseal-server --locked
(cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
# The cluster tests need PostgreSQL and Redis (scripts/services.sh, run by
# scripts/test.sh, provides them when the machine has none).
if ! (exec 3<>/dev/tcp/127.0.0.1/${CHATSEAL_TEST_REDIS_PORT:-6379}) 2>/dev/null; then
  echo "error: the cluster tests need Redis on 127.0.0.1:${CHATSEAL_TEST_REDIS_PORT:-6379} (run them through scripts/test.sh, which starts one)" >&2
  exit 1
fi
# The C++ example microservice, for node-cpp (10-c-abi.sh built it already).
make -C c-abi build/microservice
# js/ was built by 20-node.sh: the Node servers load that addon.
node tests/conformance/run.js rust rust-pg cluster node node-remote node-cpp
