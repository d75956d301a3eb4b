#!/usr/bin/env bash
# The desktop app: the .deb's size (file and installed), app start to first screen,
# memory at idle, and the time to save a ~100 MB export to disk the app's way (checked,
# fsynced, renamed) beside `curl -o` + `sync` of the same download, in one run.
#
#   bench/desktop/run.sh [--smoke]
#
# Full runs build the release app and its .deb (`tauri build --bundles deb`) and serve
# the large demo shop with its tickets doubled (a ~100 MB JSON export). --smoke uses
# the debug builds (APP_BIN, SERVER_BIN), the small shop and no .deb. Results: printed,
# and target/desktop-bench-*/results.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1

if [[ -z "${_DESKTOP_BENCH_INNER:-}" ]]; then
  cd "$ROOT"
  if [[ $SMOKE == 1 ]]; then
    export SERVER_BIN=${SERVER_BIN:-$ROOT/target/debug/repairops-server}
    export APP_BIN=${APP_BIN:-$ROOT/target/debug/repairops-desktop}
    cargo build --workspace --locked -q --examples --features repairops-desktop/custom-protocol
    export SAVE_BIN=$ROOT/target/debug/examples/save_export
  else
    cargo build --release --locked -q -p repairops-server --bin repairops-server
    ui/node_modules/.bin/tauri build --bundles deb >/dev/null
    cargo build --release --locked -q --example save_export
    export SERVER_BIN=$ROOT/target/release/repairops-server APP_BIN=$ROOT/target/release/repairops-desktop
    export SAVE_BIN=$ROOT/target/release/examples/save_export
  fi
  export _DESKTOP_BENCH_INNER=1
  exec "$ROOT/tests/desktop/with-desktop-session.sh" "$0" "$@"
fi

# ---- inside a throwaway desktop session (Xvfb, session bus, GNOME Keyring, dunst) ----
SIZE=large; RUNS=5
[[ $SMOKE == 1 ]] && { SIZE=small; RUNS=2; }
WORK="$ROOT/target/desktop-bench-$SIZE"
mkdir -p "$WORK"
DATA="$WORK/data"
if [[ ! -f "$WORK/seeded" ]]; then
  rm -rf "$DATA"
  "$SERVER_BIN" seed --data "$DATA" --account bench --size "$SIZE" | tee "$WORK/seed.txt"
  if [[ $SMOKE == 0 ]]; then
    # Tickets doubled (copies with their notes), so the nested JSON export is ~100 MB.
    sqlite3 "$DATA/accounts/bench/live.db" "
      CREATE TEMP TABLE m AS SELECT max(id) AS m FROM tickets;
      INSERT INTO tickets (id, shop_id, customer_id, device_type, device_make, device_model, serial_number, problem,
                           status, estimate_cents, technician_id, completed_at, created_at, updated_at)
      SELECT t.id + m.m, t.shop_id, t.customer_id, t.device_type, t.device_make, t.device_model, t.serial_number,
             t.problem, t.status, t.estimate_cents, t.technician_id, t.completed_at, t.created_at, t.updated_at
      FROM temp.m, tickets t ORDER BY t.id;
      INSERT INTO ticket_notes (ticket_id, author_id, body, created_at, updated_at)
      SELECT n.ticket_id + m.m, n.author_id, n.body, n.created_at, n.updated_at FROM temp.m, ticket_notes n ORDER BY n.id;"
  fi
  touch "$WORK/seeded"
fi
EMAIL=$(grep -oE '[^ ]+@[^ ]+' "$WORK/seed.txt" | head -n1)
PASSWORD=$(grep -oE '[^ ]+@[^ ]+ / [^ ]+' "$WORK/seed.txt" | head -n1 | awk '{print $3}')
export REPAIROPS_LOG=warn
printf '[backup]\nschedule = false\n' >"$WORK/server.toml"
"$SERVER_BIN" serve --data "$DATA" --listen 127.0.0.1:0 --config "$WORK/server.toml" >"$WORK/server.out" 2>"$WORK/server.err" &
server=$!
app=""
trap 'kill $server ${app:-} 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q '^ca-sha256 ' "$WORK/server.out" && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$WORK/server.out")
CA_SHA=$(sed -n 's/^ca-sha256 //p' "$WORK/server.out")
CA_PEM=$(sed -n 's/^ca-pem //p' "$WORK/server.out")
[[ -n "$URL" ]] || { cat "$WORK/server.err" >&2; exit 1; }

APPDIR="$WORK/app-state"
rm -rf "$APPDIR"
now_ms() { date +%s%3N; }
pss_kib() { # PSS of a process and all its descendants (the WebKit web and network processes)
  local total=0 p
  for p in $1 $(pgrep -P "$1" 2>/dev/null) $(for c in $(pgrep -P "$1" 2>/dev/null); do pgrep -P "$c"; done); do
    [[ -r /proc/$p/smaps_rollup ]] || continue
    total=$((total + $(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup)))
  done
  echo "$total"
}

# First start: signs in (token into the keyring); not measured.
REPAIROPS_DESKTOP_DIR="$APPDIR" REPAIROPS_DEMO_URL="$URL" REPAIROPS_DEMO_CA_SHA256="$CA_SHA" \
  REPAIROPS_DEMO_EMAIL="$EMAIL" REPAIROPS_DEMO_PASSWORD="$PASSWORD" REPAIROPS_STARTUP_REPORT="$WORK/ready" \
  "$APP_BIN" >/dev/null 2>"$WORK/app.err" &
app=$!
for _ in $(seq 600); do [[ -s "$WORK/ready" ]] && break; sleep 0.1; done
[[ -s "$APPDIR/session.json" ]] || { echo "the app did not sign in" >&2; cat "$WORK/app.err" >&2; exit 1; }
kill $app; wait $app 2>/dev/null || true

# Start to first screen: process start to the signed-in dashboard drawn with the
# server's status (token read from the keyring, overview fetched).
starts=()
for _ in $(seq "$RUNS"); do
  rm -f "$WORK/ready"
  t0=$(now_ms)
  REPAIROPS_DESKTOP_DIR="$APPDIR" REPAIROPS_STARTUP_REPORT="$WORK/ready" "$APP_BIN" >/dev/null 2>>"$WORK/app.err" &
  app=$!
  for _ in $(seq 600); do [[ -s "$WORK/ready" ]] && break; sleep 0.01; done
  starts+=($(($(cat "$WORK/ready") - t0)))
  kill $app; wait $app 2>/dev/null || true
done
START_MS=$(printf '%s\n' "${starts[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")

# Memory at idle: signed in, dashboard shown, 30 s later (10 s for a smoke run).
REPAIROPS_DESKTOP_DIR="$APPDIR" "$APP_BIN" >/dev/null 2>>"$WORK/app.err" &
app=$!
sleep $([[ $SMOKE == 1 ]] && echo 10 || echo 30)
IDLE_PSS=$(pss_kib $app)
IDLE_MAIN_RSS=$(awk '/^VmRSS:/ {print $2}' /proc/$app/status)
kill $app; wait $app 2>/dev/null || true
# …and with the window closed, in the tray (as at login): no web view in memory.
REPAIROPS_DESKTOP_DIR="$APPDIR" "$APP_BIN" --hidden >/dev/null 2>>"$WORK/app.err" &
app=$!
sleep $([[ $SMOKE == 1 ]] && echo 10 || echo 30)
TRAY_PSS=$(pss_kib $app)
kill $app; wait $app 2>/dev/null || true
app=""

# A ~100 MB export: tickets as JSON.
EXPORT_ID=$(python3 - "$URL" "$CA_PEM" "$EMAIL" "$PASSWORD" <<'PY'
import json, ssl, sys, time, urllib.request
url, ca, email, password = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
def call(method, path, body=None, token=None):
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token: req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.load(r)
token = call("POST", "/api/v1/auth/login", {"email": email, "password": password})["token"]
job = call("POST", "/api/v1/exports", {"dataset": "tickets", "format": "json"}, token)
while job["state"] in ("queued", "running"):
    time.sleep(0.5)
    job = call("GET", f"/api/v1/jobs/{job['id']}", token=token)
if job["state"] != "succeeded":
    sys.exit(f"export failed: {job.get('error')}")
print(job["result"]["export_id"])
PY
)
TOKEN=$(curl -s --cacert "$CA_PEM" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" "$URL/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
DRIVE="$WORK/drive"; mkdir -p "$DRIVE"
app_save() { rm -f "$DRIVE/app.json"; "$SAVE_BIN" "$URL" "$CA_PEM" "$EMAIL" "$PASSWORD" "$EXPORT_ID" "$DRIVE/app.json"; }
curl_save() {
  rm -f "$DRIVE/curl.json"
  local t0 t1; t0=$(date +%s.%N)
  curl -s --fail --cacert "$CA_PEM" -H "authorization: Bearer $TOKEN" -o "$DRIVE/curl.json" "$URL/api/v1/exports/$EXPORT_ID/download"
  sync -f "$DRIVE/curl.json"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v n="$(stat -c %s "$DRIVE/curl.json")" 'BEGIN { printf "%d %.3f\n", n, b - a }'
}
APP_SAVE=$({ app_save; app_save; app_save; } | sort -k2,2n | sed -n 2p)
CURL_SAVE=$({ curl_save; curl_save; curl_save; } | sort -k2,2n | sed -n 2p)
cmp -s "$DRIVE/app.json" "$DRIVE/curl.json" || { echo "the two saved files differ" >&2; exit 1; }
read -r SAVE_BYTES APP_S <<<"$APP_SAVE"
read -r _ CURL_S <<<"$CURL_SAVE"

DEB_LINE="- .deb: not built in a smoke run"
if [[ $SMOKE == 0 ]]; then
  DEB=$(ls -t "$ROOT"/target/release/bundle/deb/*.deb | head -n1)
  DEB_LINE="- .deb: $(basename "$DEB"), $(awk -v b="$(stat -c %s "$DEB")" 'BEGIN { printf "%.1f MB", b / 1e6 }') file, installed size $(dpkg-deb -f "$DEB" Installed-Size) KiB (target: under 15 MB)"
fi
{
  echo "### Desktop app ($(date -u +%Y-%m-%d)$([[ $SMOKE == 1 ]] && echo ', smoke: debug builds'))"
  echo
  echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; Xvfb, no GPU; $(curl --version | head -n1 | cut -d' ' -f1-2)"
  echo "$DEB_LINE"
  echo "- Start to first screen: $START_MS ms, median of $RUNS (all: ${starts[*]} ms): process start to the signed-in dashboard drawn with the server's status (token from GNOME Keyring, status fetched over TLS) (target: under 1000 ms)"
  echo "- Memory at idle, window open on the dashboard: $(awk -v k="$IDLE_PSS" 'BEGIN { printf "%.1f MiB", k / 1024 }') PSS for the app and its WebKit processes together (the app's own process $(awk -v k="$IDLE_MAIN_RSS" 'BEGIN { printf "%.1f MiB", k / 1024 }') RSS); window closed, in the tray: $(awk -v k="$TRAY_PSS" 'BEGIN { printf "%.1f MiB", k / 1024 }') PSS (target: under 150 MB)"
  echo "- Saving an export: $(awk -v b="$SAVE_BYTES" 'BEGIN { printf "%.1f MB", b / 1e6 }') tickets JSON, median of 3"
  echo
  echo "| how | seconds | MB/s | vs curl + sync |"
  echo "|---|---:|---:|---:|"
  awk -v b="$SAVE_BYTES" -v s="$APP_S" -v r="$CURL_S" 'BEGIN { printf "| the app: temporary file, fsync, read back and SHA-256 checked, rename | %.3f | %.0f | %.2fx |\n", s, b / 1e6 / s, r / s }'
  awk -v b="$SAVE_BYTES" -v s="$CURL_S" 'BEGIN { printf "| curl -o, then sync | %.3f | %.0f | 1.00x |\n", s, b / 1e6 / s }'
} | tee "$WORK/results.md"
