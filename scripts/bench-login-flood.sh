#!/usr/bin/env bash
# The login-flood benchmark of docs/benchmarks.md (issue 15, item 7): a
# chatting client's latency and the server's peak RSS while 1,200
# connections flood POST /api/login with made-up names. Two runs:
#   throttled  — the defaults: every flooder is one address (127.0.0.1), so
#                the per-address throttle answers 429 before any hashing;
#   unthrottled — login throttles and per-address caps off, as if 1,200
#                addresses flooded: only the bounded hashing stands.
#   scripts/bench-login-flood.sh     (FLOOD=1200 SECONDS_PER_RUN=15)
# Bounded: each run lasts SECONDS_PER_RUN; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FLOOD=${FLOOD:-1200}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
OUT=$ROOT/target/bench
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -p chatseal-server -p chatseal-load >&2
SERVER=$ROOT/target/release/chatseal-server
LOAD=$ROOT/target/release/chatseal-load
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null || true' EXIT

run() { # label server-args...
  local label=$1; shift
  local dir port; dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$SERVER" --listen "127.0.0.1:$port" --data-dir "$dir" --allow-guests \
    --rate-per-sec 1000000 --rate-burst 1000000 "$@" >"$OUT/login-flood-$label.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  echo "==> $label: $FLOOD login flooders, 10 chatting clients, $SECONDS_PER_RUN s" >&2
  "$LOAD" --url "http://127.0.0.1:$port" --pid "$PID" --label "login-flood-$label" \
    chat --clients 10 --senders 2 --window 1 --size 100 --duration "$SECONDS_PER_RUN" --login-flood "$FLOOD"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  rm -rf "$dir"
}

run throttled
run unthrottled --login-ip-burst 1000000 --login-ip-per-sec 1000000 \
  --login-account-burst 1000000 --login-account-per-sec 1000000 --login-queue 100000 \
  --max-connections-per-ip 0 --max-sessions-per-ip 0
