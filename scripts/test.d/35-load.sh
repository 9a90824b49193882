#!/usr/bin/env bash
# The load tool works end to end: a short, small run against the Rust server
# in which every delivery must open and every acked message must arrive
# (--fail-on-error). Speed is measured by `make bench`, never asserted here.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked -p chatseal-server -p chatseal-load
TARGET=${CARGO_TARGET_DIR:-target}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TARGET/debug/chatseal-server" --listen "127.0.0.1:$port" --data-dir "$dir" --allow-guests \
  --rate-per-sec 100000 --rate-burst 100000 >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
"$TARGET/debug/chatseal-load" --url "http://127.0.0.1:$port" --pid "$server" --label smoke \
  chat --clients 6 --senders 3 --rooms 2 --duration 2 --fail-on-error
