#!/usr/bin/env bash
# Starts a two-region local deployment (westus, eastus) on embedded storage, runs a demo round
# trip (synthesize in westus, recognize in eastus), prints how to call it, and keeps serving
# until Ctrl-C. Data lives in ./.tandem/<region>. Called by `make up`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TANDEM_BIN:-target/release/tandem}
WEST_PORT=${TANDEM_WEST_PORT:-5001}
EAST_PORT=${TANDEM_EAST_PORT:-5002}
ROOT=${TANDEM_UP_DIR:-.tandem}
mkdir -p "$ROOT"
chmod 700 "$ROOT"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

key_for() { # region -> prints key1 of its "demo" resource (rotating it if the resource exists)
  local region=$1 out
  local args=(--region "$region" --data-dir "$ROOT/$region")
  if "$BIN" resource list "${args[@]}" --json | grep -q '"name":"demo"'; then
    out=$("$BIN" resource regenerate-key "${args[@]}" demo --key key1 --json)
  else
    out=$("$BIN" resource create "${args[@]}" --name demo --json)
  fi
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key1"])' "$out"
}

# The two regions are a pair: speaker data replicates between them, and each serves the
# other's speaker traffic while it is down. They authenticate to each other with this secret.
SECRET="$ROOT/peer.secret"
if [ ! -s "$SECRET" ]; then
  (umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' > "$SECRET")
fi

start() { # region port pair pair-port
  "$BIN" serve --region "$1" --listen "127.0.0.1:$2" --data-dir "$ROOT/$1" \
    --peer "$3=http://127.0.0.1:$4" --pair "$3" --peer-secret-file "$SECRET" \
    > "$ROOT/$1.out" 2> "$ROOT/$1.log" &
  pids+=($!)
}

wait_ready() { # port
  for _ in $(seq 1 600); do
    if python3 - "$1" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=1)
PY
    sleep 0.2
  done
  echo "region on port $1 did not become ready; see $ROOT/*.log" >&2
  exit 1
}

WEST_KEY=$(key_for westus)
EAST_KEY=$(key_for eastus)
start westus "$WEST_PORT" eastus "$EAST_PORT"
start eastus "$EAST_PORT" westus "$WEST_PORT"
wait_ready "$WEST_PORT"
wait_ready "$EAST_PORT"

echo "== Tandem is up: westus http://127.0.0.1:$WEST_PORT  eastus http://127.0.0.1:$EAST_PORT"
echo "== Demo: synthesize in westus, recognize in eastus"
"$BIN" demo --endpoint "http://127.0.0.1:$WEST_PORT" --key "$WEST_KEY" \
  --recognize-endpoint "http://127.0.0.1:$EAST_PORT" --recognize-key "$EAST_KEY" \
  --text "Tandem keeps speaking when a region goes down." -o "$ROOT/demo.wav"

umask 077
printf '%s\n' "$WEST_KEY" > "$ROOT/westus.key"
printf '%s\n' "$EAST_KEY" > "$ROOT/eastus.key"
cat <<MSG

== Still serving. Keys (resource "demo") are in $ROOT/westus.key and $ROOT/eastus.key. Try:
  curl -s -X POST "http://127.0.0.1:$WEST_PORT/speech/recognition/conversation/cognitiveservices/v1?language=en-US" \\
       -H "Ocp-Apim-Subscription-Key: \$(cat $ROOT/westus.key)" -H "Content-Type: audio/wav" \\
       --data-binary @$ROOT/demo.wav
  (the westus key is refused by eastus on port $EAST_PORT: regions are isolated, except that
   eastus, westus's pair, accepts it for westus's speaker profiles, which it replicates)
  curl -s http://127.0.0.1:$WEST_PORT/.well-known/tandem    # the region's pair, for clients
Logs: $ROOT/westus.log $ROOT/eastus.log   Ctrl-C stops both regions.
MSG
wait
