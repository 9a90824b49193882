#!/usr/bin/env bash
# `keys rewrap` on N stored messages (SQLite, release build), and chat
# latency (p99) before and while it runs. Not part of the test suite: speed
# is shown, never asserted. Usage: N=1000000 scripts/bench-rewrap.sh
# (BATCH=5000 for `--batch 5000`; the command's default otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
rewrap=(keys rewrap --log "info,chatseal_server::keys::rewrap=debug" ${BATCH:+--batch "$BATCH"})
T=${CARGO_TARGET_DIR:-target}/release
cargo build --release --locked -p chatseal-server -p chatseal-load
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$T/chatseal-server" --listen "127.0.0.1:$port" --data-dir "$dir" --allow-guests \
  --rate-per-sec 1000000 --rate-burst 1000000 --log warn >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
load() { "$T/chatseal-load" --url "http://127.0.0.1:$port" --pid "$server" --label "$1" chat "${@:2}"; }
latency() { load "$1" --clients 20 --senders 10 --rooms 4 --window 1 --duration 10; }

echo "== filling the store with $N messages"
load fill --clients 8 --senders 8 --rooms 8 --window 64 --messages $((N / 8)) --duration 900 | grep -E "sent|acked" || true
"$T/chatseal-server" keys status --data-dir "$dir"
"$T/chatseal-server" keys rotate --data-dir "$dir"

echo "== chat latency, no rewrap"
latency idle | grep latency
echo "== keys rewrap ${BATCH:+--batch $BATCH }alone"
"$T/chatseal-server" "${rewrap[@]}" --data-dir "$dir" | tail -n 1
"$T/chatseal-server" keys rotate --data-dir "$dir"
echo "== chat latency while keys rewrap runs"
"$T/chatseal-server" "${rewrap[@]}" --data-dir "$dir" >"$dir/rewrap.log" 2>&1 &
running=$!
latency during | grep latency
wait $running
tail -n 3 "$dir/rewrap.log"
"$T/chatseal-server" keys status --data-dir "$dir"
