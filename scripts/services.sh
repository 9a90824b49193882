# PostgreSQL and Redis for the tests, sourced by scripts/test.sh.
#
# `services_start` checks the configured addresses:
#   CHATSEAL_TEST_PG          default postgres://root@127.0.0.1:5432/test
#   CHATSEAL_TEST_REDIS_PORT  default 6379 (on 127.0.0.1)
# A reachable service is used as it is (the tests make and drop their own
# databases and channels). An unreachable one is replaced by a throwaway
# instance of Debian's package (installed with apt-get when missing and we
# are root) on a free port in a temporary directory, and the variable above
# is exported to point at it. `services_stop` stops and deletes only the
# instances it started; the machine's own servers are never touched.
#
# A missing tool that cannot be installed fails with one line naming it.

_svc_dir=""
_svc_pg_data=""
_svc_pg_user=""
_svc_redis_pid=""

_svc_die() {
  echo "error: $*" >&2
  return 1
}

_svc_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Installs Debian packages when we may (root with apt-get); otherwise fails
# with the command the user should run.
_svc_apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's $* for the tests"
    apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
      _svc_die "apt-get install $* failed"
  else
    _svc_die "the tests need $* (apt-get install $*), or a running server at the configured address"
  fi
}

_svc_pg_bin() {
  local bin
  for bin in "$(command -v "$1" 2>/dev/null)" /usr/lib/postgresql/*/bin/"$1"; do
    [ -n "$bin" ] && [ -x "$bin" ] && { echo "$bin"; return 0; }
  done
  return 1
}

_svc_pg_reachable() {
  local psql
  psql=$(_svc_pg_bin psql) || return 1
  "$psql" "$CHATSEAL_TEST_PG" -XAtqc 'select 1' >/dev/null 2>&1
}

_svc_redis_reachable() {
  (exec 3<>"/dev/tcp/127.0.0.1/$CHATSEAL_TEST_REDIS_PORT") 2>/dev/null
}

# Runs a command as the user the throwaway PostgreSQL belongs to: itself
# when not root (postgres refuses to run as root), else `postgres`.
_svc_as_pg() {
  if [ "$_svc_pg_user" = "$(id -un)" ]; then
    "$@"
  else
    runuser -u "$_svc_pg_user" -- "$@"
  fi
}

_svc_start_pg() {
  local initdb pg_ctl psql port
  if ! initdb=$(_svc_pg_bin initdb) || ! _svc_pg_bin psql >/dev/null; then
    _svc_apt_install postgresql || return 1
    initdb=$(_svc_pg_bin initdb) || _svc_die "initdb not found after installing postgresql" || return 1
  fi
  pg_ctl=$(_svc_pg_bin pg_ctl) || _svc_die "pg_ctl not found beside $initdb" || return 1
  psql=$(_svc_pg_bin psql)
  if [ "$(id -u)" = 0 ]; then
    _svc_pg_user=postgres
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres ||
      _svc_die "cannot create the user postgres to run PostgreSQL as (it refuses root)" || return 1
  else
    _svc_pg_user=$(id -un)
  fi
  port=$(_svc_free_port)
  _svc_pg_data="$_svc_dir/pg"
  mkdir -p "$_svc_pg_data"
  chown "$_svc_pg_user" "$_svc_dir" "$_svc_pg_data" 2>/dev/null || true
  _svc_as_pg "$initdb" -D "$_svc_pg_data" -U root --auth=trust -E UTF8 --no-sync >"$_svc_dir/initdb.log" 2>&1 ||
    { cat "$_svc_dir/initdb.log" >&2; _svc_die "initdb failed (log above)"; return 1; }
  _svc_as_pg "$pg_ctl" -D "$_svc_pg_data" -l "$_svc_dir/pg.log" -w -t 30 start \
    -o "-p $port -k $_svc_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" >/dev/null ||
    { cat "$_svc_dir/pg.log" >&2; _svc_die "PostgreSQL did not start (log above)"; return 1; }
  "$psql" "postgres://root@127.0.0.1:$port/postgres" -XAtqc 'create database test' >/dev/null ||
    _svc_die "cannot create the test database on the throwaway PostgreSQL" || return 1
  export CHATSEAL_TEST_PG="postgres://root@127.0.0.1:$port/test"
  echo "started a throwaway PostgreSQL at $CHATSEAL_TEST_PG"
}

_svc_start_redis() {
  local server port
  if ! command -v redis-server >/dev/null; then
    _svc_apt_install redis-server || return 1
  fi
  server=$(command -v redis-server) || _svc_die "redis-server not found after installing it" || return 1
  port=$(_svc_free_port)
  "$server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$_svc_dir" \
    --logfile "$_svc_dir/redis.log" </dev/null >/dev/null 2>&1 &
  _svc_redis_pid=$!
  export CHATSEAL_TEST_REDIS_PORT=$port
  local _
  for _ in $(seq 100); do
    _svc_redis_reachable && break
    sleep 0.1
  done
  _svc_redis_reachable || { cat "$_svc_dir/redis.log" >&2; _svc_die "redis-server did not start (log above)"; return 1; }
  echo "started a throwaway Redis on 127.0.0.1:$port"
}

services_start() {
  export CHATSEAL_TEST_PG="${CHATSEAL_TEST_PG:-postgres://root@127.0.0.1:5432/test}"
  export CHATSEAL_TEST_REDIS_PORT="${CHATSEAL_TEST_REDIS_PORT:-6379}"
  command -v python3 >/dev/null || _svc_die "the tests need python3" || return 1
  command -v openssl >/dev/null || _svc_die "the tests need openssl (server/tests/oidc.rs makes its RSA keys with it)" || return 1
  if _svc_pg_reachable && _svc_redis_reachable; then
    echo "using PostgreSQL at $CHATSEAL_TEST_PG and Redis on 127.0.0.1:$CHATSEAL_TEST_REDIS_PORT"
    return 0
  fi
  _svc_dir=$(mktemp -d "${TMPDIR:-/tmp}/chatseal-services.XXXXXX")
  chmod 755 "$_svc_dir"
  if _svc_pg_reachable; then
    echo "using PostgreSQL at $CHATSEAL_TEST_PG"
  else
    echo "no PostgreSQL at $CHATSEAL_TEST_PG"
    _svc_start_pg || return 1
  fi
  if _svc_redis_reachable; then
    echo "using Redis on 127.0.0.1:$CHATSEAL_TEST_REDIS_PORT"
  else
    echo "no Redis on 127.0.0.1:$CHATSEAL_TEST_REDIS_PORT"
    _svc_start_redis || return 1
  fi
}

services_stop() {
  if [ -n "$_svc_redis_pid" ]; then
    kill "$_svc_redis_pid" 2>/dev/null && wait "$_svc_redis_pid" 2>/dev/null
    _svc_redis_pid=""
  fi
  if [ -n "$_svc_pg_data" ]; then
    _svc_as_pg "$(_svc_pg_bin pg_ctl)" -D "$_svc_pg_data" -m immediate -w stop >/dev/null 2>&1
    _svc_pg_data=""
  fi
  if [ -n "$_svc_dir" ]; then
    rm -rf "$_svc_dir"
    _svc_dir=""
  fi
  return 0
}
