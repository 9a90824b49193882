#!/usr/bin/env bash
# The abuse suite (tests/abuse, issue 15): floods and slow clients against
# the Rust server — login floods, Engine.IO handshake floods, slowloris,
# join floods, oversized catch-ups, slow readers, secrets in trace logs —
# and the packet limit against both servers. Every flood is loopback only
# (127.0.x.y addresses stand for many clients) and bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p chatseal-server --locked
# The suite uses the conformance suite's helpers and socket.io-client.
# The cluster test needs PostgreSQL and Redis on 127.0.0.1, as 30-conformance.sh.
[ -d tests/conformance/node_modules ] || (cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
RUST=(login floods rooms secrets packet cluster)
for name in "${RUST[@]}"; do
  echo "== abuse: $name.test.js against rust =="
  CHATSEAL_TARGET=rust node --test --test-force-exit "tests/abuse/$name.test.js"
done
# js/ was built by 20-node.sh: the Node server loads that addon.
echo "== abuse: packet.test.js against node =="
CHATSEAL_TARGET=node node --test --test-force-exit tests/abuse/packet.test.js
