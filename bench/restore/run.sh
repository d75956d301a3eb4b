#!/usr/bin/env bash
# Restores of the `large` demo shop through the API: a sandbox made from a backup, a
# restore to production (safety backup included), and single-record restores of a
# deleted ticket and of a customer. Times are the jobs' own (created to finished) and,
# for single records, the request's round trip.
#
#   bench/restore/run.sh [--smoke]
#
# --smoke uses the small demo shop. Results: printed, and target/restore-bench-*/results.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
SIZE=large; [[ $SMOKE == 1 ]] && SIZE=small
source "$ROOT/bench/lib.sh"
bench_server_bin
WORK="$ROOT/target/restore-bench-$SIZE"
bench_seed "$WORK" "$SIZE"
# Every run starts from the seeded shop and no backups.
rm -rf "$WORK/run"; cp -a "$WORK/data" "$WORK/run"
PASSWORD=$(awk '$1 == "owner" {print $4}' "$WORK/seed.txt")
printf '[backup]\nschedule = false\n' >"$WORK/server.toml"
trap '[[ -n ${SERVER:-} ]] && kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true' EXIT
bench_serve "$WORK" "$WORK/run" --config "$WORK/server.toml"
bench_login owner@bench.repairops.test "$PASSWORD"
api() { bench_api "$@"; }
job() { bench_job; }

read -r BACKUP_S BACKUP_R < <(api -X POST "$URL/api/v1/backups" | job)
BACKUP_ID=$(python3 -c 'import sys, json; print(json.loads(sys.argv[1])["backup_id"])' "$BACKUP_R")
SIZE_MB=$(api "$URL/api/v1/backups/$BACKUP_ID" | python3 -c 'import sys, json; print("%.0f" % (json.load(sys.stdin)["size_bytes"] / 1e6))')
# Changes after the backup: a deleted ticket (its notes and photos rows go with it).
api -X DELETE "$URL/api/v1/tickets/42" >/dev/null
read -r SANDBOX_S _ < <(api -X POST -d "{\"backup_id\": $BACKUP_ID}" "$URL/api/v1/sandboxes" | job)
RECORD_S=$(api -o /dev/null -w '%{time_total}' -X POST -d "{\"backup_id\": $BACKUP_ID, \"kind\": \"ticket\", \"id\": 42}" "$URL/api/v1/restores/records")
CUSTOMER_S=$(api -o /dev/null -w '%{time_total}' -X POST -d "{\"backup_id\": $BACKUP_ID, \"kind\": \"customer\", \"id\": 7, \"overwrite\": true}" "$URL/api/v1/restores/records")
read -r RESTORE_S RESTORE_R < <(api -X POST -d "{\"backup_id\": $BACKUP_ID, \"confirm\": \"bench\"}" "$URL/api/v1/restores" | job)
# The disaster case: the photos folder lost, so every file comes from storage.
rm -rf "$WORK/run/accounts/bench/attachments"
read -r DISASTER_S _ < <(api -X POST -d "{\"backup_id\": $BACKUP_ID, \"confirm\": \"bench\"}" "$URL/api/v1/restores" | job)
{
  echo "### Restores of the $SIZE demo shop ($(date -u +%Y-%m-%d)$([[ $SMOKE == 1 ]] && echo ', smoke'))"
  echo
  echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; $("$SERVER_BIN" --version); both locations local folders on the same disk"
  echo "- Shop: $(head -1 "$WORK/seed.txt"); backup $BACKUP_ID of $SIZE_MB MB of live data took $BACKUP_S s"
  echo "- Job times from the jobs' own created/finished stamps; single records: curl's total time for the request"
  echo
  echo "| operation | seconds | target |"
  echo "|---|---:|---|"
  echo "| sandbox from the backup (fetch, check, re-apply deletions) | $SANDBOX_S | < 15 s |"
  echo "| restore to production (safety backup, fetch, check, swap) | $RESTORE_S | < 15 s |"
  echo "| restore to production after the photos folder was lost (every file from storage) | $DISASTER_S | < 15 s |"
  echo "| single-record restore: a deleted ticket with notes and photos | $RECORD_S | < 2 s |"
  echo "| single-record restore: a customer with their tickets (overwrite) | $CUSTOMER_S | < 2 s |"
  echo
  echo "Restore result: \`$RESTORE_R\`"
} | tee "$WORK/results.md"
