#!/usr/bin/env bash
# HTTP benchmark of repairops-server: requests per second and p99 latency of a ticket
# list and a ticket create, with 100 concurrent clients over TLS on loopback (wrk).
#
#   bench/server/run.sh [--smoke]
#
# The server (release build, or $SERVER_BIN) runs on a fresh data folder with the small
# demo shop; wrk runs on the same machine, so both share its cores. Results are printed
# and written to target/server-bench/results.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
DURATION=15s; CONNECTIONS=100; THREADS=2
if [[ $SMOKE == 1 ]]; then DURATION=2s; CONNECTIONS=10; fi

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
source "$ROOT/bench/lib.sh"
bench_server_bin
WORK="$ROOT/target/server-bench"
rm -rf "$WORK"; mkdir -p "$WORK"
trap '[[ -n ${SERVER:-} ]] && kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true' EXIT
bench_serve "$WORK" "$WORK/data" --demo
bench_login owner@demo.repairops.test demo-owner

cat >"$WORK/create.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"shop_id":1,"customer_id":1,"device_make":"Apple","device_model":"iPhone 13","problem":"Cracked screen"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA

run_wrk() { # log name, shown name, extra args...
  local log=$WORK/$1.txt name=$2; shift 2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" >"$log" 2>&1
  local rps p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' "$log")
  p99=$(awk '$1 == "99%" {print $2}' "$log")
  errors=$(awk '/Non-2xx or 3xx responses/ {print $5}' "$log")
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$CONNECTIONS" "$rps" "$p99" "${errors:-0}" | tee -a "$WORK/results.md"
}

{
  echo "### repairops-server HTTP benchmark ($(date -u +%Y-%m-%d), ${DURATION} per run$([[ $SMOKE == 1 ]] && echo ', smoke'))"
  echo
  echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}') on the same machine"
  echo "- Server: $("$SERVER_BIN" --version), TLS (its own CA), small demo shop (1,500 tickets), SQLite WAL"
  echo
  echo "| request | clients | requests/s | p99 latency | non-2xx |"
  echo "|---|---:|---:|---:|---:|"
} | tee "$WORK/results.md"
run_wrk list "GET /api/v1/tickets?limit=50" -H "Authorization: Bearer $TOKEN" "$URL/api/v1/tickets?limit=50"
run_wrk create "POST /api/v1/tickets" -s "$WORK/create.lua" "$URL/api/v1/tickets"
echo
echo "wrote $WORK/results.md"
