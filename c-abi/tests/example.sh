#!/usr/bin/env bash
# Runs the example microservice on a free loopback port and checks its API
# against docs/protocol.md §4: /encrypt replies with a real envelope that
# /decrypt opens, room and context bind it (a chat context with NULs, sent as
# \u0000, as js/server.js sends it), the room key epoch binds it too, the
# service token is required, and bad input gets the engine's reason. The
# conformance target `node-cpp` runs the Node chat server against it.
set -euo pipefail
bin=$1
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
umask 077
python3 - "$dir/keyring.json" <<'PY'
import base64, json, os, sys
json.dump({"primary": 1, "min_decrypt": 1, "keys": [{"id": 1, "key": base64.b64encode(os.urandom(32)).decode()}]}, open(sys.argv[1], "w"))
PY
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
passed=0
check() { # name, got, want
  if [ "$2" = "$3" ]; then passed=$((passed + 1)); else echo "FAIL $1: got $2, want $3" >&2; exit 1; fi
}

if "$bin" "$dir/keyring.json" 1 2>/dev/null; then echo "FAIL: started without CHATSEAL_SERVICE_TOKEN" >&2; exit 1; fi
passed=$((passed + 1))

CHATSEAL_SERVICE_TOKEN=$token "$bin" "$dir/keyring.json" 26 > "$dir/out" &
pid=$!
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/^listening on //p' "$dir/out")
post() { # path, body, [token] -> "status body"
  curl -s --max-time 5 -o "$dir/body" -w '%{http_code}' "http://$addr$1" \
    -H 'content-type: application/json' ${3:+-H "Authorization: Bearer $3"} --data-binary "$2"
  printf ' %s' "$(cat "$dir/body")"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1].split(" ",1)[1])'"$1"')' "$2"; }

# 1. Service room, no context: the tutorial's call.
enc=$(post /encrypt '{"message":"hello \"tutorial\""}' "$token")
env=$(field '["encrypted"]' "$enc")
raw=$(python3 -c 'import base64,sys; b=base64.b64decode(sys.argv[1]); print(len(b), b[0], b[1])' "$env")
check "v1 envelope" "$raw" "50 1 1"
check "decrypt" "$(post /decrypt "{\"encrypted\":\"$env\"}" "$token")" '200 {"message":"hello \"tutorial\""}'

# 2. A chat message: room and a context with NULs (\u0000) and non-ASCII.
ctx='lobby\u00000192f0c1\u0000zo\u00eb'
enc=$(post /encrypt "{\"room\":\"lobby\",\"context\":\"$ctx\",\"message\":\"hi \\u00e9\\n\\ud83d\\udd10\"}" "$token")
env=$(field '["encrypted"]' "$enc")
check "decrypt in room and context" "$(post /decrypt "{\"encrypted\":\"$env\",\"room\":\"lobby\",\"context\":\"$ctx\"}" "$token")" \
  "200 {\"message\":\"hi é\\u000a🔐\"}"
check "other room" "$(field '["error"]["reason"]' "$(post /decrypt "{\"encrypted\":\"$env\",\"room\":\"other\",\"context\":\"$ctx\"}" "$token")")" BAD_TAG
check "no context" "$(field '["error"]["reason"]' "$(post /decrypt "{\"encrypted\":\"$env\",\"room\":\"lobby\"}" "$token")")" BAD_TAG

# 3. The token is required, bad input is named, unknown routes are 404.
check "no token" "$(post /encrypt '{"message":"x"}' | cut -c1-3)" 401
check "wrong token" "$(post /decrypt "{\"encrypted\":\"$env\"}" "x$token" | cut -c1-3)" 401
check "malformed" "$(field '["error"]["reason"]' "$(post /decrypt '{"encrypted":"AQE="}' "$token")")" MALFORMED
check "not JSON" "$(post /encrypt '{"message":1}' "$token" | cut -c1-3)" 400
check "bad room" "$(field '["error"]["reason"]' "$(post /encrypt '{"message":"x","room":"a\nb"}' "$token")")" INVALID_ROOM
check "not found" "$(post /nothing '{}' "$token" | cut -c1-3)" 404

# 4. Room key epochs: sealed at an epoch, opened only at it (none is epoch
#    0); an epoch that is not an integer 0..=4294967295 is BAD_REQUEST.
enc=$(post /encrypt '{"message":"at seven","room":"lobby","epoch":7}' "$token")
env=$(field '["encrypted"]' "$enc")
check "decrypt at the epoch" "$(post /decrypt "{\"encrypted\":\"$env\",\"room\":\"lobby\",\"epoch\":7}" "$token")" \
  '200 {"message":"at seven"}'
check "no epoch is epoch 0" "$(field '["error"]["reason"]' "$(post /decrypt "{\"encrypted\":\"$env\",\"room\":\"lobby\"}" "$token")")" BAD_TAG
check "other epoch" "$(field '["error"]["reason"]' "$(post /decrypt "{\"encrypted\":\"$env\",\"room\":\"lobby\",\"epoch\":6}" "$token")")" BAD_TAG
enc=$(post /encrypt '{"message":"at max","epoch":4294967295}' "$token")
env=$(field '["encrypted"]' "$enc")
check "largest epoch" "$(post /decrypt "{\"encrypted\":\"$env\",\"epoch\":4294967295}" "$token")" '200 {"message":"at max"}'
for bad in -1 1.5 1e0 4294967296 '"1"' null; do
  got=$(post /encrypt "{\"message\":\"x\",\"epoch\":$bad}" "$token")
  check "epoch $bad" "${got%% *} $(field '["error"]["code"]' "$got")" "400 BAD_REQUEST"
done
check "decrypt epoch \"7\"" "$(post /decrypt "{\"encrypted\":\"$env\",\"epoch\":\"7\"}" "$token" | cut -c1-3)" 400
check "room as a number" "$(post /encrypt '{"message":"x","room":5}' "$token" | cut -c1-3)" 400
wait "$pid"
pid=
echo "microservice example: $passed passed, 0 failed"
