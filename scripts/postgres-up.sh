#!/usr/bin/env bash
# A throw-away PostgreSQL for the history-store tests: Debian's server binaries,
# a cluster of our own (not Debian's "main"), loopback only, trust auth for the
# local test role. Idempotent: prints the DSN; a second call finds it running.
#   scripts/postgres-up.sh          -> postgresql://bindtrace@127.0.0.1:54329/bindtrace
#   scripts/postgres-up.sh stop     -> stops the server it started (pg_ctl, by its pid file)
set -euo pipefail

DATA=${BINDTRACE_PG_DATA:-/var/lib/bindtrace-pg/data}
PORT=${BINDTRACE_PG_PORT:-54329}
SOCK=$(dirname "$DATA")/run
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
DSN="postgresql://bindtrace@127.0.0.1:$PORT/bindtrace"

if [ -z "$BIN" ]; then
  echo "postgres-up: no PostgreSQL server binaries under /usr/lib/postgresql: apt-get install postgresql" >&2
  exit 1
fi
as_pg() { runuser -u postgres -- "$@"; }

if [ "${1:-}" = stop ]; then
  [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  exit 0
fi

mkdir -p "$SOCK" "$(dirname "$DATA")"
chown postgres:postgres "$(dirname "$DATA")" "$SOCK"
if [ ! -f "$DATA/PG_VERSION" ]; then
  as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  as_pg "$BIN/pg_ctl" -D "$DATA" -w -l "$(dirname "$DATA")/server.log" \
    -o "-p $PORT -k $SOCK -c listen_addresses=127.0.0.1" start >/dev/null
fi
psql_pg() { as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAq "$@"; }
[ "$(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname = 'bindtrace'")" = 1 ] ||
  psql_pg -c "CREATE ROLE bindtrace LOGIN CREATEDB"
[ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname = 'bindtrace'")" = 1 ] ||
  psql_pg -c "CREATE DATABASE bindtrace OWNER bindtrace"
echo "$DSN"
