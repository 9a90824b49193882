#!/usr/bin/env bash
# The benchmark suite of docs/benchmarks.md: every server under the same
# load, in one run, on this machine; then the scenarios at scale.
#
#   scripts/bench.sh            (or: make bench)
#   BENCH_ONLY="servers idle" BENCH_SECONDS=6 BENCH_REPEAT=3 scripts/bench.sh
#
# Parts (BENCH_ONLY, a space-separated subset; default all, in this order):
#   servers     every server and the plain socketioxide relay, 10 and 100
#               clients, BENCH_REPEAT interleaved rounds of BENCH_SECONDS
#               each (default 3 × 6 s): ~16 runs a round, ~6 min in all
#               (the Rust server twice on SQLite: without clientIds, and
#               with the SDK's)
#   large-room  Rust (SQLite) and Node + addon: BENCH_BIG_ROOM members in one
#               room (2000), BENCH_BIG_SENDERS senders (4) at BENCH_BIG_RATE
#               msg/s each (10), send → last member p50/p99; ~1 min
#   many-rooms  the same two: BENCH_ROOMS rooms (1000) × BENCH_ROOM_SIZE
#               members (5), every member sending BENCH_ROOMS_RATE msg/s (1; 2 saturates this 2-core machine, load tool included);
#               ~1.5 min
#   since       Rust (SQLite): `join { since }` latency, BENCH_SINCE_JOINS
#               joins (500) at each store size of BENCH_SINCE_SIZES
#               (10000 100000 1000000 messages); filling 1 M messages through
#               the chat path takes ~1 min on a quiet 2-core machine
#   idle        Rust and Node: BENCH_IDLE idle connections (19000) from
#               BENCH_IDLE_PROCS load processes (2; 20,000 open files each
#               here), RSS per connection; ~1 min
# Scenario runs last BENCH_SCENARIO_SECONDS (default 10) of sending each.
# The whole suite takes about 13–14 minutes. BENCH_PROFILE=dev builds and
# runs debug binaries (a quick check of the script itself, not figures).
#
# Results: target/bench/results.jsonl and a Markdown summary on stdout (the
# median of BENCH_REPEAT rounds, with the range of deliveries/s: this kind
# of machine varies by ±10 % from run to run). Bounded: every load run ends
# within its duration plus its connecting (every connect and join gives up
# after 10 s) and at most 10 s of draining.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_RUN=${BENCH_SECONDS:-6}
REPEAT=${BENCH_REPEAT:-3}
ONLY=" ${BENCH_ONLY:-servers large-room many-rooms since idle} "
SCENARIO_SECONDS=${BENCH_SCENARIO_SECONDS:-10}
BIG_ROOM=${BENCH_BIG_ROOM:-2000}
BIG_SENDERS=${BENCH_BIG_SENDERS:-4}
BIG_RATE=${BENCH_BIG_RATE:-10}
ROOMS=${BENCH_ROOMS:-1000}
ROOM_SIZE=${BENCH_ROOM_SIZE:-5}
ROOMS_RATE=${BENCH_ROOMS_RATE:-1}
SINCE_JOINS=${BENCH_SINCE_JOINS:-500}
SINCE_SIZES=${BENCH_SINCE_SIZES:-10000 100000 1000000}
IDLE=${BENCH_IDLE:-19000}
IDLE_PROCS=${BENCH_IDLE_PROCS:-2}
PROFILE=${BENCH_PROFILE:-release}
OUT=$ROOT/target/bench
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

want() { [[ $ONLY == *" $1 "* ]]; }

echo "==> building ($PROFILE)" >&2
cargo build --profile "$PROFILE" --locked -p chatseal-server -p chatseal-load >&2
[ -f js/chatseal.linux-x64-gnu.node ] && [ -d js/node_modules ] || (cd js && npm ci --no-audit --no-fund && npm run build) >&2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
SERVER=$BIN/chatseal-server
LOAD=$BIN/chatseal-load
RELAY=$BIN/chatseal-relay
# Every client of the benchmark comes from 127.0.0.1: the per-address caps
# (docs/operations.md, "Limits") would refuse the idle run's 19,000.
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

start_rust() { # port datadir [env...]; RUST_ARGS: more flags
  local port=$1 dir=$2; shift 2
  env "$@" "$SERVER" --listen "127.0.0.1:$port" --data-dir "$dir" --allow-guests "${FAST[@]}" ${RUST_ARGS:-} \
    >"$OUT/server-$port.log" 2>&1 &
  local pid=$!; wait_up "http://127.0.0.1:$port"; track "$pid"
}

start_node() { # port datadir [env...]
  local port=$1 dir=$2; shift 2
  env CHATSEAL_LISTEN="127.0.0.1:$port" CHATSEAL_DATA_DIR="$dir" CHATSEAL_ALLOW_GUESTS=true CHATSEAL_RATE_PER_SEC=1000000 \
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
  "$LOAD" --url "$url" "${args[@]}" --label "$label" --scenario chat --json chat --clients "$clients" \
    --senders 10 --window 8 --size 100 --duration "$SECONDS_PER_RUN" ${CHAT_ARGS:-} >>"$OUT/results.jsonl"
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
plain_relay() { # socketioxide alone, no sealing, no store: the Rust server's ceiling
  "$RELAY" --listen "127.0.0.1:$1" >"$OUT/server-$1.log" 2>&1 &
  local pid=$!; wait_up "http://127.0.0.1:$1"; track "$pid"
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
want servers && ! have_pg && echo "(no PostgreSQL at 127.0.0.1: skipping the rust (PostgreSQL) runs)" >&2
# Rounds interleave the servers, so a slow minute of the machine does not
# land on one server only.
want servers && for round in $(seq "$REPEAT"); do
  echo "==> round $round of $REPEAT" >&2
  run_config "rust (SQLite)" rust_sqlite
  # Every message with a clientId, as the SDK sends them (UUID v7): the
  # resend look-up and its index, which the row above (no clientIds, as
  # the relay is compared on) leaves out.
  CHAT_ARGS="--client-ids ordered" run_config "rust (SQLite), SDK clientIds" rust_sqlite
  run_config "plain relay" plain_relay
  if have_pg; then run_config "rust (PostgreSQL)" rust_pg; fi
  run_config "node + addon" node_addon
  run_config "node + remote /encrypt" node_remote
  run_config "node, plain" node_plain
done

pid_args() { local p; for p in "${PIDS[@]}"; do printf -- '--pid\n%s\n' "$p"; done; }

# Scenarios at scale: the Rust server on SQLite and Node + addon, once each.
scenario() { # scenario label starter chat-args...
  local scenario=$1 label=$2 starter=$3; shift 3
  local dir; dir=$(mktemp -d)
  local port; port=$(free_port)
  "$starter" "$port" "$dir"
  echo "==> $scenario: $label" >&2
  mapfile -t pids < <(pid_args)
  "$LOAD" --url "http://127.0.0.1:$port" "${pids[@]}" --label "$label" --scenario "$scenario" --json \
    chat --size 100 --duration "$SCENARIO_SECONDS" "$@" >>"$OUT/results.jsonl"
  stop_all; rm -rf "$dir"
}
if want large-room; then
  for s in "rust (SQLite):rust_sqlite" "node + addon:node_addon"; do
    # The per-delivery latency is every member's; --last-delivery times each
    # message to its last member. A window of 4 bounds a sender's backlog
    # when the server cannot keep up with the rate.
    scenario large-room "${s%%:*}" "${s##*:}" --clients "$BIG_ROOM" --rooms 1 \
      --senders "$BIG_SENDERS" --rate "$BIG_RATE" --window 4 --last-delivery
  done
fi
if want many-rooms; then
  for s in "rust (SQLite):rust_sqlite" "node + addon:node_addon"; do
    scenario many-rooms "${s%%:*}" "${s##*:}" --clients $((ROOMS * ROOM_SIZE)) --rooms "$ROOMS" \
      --senders $((ROOMS * ROOM_SIZE)) --rate "$ROOMS_RATE" --window 4
  done
fi

if want since; then
  # `join { since }` against a growing store. The store is filled through
  # the chat path (8 guests, each in a room of its own, window 64): the
  # server seals, numbers and commits every message as it would in use, so
  # the rows and their indexes are exactly a real store's, with no second
  # writer of the schema to keep in step. At ~30 k messages/s (the group
  # commit) 1 M messages take under a minute here, fast enough for the
  # suite. Catch-up limits are lifted: the figure is the store's read, not
  # the per-connection rate limit.
  dir=$(mktemp -d); port=$(free_port)
  RUST_ARGS="--join-per-sec 1000000 --join-burst 1000000 --catch-up-per-sec 1000000 --catch-up-burst 1000000" \
    start_rust "$port" "$dir"
  mapfile -t pids < <(pid_args)
  stored=0
  for size in $SINCE_SIZES; do
    per=$(( (size - stored + 7) / 8 ))
    echo "==> since: filling the store to $size messages" >&2
    accepted=$("$LOAD" --url "http://127.0.0.1:$port" --label fill --json chat --clients 8 --senders 8 \
      --rooms 8 --window 64 --messages "$per" --duration 600 --fail-on-error 2>/dev/null |
      node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(0, "utf8")).accepted))')
    stored=$((stored + accepted))
    echo "==> since: $SINCE_JOINS joins at $stored stored messages" >&2
    "$LOAD" --url "http://127.0.0.1:$port" "${pids[@]}" --label "rust (SQLite)" --scenario since --json \
      since --room bench-0 --joins "$SINCE_JOINS" --back 50 --stored "$stored" >>"$OUT/results.jsonl"
  done
  stop_all; rm -rf "$dir"
fi

if want idle; then
  for server in rust node; do
    dir=$(mktemp -d); port=$(free_port)
    if [ $server = rust ]; then start_rust "$port" "$dir"; else start_node "$port" "$dir"; fi
    echo "==> $server: $IDLE idle connections from $IDLE_PROCS processes" >&2
    mapfile -t pids < <(pid_args)
    "$LOAD" --url "http://127.0.0.1:$port" "${pids[@]}" --label "$server" --scenario idle --json idle \
      --connections "$IDLE" --procs "$IDLE_PROCS" >>"$OUT/results.jsonl"
    stop_all; rm -rf "$dir"
  done
fi

node tests/load/summary.js "$OUT/results.jsonl" "$OUT/servers.svg"
