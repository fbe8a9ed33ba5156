#!/usr/bin/env bash
# A real S3-compatible server for the test suite: Garage (https://garagehq.deuxfleurs.fr),
# single node, on loopback, on free ports.
#
# Why Garage: it is an S3-compatible object store built for self-hosted, geo-distributed
# deployments and run in production by its authors and others; several nodes in different zones
# form one cluster that replicates across sites, which is how a Tandem operator grows blob
# storage past one site. It is a single Rust binary from crates.io (one of the registries this
# project installs from), so a fresh machine gets it with `cargo install`. Tandem does not link
# it (AGPL-3.0): it runs as a separate server.
#
#   scripts/s3-server.sh install          install `garage` if it is not on the PATH (~15 min once)
#   scripts/s3-server.sh start DIR        start a node with its state in DIR; prints `export` lines
#   scripts/s3-server.sh stop DIR         stop it
#   scripts/s3-server.sh run CMD ARGS...  install, start in a temporary directory, run CMD with
#                                         the S3 variables set, stop; exits with CMD's status
#
# The variables it sets are those the tests read: TANDEM_TEST_S3_URL (s3://bucket/prefix),
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, TANDEM_BACKUP_S3_ENDPOINT,
# and AWS_ALLOW_HTTP. (.ci/run also sets TANDEM_REQUIRE_S3=1: S3 tests fail instead of skipping.)
# TANDEM_S3=off makes `run` run CMD without a server (the S3 tests then skip).
set -euo pipefail

GARAGE_VERSION=2.5.0
BUCKET=tandem-test

install() {
  if command -v garage >/dev/null 2>&1; then
    return 0
  fi
  echo "installing garage $GARAGE_VERSION from crates.io (once per machine; about 15 minutes on 2 cores)" >&2
  # Only the SQLite metadata engine; no LTO and parallel codegen: a test server, built fast.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    cargo install "garage@$GARAGE_VERSION" --locked --quiet \
    --no-default-features --features sqlite,bundled-libs >&2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local rpc s3 admin
  rpc=$(free_port)
  s3=$(free_port)
  admin=$(free_port)
  cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
EOF
  chmod 600 "$dir/garage.toml"
  local g=(garage -c "$dir/garage.toml")
  nohup "${g[@]}" server >"$dir/server.log" 2>&1 &
  echo $! >"$dir/pid"
  local node=""
  for _ in $(seq 1 100); do
    node=$("${g[@]}" status 2>/dev/null | awk -v a="127.0.0.1:$rpc" '$0 ~ a {print $1; exit}') || true
    [ -n "$node" ] && break
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "garage exited; its log:" >&2
      cat "$dir/server.log" >&2
      return 1
    fi
    sleep 0.2
  done
  if [ -z "$node" ]; then
    echo "garage did not answer 'status' within 20 s; its log: $dir/server.log" >&2
    return 1
  fi
  "${g[@]}" layout assign -z dc1 -c 1G "$node" >/dev/null
  "${g[@]}" layout apply --version 1 >/dev/null
  local out=""
  for _ in $(seq 1 50); do
    if out=$("${g[@]}" bucket create "$BUCKET" 2>&1); then break; fi
    sleep 0.2 # "Layout not ready" until the new layout is in effect
  done
  "${g[@]}" bucket info "$BUCKET" >/dev/null || { echo "bucket create: $out" >&2; return 1; }
  out=$("${g[@]}" key create tandem-test)
  local id secret
  id=$(printf '%s\n' "$out" | awk '/Key ID:/ {print $3}')
  secret=$(printf '%s\n' "$out" | awk '/Secret key:/ {print $3}')
  if [ -z "$id" ] || [ -z "$secret" ]; then
    echo "could not read the key from 'garage key create':" >&2
    printf '%s\n' "$out" | sed 's/Secret key:.*/Secret key: <hidden>/' >&2
    return 1
  fi
  "${g[@]}" bucket allow --read --write --owner "$BUCKET" --key tandem-test >/dev/null
  cat >"$dir/env" <<EOF
export TANDEM_TEST_S3_URL=s3://$BUCKET/tests
export AWS_ACCESS_KEY_ID=$id
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=garage
export TANDEM_BACKUP_S3_ENDPOINT=http://127.0.0.1:$s3
export AWS_ALLOW_HTTP=true
EOF
  chmod 600 "$dir/env"
  echo "$("${g[@]}" --version 2>/dev/null | head -1 || true) on http://127.0.0.1:$s3 (bucket $BUCKET, state in $dir)" >&2
  cat "$dir/env"
}

stop() {
  local dir=$1
  if [ -f "$dir/pid" ]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?usage: $0 start DIR}" ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  run)
    shift
    if [ "${TANDEM_S3:-on}" = "off" ]; then
      echo "TANDEM_S3=off: no S3 server; the S3 tests skip" >&2
      exec "$@"
    fi
    install
    dir=$(mktemp -d -t tandem-garage.XXXXXX)
    trap 'stop "$dir"; rm -rf "$dir"' EXIT
    eval "$(start "$dir")"
    status=0
    "$@" || status=$?
    exit $status
    ;;
  *)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
