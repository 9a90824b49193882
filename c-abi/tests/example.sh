#!/usr/bin/env bash
# Runs the example microservice on a free loopback port and checks that an
# /encrypt reply is a real envelope that /decrypt (and the library) opens.
set -euo pipefail
bin=$1
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
umask 077
python3 - "$dir/keyring.json" <<'PY'
import base64, json, os, sys
json.dump({"primary": 1, "min_decrypt": 1, "keys": [{"id": 1, "key": base64.b64encode(os.urandom(32)).decode()}]}, open(sys.argv[1], "w"))
PY
"$bin" "$dir/keyring.json" 4 > "$dir/out" &
pid=$!
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/^listening on //p' "$dir/out")
enc=$(curl -sf --max-time 5 "http://$addr/encrypt" -H 'content-type: application/json' -d '{"message":"hello \"tutorial\""}')
env=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["encrypted"])' "$enc")
raw=$(python3 -c 'import base64,sys; b=base64.b64decode(sys.argv[1]); print(len(b), b[0], b[1])' "$env")
[ "$raw" = "50 1 1" ] || { echo "not a v1 envelope: $raw"; exit 1; }
dec=$(curl -sf --max-time 5 "http://$addr/decrypt" -H 'content-type: application/json' -d "{\"encrypted\":\"$env\"}")
[ "$dec" = '{"message":"hello \"tutorial\""}' ] || { echo "decrypt gave $dec"; exit 1; }
bad=$(curl -s --max-time 5 "http://$addr/decrypt" -d '{"encrypted":"AQE="}')
[[ "$bad" == *MALFORMED* ]] || { echo "bad input gave $bad"; exit 1; }
curl -s --max-time 5 "http://$addr/nothing" >/dev/null
wait "$pid"
echo "microservice example: 3 passed, 0 failed"
