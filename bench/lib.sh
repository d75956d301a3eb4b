# Shared setup of the server benchmarks (backup, export, restore, server). Sourced, not
# run: `source "$ROOT/bench/lib.sh"` after setting ROOT.

# Sets SERVER_BIN to a release build of repairops-server, unless it is set already
# (CI's smoke runs pass the debug build they have).
bench_server_bin() {
  if [[ -z "${SERVER_BIN:-}" ]]; then
    (cd "$ROOT" && cargo build --release --locked -q -p repairops-server)
    SERVER_BIN="$ROOT/target/release/repairops-server"
  fi
}

# bench_seed WORK SIZE: the demo shop of SIZE (small or large) in WORK/data, seeded once
# and kept between runs; the sign-ins it printed are in WORK/seed.txt.
bench_seed() {
  local work=$1 size=$2
  mkdir -p "$work"
  if [[ ! -f "$work/seeded" ]]; then
    rm -rf "$work/data"
    "$SERVER_BIN" seed --data "$work/data" --account bench --size "$size" | tee "$work/seed.txt"
    touch "$work/seeded"
  fi
}

# bench_serve WORK DATA [serve args...]: starts the server on DATA on a free loopback
# port, waits until it prints its CA, and sets SERVER (its pid), URL and CA. The
# caller stops it (its EXIT trap kills $SERVER).
bench_serve() {
  local work=$1 data=$2; shift 2
  "$SERVER_BIN" serve --data "$data" --listen 127.0.0.1:0 "$@" >"$work/server.out" 2>"$work/server.err" &
  SERVER=$!
  for _ in $(seq 600); do grep -q "^ca-pem" "$work/server.out" 2>/dev/null && break; sleep 0.1; done
  URL=$(awk '/^listening on/ {print $3}' "$work/server.out")
  CA=$(awk '/^ca-pem/ {print $2}' "$work/server.out")
  [[ -n "$URL" && -n "$CA" ]] || { echo "the server did not start:" >&2; cat "$work/server.err" >&2; exit 1; }
}

# bench_login EMAIL PASSWORD: sets TOKEN to a bearer token for that sign-in.
bench_login() {
  TOKEN=$(curl -sf --cacert "$CA" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" "$URL/api/v1/auth/login" \
    | python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])')
}

# bench_api CURL_ARGS...: a request to the server as the signed-in person (JSON body).
bench_api() { curl -sf --cacert "$CA" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }

# bench_job < JOB_JSON: waits for the job to end; prints "seconds result-json", the
# seconds from the job's own created and finished stamps. A failed job ends the run.
bench_job() {
  local id; id=$(python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])')
  while :; do
    local j; j=$(bench_api "$URL/api/v1/jobs/$id")
    case $(python3 -c 'import sys, json; print(json.load(sys.stdin)["state"])' <<<"$j") in
      succeeded) python3 -c '
import sys, json
from datetime import datetime
j = json.load(sys.stdin)
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
print("%.3f" % (t(j["finished_at"]) - t(j["created_at"])).total_seconds(), json.dumps(j["result"]))' <<<"$j"; return ;;
      failed) echo "job failed: $j" >&2; exit 1 ;;
    esac
    sleep 0.05
  done
}

