#!/usr/bin/env bash
# Property-based fuzzing of the whole HTTP API from its own OpenAPI document
# (schemathesis): thousands of generated requests, valid and malformed, against the real
# server with the demo account. It fails on any 5xx answer, on a status or content type
# the document does not list, and on a panic in the server's log.
#
#   tests/api-fuzz/run.sh [SECONDS]     (default 60; SERVER_BIN picks the server binary)
#
# The seed is fixed, so a failure found in CI is found again here.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
server=${SERVER_BIN:-target/debug/repairops-server}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# No scheduler: its catch-up backup would hold the job slot the fuzzed routes start.
printf '[backup]\nschedule = false\n' >"$work/server.toml"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" serve --demo --data "$work/data" --listen "127.0.0.1:$port" --insecure-http \
  --config "$work/server.toml" >"$work/server.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fs "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
token=$(curl -fs -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"owner@demo.repairops.test","password":"demo-owner"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

# Left out: signing out (it would end the fuzzer's own session), the event stream (it
# never ends), key rotation (minutes of work per call) and changes to sign-ins (they
# could switch off or demote the owner the fuzzer signs in as).
status=0
schemathesis run "$base/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance \
  --phases coverage,fuzzing --max-time "$seconds" --workers 2 --seed 1 \
  --exclude-path /api/v1/auth/logout --exclude-path /api/v1/events \
  --exclude-path /api/v1/keys/rotate --exclude-path-regex '^/api/v1/team/' \
  --suppress-health-check all --warnings off || status=$?
if grep -q '"panic"' "$work/server.log"; then
  echo "the server logged a panic:" >&2
  grep '"panic"' "$work/server.log" >&2
  status=1
fi
exit "$status"
