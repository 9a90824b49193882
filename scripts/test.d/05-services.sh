#!/usr/bin/env bash
# scripts/services.sh, pointed at addresses where nothing listens, must start
# its own PostgreSQL and Redis, export working addresses, reuse them when
# they are reachable, and stop them (and only them) at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../services.sh
source scripts/services.sh
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "FAIL: $*" >&2; services_stop; exit 1; }

dead_pg="postgres://root@127.0.0.1:$(free)/test"
dead_redis=$(free)
export CHATSEAL_TEST_PG=$dead_pg CHATSEAL_TEST_REDIS_PORT=$dead_redis
services_start
pg=$CHATSEAL_TEST_PG redis=$CHATSEAL_TEST_REDIS_PORT dir=$_svc_dir
[ "$pg" != "$dead_pg" ] || fail "CHATSEAL_TEST_PG still points where nothing listens"
[ "$redis" != "$dead_redis" ] || fail "CHATSEAL_TEST_REDIS_PORT still points where nothing listens"
psql=$(_svc_pg_bin psql)
[ "$("$psql" "$pg" -XAtqc 'select 40 + 2')" = 42 ] || fail "no query through $pg"
"$psql" "$pg" -Xq -c 'create database chatseal_probe' -c 'drop database chatseal_probe' ||
  fail "the tests cannot make and drop databases on $pg"
[ "$(redis-cli -p "$redis" ping)" = PONG ] || fail "no PING through port $redis"

# Reachable now: a second start uses them as they are and starts nothing.
again=$(bash -c 'source scripts/services.sh; services_start; echo "pg=$CHATSEAL_TEST_PG redis=$CHATSEAL_TEST_REDIS_PORT dir=$_svc_dir"')
echo "$again"
grep -q "^using PostgreSQL at $pg and Redis on 127.0.0.1:$redis\$" <<<"$again" || fail "reachable services were not reused"
grep -q "^pg=$pg redis=$redis dir=\$" <<<"$again" || fail "a reachable setup was changed"

services_stop
! "$psql" "$pg" -XAtqc 'select 1' >/dev/null 2>&1 || fail "PostgreSQL still answers after services_stop"
! (exec 3<>"/dev/tcp/127.0.0.1/$redis") 2>/dev/null || fail "Redis still answers after services_stop"
[ ! -e "$dir" ] || fail "$dir left behind"
echo "services: provisioned PostgreSQL and Redis on free ports, reused them, stopped them"
