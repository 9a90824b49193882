#!/usr/bin/env bash
# Runs every chatseal test, doing its own set-up on a fresh machine.
# This is the README's test command; CI (.ci/run) runs it in a fresh clone of HEAD.
#
# Every suite runs even when an earlier one fails; the run ends with one
# table (suite, result, passed, failed, seconds) and exits non-zero if any
# suite failed. Compiler output goes to target/test-logs/build.log and is
# shown only when the build fails; each suite's output is kept beside it.
set -uo pipefail
cd "$(dirname "$0")/.."

LOGS="${CARGO_TARGET_DIR:-target}/test-logs"
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$LOGS/results"
# Compiling lines are noise once the build below has passed.
export CARGO_TERM_QUIET=true

# shellcheck source=services.sh
source scripts/services.sh
trap services_stop EXIT

step() { printf '\n==> %s\n' "$*"; }

# run NAME COMMAND…: runs one suite, its output shown and kept in a log.
run() {
  local name=$1 start=$SECONDS rc
  shift
  step "$name"
  if [ "$name" = services ]; then
    # In this shell, not a pipeline, so its exports reach later suites.
    "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    cat "$LOGS/$name.log"
  else
    "$@" 2>&1 | tee "$LOGS/$name.log"
    rc=${PIPESTATUS[0]}
  fi
  if ! no_servers_left "$name"; then
    rc=1
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" "$LOGS/$name.log" >>"$LOGS/results"
  return "$rc"
}

# no_servers_left NAME: a suite must stop every server it started (one left
# behind keeps its port, its data directory and its memory after the run,
# on a CI machine or a developer's). This clone's servers still running are
# listed, killed, and fail the suite.
no_servers_left() {
  local root pattern left
  root=$(pwd -P)
  pattern="^($root/target/[^ ]*/chatseal-(server|relay)|[^ ]*node [^ ]*$root/js/server\.js)( |$)"
  left=$(pgrep -af "$pattern") || return 0
  sleep 1 # one that was just told to stop
  left=$(pgrep -af "$pattern") || return 0
  printf 'error: %s left servers running:\n%s\n' "$1" "$left" >&2
  pkill -9 -f "$pattern" || true
  return 1
}

# quiet LOG COMMAND…: output only if the command fails.
quiet() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { cat "$log"; echo "(full output: $log)"; return 1; }
}

rust_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast --show-progress none 2>&1
  else
    cargo test --workspace --locked --no-fail-fast 2>&1
  fi
}

run self-contained scripts/self-contained.sh
run services services_start
run format cargo fmt --all -- --check
run lint quiet "$LOGS/clippy-output.txt" cargo clippy --workspace --all-targets --locked -- -D warnings
run build quiet "$LOGS/build-output.txt" cargo build --workspace --all-targets --locked
run softhsm bash scripts/softhsm.sh
run rust rust_tests
run rust-doc cargo test --workspace --doc --locked
for suite in scripts/test.d/*.sh; do
  [ -e "$suite" ] || continue
  run "$(basename "$suite" .sh)" bash "$suite"
done

python3 scripts/test-summary.py "$LOGS/results"
