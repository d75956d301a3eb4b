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
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
fail() {
  echo "api-fuzz: $*" >&2
  echo "--- the server's log:" >&2
  tail -n 40 "$work/server.log" >&2 || true
  exit 1
}

# No scheduler: its catch-up backup would hold the job slot the fuzzed routes start.
printf '[backup]\nschedule = false\n' >"$work/server.toml"
# Port 0: the server picks a free port and prints it (no race for a port picked here).
"$server" serve --demo --data "$work/data" --listen 127.0.0.1:0 --insecure-http \
  --config "$work/server.toml" >"$work/server.log" 2>&1 &
pid=$!
base=
for _ in $(seq 1 300); do
  kill -0 "$pid" 2>/dev/null || fail "the server stopped at start"
  base=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$work/server.log" | head -n 1)
  [ -n "$base" ] && curl -fs "$base/healthz" >/dev/null 2>&1 && break
  base=
  sleep 0.2
done
[ -n "$base" ] || fail "the server did not answer within a minute"
token=$(curl -fs -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"owner@demo.repairops.test","password":"demo-owner"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])') ||
  fail "the demo owner could not sign in"

# Left out: signing out (it would end the fuzzer's own session), the event stream (it
# never ends), key rotation (minutes of work per call) and changes to sign-ins (they
# could switch off or demote the owner the fuzzer signs in as).
status=0
# Run from the scratch folder: schemathesis keeps a cache in ./.schemathesis.
(cd "$work" && schemathesis run "$base/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance \
  --phases coverage,fuzzing --max-time "$seconds" --workers 2 --seed 1 \
  --exclude-path /api/v1/auth/logout --exclude-path /api/v1/events \
  --exclude-path /api/v1/keys/rotate --exclude-path-regex '^/api/v1/team/' \
  --suppress-health-check all --warnings off) || status=$?
if grep -q '"panic"' "$work/server.log"; then
  echo "the server logged a panic:" >&2
  grep '"panic"' "$work/server.log" >&2
  status=1
fi
exit "$status"
