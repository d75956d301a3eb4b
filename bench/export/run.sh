#!/usr/bin/env bash
# Exports of the `large` demo shop: tickets as CSV and JSON, and about 1,000 invoices as a
# PDF, with `repairops-server export` (the same writers the API's export jobs use);
# records per second and peak memory from /usr/bin/time -v. sqlite3's own CSV output of
# the bare tickets table (no joins) runs beside it as the reference. Then the tickets
# table grown twentyfold, to show the rate at size and that memory stays flat.
#
#   bench/export/run.sh [--smoke]
#
# --smoke uses the small demo shop. Results: printed, and target/export-bench-*/results.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
SIZE=large; GROW=20
[[ $SMOKE == 1 ]] && { SIZE=small; GROW=2; }
source "$ROOT/bench/lib.sh"
bench_server_bin
WORK="$ROOT/target/export-bench-$SIZE"
bench_seed "$WORK" "$SIZE"
DATA="$WORK/data"
DB="$DATA/accounts/bench/live.db"
export REPAIROPS_LOG=warn

# once LABEL ARGS... : one export; prints "label records seconds records/s peak_MiB bytes"
once() {
  local label=$1; shift
  local out="$WORK/out.$label"
  /usr/bin/time -v -o "$WORK/time.txt" "$SERVER_BIN" export --data "$DATA" --account bench "$@" --out "$out" 2>"$WORK/report.txt"
  local report; report=$(tail -1 "$WORK/report.txt")          # "N records in S s (R records/s)"
  local n s; n=$(awk '{print $1}' <<<"$report"); s=$(awk '{print $4}' <<<"$report")
  local rss; rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
  awk -v l="$label" -v n="$n" -v s="$s" -v r="$rss" -v b="$(stat -c %s "$out")" \
    'BEGIN { printf "%s %d %.3f %.0f %.1f %d\n", l, n, s, (s > 0 ? n / s : 0), r / 1024, b }'
}

# run LABEL ARGS... : the median of five runs by time (the first warms the page cache;
# the small files take tens of milliseconds, where this machine's noise is wide)
run() {
  for _ in 1 2 3 4 5; do once "$@"; done | sort -k3,3n | sed -n 3p
}

sqlite_csv() { # the reference: sqlite3 -csv of the bare table, median of five
  for _ in 1 2 3 4 5; do sqlite_once; done | sort -k3,3n | sed -n 3p
}

sqlite_once() {
  local rows
  rows=$(sqlite3 "$DB" "SELECT count(*) FROM tickets")
  local t0; t0=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/time.txt" sqlite3 -csv -header "$DB" "SELECT * FROM tickets" >"$WORK/out.sqlite3.csv"
  local s; s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  local rss; rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
  awk -v n="$rows" -v s="$s" -v r="$rss" -v b="$(stat -c %s "$WORK/out.sqlite3.csv")" \
    'BEGIN { printf "sqlite3-csv %d %.3f %.0f %.1f %d\n", n, s, (s > 0 ? n / s : 0), r / 1024, b }'
}

# About 1,000 invoices: from the first invoice's date to the date of the thousandth.
FIRST=$(sqlite3 "$DB" "SELECT substr(min(created_at), 1, 10) FROM invoices")
LAST=$(sqlite3 "$DB" "SELECT substr(created_at, 1, 10) FROM invoices ORDER BY created_at LIMIT 1 OFFSET 999")
[[ -z "$LAST" ]] && LAST=$(sqlite3 "$DB" "SELECT substr(max(created_at), 1, 10) FROM invoices")

# nested_rows DB: the rows a tickets JSON export writes, the nested ones included (each
# ticket, its customer and technician, notes, messages, invoices, their lines and
# payments, attachments).
nested_rows() {
  sqlite3 "$1" "SELECT (SELECT count(*) FROM tickets) * 2 + (SELECT count(technician_id) FROM tickets)
    + (SELECT count(*) FROM ticket_notes) + (SELECT count(ticket_id) FROM communications)
    + (SELECT count(ticket_id) FROM invoices) + (SELECT count(*) FROM attachments)
    + (SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE i.ticket_id IS NOT NULL)
    + (SELECT count(*) FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE i.ticket_id IS NOT NULL)"
}

measure() { # one round on the current database
  run tickets.csv --dataset tickets --format csv
  run tickets.json --dataset tickets --format json
  sqlite_csv
}

{
  measure | sed 's/^/as-seeded /'
  run transactions.csv --dataset transactions --format csv | sed 's/^/as-seeded /'
  run transactions.json --dataset transactions --format json | sed 's/^/as-seeded /'
  run invoices.pdf --dataset invoices --format pdf --from "$FIRST" --to "$LAST" | sed 's/^/as-seeded /'
} >"$WORK/rows.txt"

# The same tickets JSON as the server's export job makes it (sealed in AES-256-GCM,
# hashed, flushed to the device), in a copy of the shop's databases (the photos are not
# exported): seconds from the job's own stamps, the server's peak RSS from /proc.
API="$WORK/api"
rm -rf "$API"; mkdir -p "$API/accounts/bench"
cp "$DATA/server.db" "$API/"; cp -r "$DATA/keys" "$API/"
sqlite3 "$DB" ".backup '$API/accounts/bench/live.db'"
printf '[backup]\nschedule = false\n' >"$WORK/server.toml"
trap '[[ -n ${SERVER:-} ]] && kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true' EXIT
bench_serve "$WORK" "$API" --config "$WORK/server.toml"
bench_login owner@bench.repairops.test "$(awk '$1 == "owner" {print $4}' "$WORK/seed.txt")"
ROWS=$(sqlite3 "$DB" "SELECT count(*) FROM tickets")
for _ in 1 2 3; do
  read -r secs result < <(bench_api -X POST -d '{"dataset": "tickets", "format": "json"}' "$URL/api/v1/exports" | bench_job)
  bytes=$(python3 -c 'import sys, json; print(json.loads(sys.argv[1])["size_bytes"])' "$result")
  echo "$secs $bytes"
done | sort -n | sed -n 2p | {
  read -r secs bytes
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
  awk -v n="$ROWS" -v s="$secs" -v r="$rss" -v b="$bytes" \
    'BEGIN { printf "as-seeded tickets.json-server-job %d %.3f %.0f %.1f %d\n", n, s, n / s, r / 1024, b }'
} >>"$WORK/rows.txt"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
rm -rf "$API"

# The tickets table grown (copies of existing tickets with their notes; invoices are not
# copied) in a copy of the shop.
GROWN="$WORK/grown"
rm -rf "$GROWN"; mkdir -p "$GROWN/accounts/bench"
cp "$DATA/server.db" "$GROWN/"; cp -r "$DATA/keys" "$GROWN/"
sqlite3 "$DB" ".backup '$GROWN/accounts/bench/live.db'"
sqlite3 "$GROWN/accounts/bench/live.db" "
  CREATE TEMP TABLE m AS SELECT max(id) AS m FROM tickets;
  CREATE TEMP TABLE k AS WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $((GROW - 1))) SELECT i FROM k;
  INSERT INTO tickets (id, shop_id, customer_id, device_type, device_make, device_model, serial_number, problem, status,
                       estimate_cents, technician_id, completed_at, created_at, updated_at)
  SELECT t.id + k.i * m.m, t.shop_id, t.customer_id, t.device_type, t.device_make, t.device_model, t.serial_number,
         t.problem, t.status, t.estimate_cents, t.technician_id, t.completed_at, t.created_at, t.updated_at
  FROM temp.k, temp.m, tickets t WHERE t.id <= m.m ORDER BY k.i, t.id;
  INSERT INTO ticket_notes (ticket_id, author_id, body, created_at, updated_at)
  SELECT n.ticket_id + k.i * m.m, n.author_id, n.body, n.created_at, n.updated_at
  FROM temp.k, temp.m, ticket_notes n WHERE n.ticket_id <= m.m ORDER BY k.i, n.id;"
BASE_NESTED=$(nested_rows "$DB")
DATA="$GROWN"; DB="$GROWN/accounts/bench/live.db"
GROWN_NESTED=$(nested_rows "$DB")
measure | sed "s/^/grown-x$GROW /" >>"$WORK/rows.txt"

BASE_CSV=$(awk '$1 == "as-seeded" && $2 == "sqlite3-csv" {print $5}' "$WORK/rows.txt")
GROWN_CSV=$(awk '$1 ~ /^grown/ && $2 == "sqlite3-csv" {print $5}' "$WORK/rows.txt")
{
  echo "### Exports of the $SIZE demo shop ($(date -u +%Y-%m-%d)$([[ $SMOKE == 1 ]] && echo ', smoke'))"
  echo
  echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; $("$SERVER_BIN" --version); $(sqlite3 --version | cut -d' ' -f1-2 | sed 's/^/sqlite3 /')"
  echo "- Shop: $(head -1 "$WORK/seed.txt"); grown: the tickets table copied to ${GROW}x its rows"
  echo "- records/s: the export's own timing (inside the process), median of five runs; peak RSS: /usr/bin/time -v; the PDF holds invoices $FIRST to $LAST"
  echo "- tickets are nested in JSON (customer, technician, notes, messages, invoices with lines and payments, attachments: about 4 KB a ticket); transactions are flat"
  echo "- sqlite3-csv: \`sqlite3 -csv -header live.db 'SELECT * FROM tickets'\` (no joined columns, wall time of the whole process)"
  echo "- tickets.json-server-job: \`POST /api/v1/exports\` on the server, the file sealed (AES-256-GCM), hashed and flushed to the device; seconds from the job's created and finished stamps, median of three; peak RSS is the whole server's"
  echo
  echo "| data | export | records | seconds | records/s | MB/s written | peak RSS (MiB) | file (MB) | vs sqlite3 -csv |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  while read -r data label n s rate rss bytes; do
    ref=$BASE_CSV; [[ $data == grown* ]] && ref=$GROWN_CSV
    awk -v d="$data" -v l="$label" -v n="$n" -v s="$s" -v r="$rate" -v m="$rss" -v b="$bytes" -v ref="$ref" \
      'BEGIN { printf "| %s | %s | %d | %.3f | %.0f | %.0f | %.1f | %.1f | %s |\n", d, l, n, s, r, (s > 0 ? b / 1e6 / s : 0), m, b / 1e6, (l !~ /tickets/ || ref == 0) ? "-" : sprintf("%.2fx", r / ref) }'
  done <"$WORK/rows.txt"
  echo
  awk -v a="$BASE_NESTED" -v b="$GROWN_NESTED" '$2 == "tickets.json" {
      n = ($1 == "as-seeded") ? a : b
      printf "- %s tickets.json: %d rows written with the nested ones, %.0f rows/s\n", $1, n, n / $4 }' "$WORK/rows.txt"
} | tee "$WORK/results.md"
