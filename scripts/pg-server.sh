#!/usr/bin/env bash
# A real, throwaway PostgreSQL server for the test suite: Debian's `postgresql` package, one
# cluster in a directory of its own, listening on 127.0.0.1 only, on a free port.
#
# Why PostgreSQL: a region that outgrows one machine runs several `tandem serve` nodes on one
# PostgreSQL database (`postgres://` metadata URL) instead of one SQLite file; the storage
# conformance suite runs against a real server, not a mock.
#
#   scripts/pg-server.sh install          apt-get install postgresql if no initdb is found
#   scripts/pg-server.sh start DIR        initdb into DIR and start it; prints `export` lines
#   scripts/pg-server.sh stop DIR         stop it
#   scripts/pg-server.sh run CMD ARGS...  install, start in a temporary directory, run CMD with
#                                         TANDEM_TEST_PG_URL set, stop; exits with CMD's status
#
# The server trusts connections from 127.0.0.1 (a test server: nothing else can reach it). The
# `tandem` role may create databases, so tests make one per test through it. The variable set is
# TANDEM_TEST_PG_URL=postgres://tandem@127.0.0.1:PORT/tandem. (TANDEM_REQUIRE_PG=1 makes the
# PostgreSQL tests fail instead of skipping without it.) TANDEM_PG=off makes `run` run CMD
# without a server (the PostgreSQL tests then skip).
#
# initdb refuses to run as root: as root, the cluster and the server run as the `postgres`
# system user (created by the package), and DIR is handed to it.
set -euo pipefail

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    echo "no PostgreSQL found under /usr/lib/postgresql; run: $0 install" >&2
    return 1
  fi
  echo "$d"
}

install() {
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    return 0
  fi
  echo "installing PostgreSQL (Debian package postgresql)" >&2
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq postgresql >&2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 bin port
  bin=$(bindir)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
  fi
  chmod 700 "$dir"
  port=$(free_port)
  # A test server: trust on loopback, and no fsync (a crash loses the whole directory anyway).
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  echo "$port" >"$dir/port"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/port"; fi
  local psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1)
  as_pg "${psql[@]}" -c "CREATE ROLE tandem LOGIN CREATEDB" >/dev/null
  as_pg "${psql[@]}" -c "CREATE DATABASE tandem OWNER tandem" >/dev/null
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (state in $dir)" >&2
  echo "export TANDEM_TEST_PG_URL=postgres://tandem@127.0.0.1:$port/tandem"
}

stop() {
  local dir=$1 bin
  bin=$(bindir)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?usage: $0 start DIR}" ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  run)
    shift
    if [ "${TANDEM_PG:-on}" = "off" ]; then
      echo "TANDEM_PG=off: no PostgreSQL server; the PostgreSQL tests skip" >&2
      exec "$@"
    fi
    install
    dir=$(mktemp -d -t tandem-pg.XXXXXX)
    trap 'stop "$dir"; rm -rf "$dir"' EXIT
    eval "$(start "$dir")"
    status=0
    "$@" || status=$?
    exit $status
    ;;
  *)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
