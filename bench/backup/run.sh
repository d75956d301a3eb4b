#!/usr/bin/env bash
# Manual backups of the `large` demo shop through the API, first and second time, while
# a writer keeps inserting tickets; reports backup times (primary, and the copy to the
# secondary separately) and how long the writer's transactions took.
#
#   bench/backup/run.sh [--smoke]
#
# --smoke uses the small demo shop. Results: printed, and target/backup-bench/results.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
SIZE=large; [[ $SMOKE == 1 ]] && SIZE=small
source "$ROOT/bench/lib.sh"
bench_server_bin
WORK="$ROOT/target/backup-bench-$SIZE"
bench_seed "$WORK" "$SIZE"
rm -rf "$WORK/data/repos" "$WORK/data/keys/vault-bench.key"
PASSWORD=$(awk '$1 == "owner" {print $4}' "$WORK/seed.txt")
printf '[backup]\nschedule = false\n' >"$WORK/server.toml"
WRITER=
cleanup() { [[ -n ${SERVER:-} ]] && kill $SERVER 2>/dev/null || true; [[ -n $WRITER ]] && kill $WRITER 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
bench_serve "$WORK" "$WORK/data" --config "$WORK/server.toml"
bench_login owner@bench.repairops.test "$PASSWORD"
api() { curl -sf --cacert "$CA" -H "authorization: Bearer $TOKEN" "$@"; }

backup() { # prints: total_ms primary_ms copy_ms size_bytes added_bytes
  local job id state
  job=$(api -X POST "$URL/api/v1/backups" | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])')
  while :; do
    state=$(api "$URL/api/v1/jobs/$job" | python3 -c 'import sys, json; j = json.load(sys.stdin); print(j["state"], (j.get("result") or {}).get("backup_id", ""))')
    case $state in succeeded*) id=${state#succeeded }; break ;; failed*) echo "backup failed" >&2; api "$URL/api/v1/jobs/$job" >&2; exit 1 ;; esac
    sleep 0.2
  done
  api "$URL/api/v1/backups/$id" | python3 -c '
import sys, json
b = json.load(sys.stdin)
loc = {l["name"]: l for l in b["locations"]}
print(b["duration_ms"], loc["primary"]["duration_ms"], loc["secondary"]["duration_ms"], b["size_bytes"], b["added_bytes"])'
}

python3 "$ROOT/bench/backup/writer.py" "$WORK/data/accounts/bench/live.db" >"$WORK/writer.txt" &
WRITER=$!
sleep 1
read -r t1 p1 c1 s1 a1 < <(backup)
read -r t2 p2 c2 s2 a2 < <(backup)
kill -TERM $WRITER; wait $WRITER || true; WRITER=
WSTATS=$(cat "$WORK/writer.txt")
{
  echo "### Manual backups of the $SIZE demo shop ($(date -u +%Y-%m-%d)$([[ $SMOKE == 1 ]] && echo ', smoke'))"
  echo
  echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; $("$SERVER_BIN" --version); both locations local folders on the same disk"
  echo "- Shop: $(head -1 "$WORK/seed.txt")"
  echo "- A writer inserted a ticket and a note per transaction throughout: $WSTATS"
  echo
  echo "| backup | live data (MB) | primary (s) | copy to secondary (s) | total (s) | added to primary (MB) |"
  echo "|---|---:|---:|---:|---:|---:|"
  awk -v s="$s1" -v p="$p1" -v c="$c1" -v t="$t1" -v a="$a1" 'BEGIN { printf "| first | %.1f | %.2f | %.2f | %.2f | %.1f |\n", s/1e6, p/1000, c/1000, t/1000, a/1e6 }'
  awk -v s="$s2" -v p="$p2" -v c="$c2" -v t="$t2" -v a="$a2" 'BEGIN { printf "| second (a day later, unchanged but for the writer) | %.1f | %.2f | %.2f | %.2f | %.1f |\n", s/1e6, p/1000, c/1000, t/1000, a/1e6 }'
} | tee "$WORK/results.md"
