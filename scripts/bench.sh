#!/usr/bin/env bash
# The benchmark suite of docs/benchmarks.md: every server under the same
# load, in one run, on this machine; then idle-connection memory.
#
#   scripts/bench.sh            (or: make bench)
#   BENCH_SECONDS=6 BENCH_REPEAT=3 BENCH_IDLE=10000 scripts/bench.sh
#
# Results: target/bench/results.jsonl and a Markdown summary on stdout (the
# median of BENCH_REPEAT rounds, with the range of deliveries/s: this kind
# of machine varies by ±10 % from run to run). Bounded: each load run lasts
# BENCH_SECONDS (default 6); the whole suite takes about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_RUN=${BENCH_SECONDS:-6}
REPEAT=${BENCH_REPEAT:-3}
IDLE=${BENCH_IDLE:-10000}
OUT=$ROOT/target/bench
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "==> building (release)" >&2
cargo build --release --locked -p chatseal-server -p chatseal-load >&2
[ -f js/chatseal.linux-x64-gnu.node ] && [ -d js/node_modules ] || (cd js && npm ci --no-audit --no-fund && npm run build) >&2
SERVER=$ROOT/target/release/chatseal-server
LOAD=$ROOT/target/release/chatseal-load
# Every client of the benchmark comes from 127.0.0.1: the per-address caps
# (docs/operations.md, "Limits") would refuse the idle run's 10,000.
FAST=(--rate-per-sec 1000000 --rate-burst 1000000 --max-connections-per-ip 0 --max-sessions-per-ip 0
  --max-pending-sessions 0)
PIDS=()

cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  drop_pg 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_up() { # url
  for _ in $(seq 100); do curl -fs "$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "error: $1 did not come up" >&2; exit 1
}

# The started process and any children (a wrapper may stand between).
track() { PIDS+=("$1"); for c in $(pgrep -P "$1" || true); do PIDS+=("$c"); done; }

start_rust() { # port datadir [env...]
  local port=$1 dir=$2; shift 2
  env "$@" "$SERVER" --listen "127.0.0.1:$port" --data-dir "$dir" --allow-guests "${FAST[@]}" \
    >"$OUT/server-$port.log" 2>&1 &
  local pid=$!; wait_up "http://127.0.0.1:$port"; track "$pid"
}

start_node() { # port datadir [env...]
  local port=$1 dir=$2; shift 2
  env CHATSEAL_LISTEN="127.0.0.1:$port" CHATSEAL_DATA_DIR="$dir" CHATSEAL_RATE_PER_SEC=1000000 \
    CHATSEAL_RATE_BURST=1000000 "$@" node js/server.js >"$OUT/server-$port.log" 2>&1 &
  local pid=$!; wait_up "http://127.0.0.1:$port"; track "$pid"
}

stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
}

load() { # label url pids-csv clients
  local label=$1 url=$2 pids=$3 clients=$4 args=()
  for p in ${pids//,/ }; do args+=(--pid "$p"); done
  echo "==> $label, $clients clients" >&2
  "$LOAD" --url "$url" "${args[@]}" --label "$label" --json chat --clients "$clients" \
    --senders 10 --window 8 --size 100 --duration "$SECONDS_PER_RUN" >>"$OUT/results.jsonl"
}

run_config() { # label starter...
  local label=$1; shift
  for clients in 10 100; do
    local dir; dir=$(mktemp -d)
    local port; port=$(free_port)
    "$@" "$port" "$dir"
    load "$label" "http://127.0.0.1:$port" "$(IFS=,; echo "${PIDS[*]}")" "$clients"
    stop_all
    drop_pg
    rm -rf "$dir"
  done
}

drop_pg() {
  if [ -n "${PGDB:-}" ]; then
    psql -q -h 127.0.0.1 -d test -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null
    PGDB=
  fi
}

rust_sqlite() { start_rust "$1" "$2"; }
rust_pg() {
  PGDB=chatseal_bench_$$_$RANDOM
  psql -q -h 127.0.0.1 -d test -c "CREATE DATABASE $PGDB" >/dev/null
  start_rust "$1" "$2" DATABASE_URL="postgres://root@127.0.0.1:5432/$PGDB"
}
node_addon() { start_node "$1" "$2"; }
node_plain() { start_node "$1" "$2" CHATSEAL_PLAIN=true; }
node_remote() { # the tutorial's architecture: a POST to the Rust /encrypt per message
  local service; service=$(free_port)
  start_rust "$service" "$2"
  # /encrypt needs the service token, which the Rust server generated.
  start_node "$1" "$2/node" CHATSEAL_ENCRYPTION_URL="http://127.0.0.1:$service" \
    CHATSEAL_ENCRYPTION_TOKEN="$(cat "$2/service-token")" CHATSEAL_KEYRING_FILE="$2/keyring.json" CHATSEAL_KEK_FILE="$2/kek"
}

have_pg() { command -v psql >/dev/null && psql -q -h 127.0.0.1 -d test -c 'select 1' >/dev/null 2>&1; }
have_pg || echo "(no PostgreSQL at 127.0.0.1: skipping the rust (PostgreSQL) runs)" >&2
# Rounds interleave the servers, so a slow minute of the machine does not
# land on one server only.
for round in $(seq "$REPEAT"); do
  echo "==> round $round of $REPEAT" >&2
  run_config "rust (SQLite)" rust_sqlite
  if have_pg; then run_config "rust (PostgreSQL)" rust_pg; fi
  run_config "node + addon" node_addon
  run_config "node + remote /encrypt" node_remote
  run_config "node, plain" node_plain
done

for server in rust node; do
  dir=$(mktemp -d); port=$(free_port)
  if [ $server = rust ]; then start_rust "$port" "$dir"; else start_node "$port" "$dir"; fi
  echo "==> $server: $IDLE idle connections" >&2
  idle_pids=(); for p in "${PIDS[@]}"; do idle_pids+=(--pid "$p"); done
  "$LOAD" --url "http://127.0.0.1:$port" "${idle_pids[@]}" --label "$server" --json idle \
    --connections "$IDLE" >>"$OUT/results.jsonl"
  stop_all; rm -rf "$dir"
done

node tests/load/summary.js "$OUT/results.jsonl" "$OUT/servers.svg"
