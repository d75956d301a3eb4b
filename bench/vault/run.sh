#!/usr/bin/env bash
# Side-by-side backup benchmark: repairops-vault vs restic vs borgbackup.
#
#   bench/vault/run.sh [--smoke] [--workdir DIR]
#
# Generates a deterministic repair-shop dataset (SQLite DB + photo/PDF
# attachments, see gen_shop.py), then for every tool, with default settings
# and on the same disk:
#   init -> first backup -> (dataset mutated once: one shop day) ->
#   second backup -> full restore of the latest snapshot -> byte-for-byte
#   verification against the source -> repository size.
# Each step runs under /usr/bin/time -v (wall seconds, peak RSS).
# Results: printed table + $WORKDIR/results.md (markdown) + $WORKDIR/results.csv.
#
# Environment:
#   VAULT_BIN=path           use this repairops-vault binary instead of building one
#   SKIP_OURS=1              skip repairops-vault (for testing the harness only)
#   BENCH_DB_MB / BENCH_ATTACHMENTS_MB   dataset size for a full run (default 300 / 800)
#   BENCH_NO_INSTALL=1       never apt-get install missing restic/borg/time
#   BENCH_NO_DROP_CACHES=1   don't drop the page cache; pre-read inputs instead (warm runs)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
GEN="$SCRIPT_DIR/gen_shop.py"

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

SMOKE=0
WORKDIR=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) SMOKE=1; shift ;;
    --workdir) [[ $# -ge 2 ]] || { echo "--workdir needs a directory" >&2; exit 2; }
               WORKDIR=$2; shift 2 ;;
    --workdir=*) WORKDIR=${1#--workdir=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ $SMOKE == 1 ]]; then
  DB_MB=3; ATT_MB=10; MODE=smoke
else
  DB_MB=${BENCH_DB_MB:-300}; ATT_MB=${BENCH_ATTACHMENTS_MB:-800}; MODE=full
  [[ -n "${BENCH_DB_MB:-}${BENCH_ATTACHMENTS_MB:-}" ]] && MODE=custom
fi
GEN_SEED=42
MUTATE_SEED=1

TOOLS=(ours restic borg)
[[ "${SKIP_OURS:-0}" == 1 ]] && TOOLS=(restic borg)
has_tool() { local t; for t in "${TOOLS[@]}"; do [[ $t == "$1" ]] && return 0; done; return 1; }

log() { printf '\n== %s\n' "$*"; }
die() { printf '\nBENCHMARK FAILED: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; printf "\nBENCHMARK FAILED (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

# ---------------------------------------------------------------- prerequisites
need_install=()
command -v restic >/dev/null 2>&1 || need_install+=(restic)
command -v borg >/dev/null 2>&1 || need_install+=(borgbackup)
[[ -x /usr/bin/time ]] || need_install+=(time)
if [[ ${#need_install[@]} -gt 0 ]]; then
  if [[ "${BENCH_NO_INSTALL:-0}" != 1 && $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing missing packages: ${need_install[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
  else
    die "missing: ${need_install[*]} (install e.g. 'apt-get install restic borgbackup time')"
  fi
fi
command -v python3 >/dev/null 2>&1 || die "python3 is required (dataset generator)"

# ---------------------------------------------------------------- workdir
if [[ -z $WORKDIR ]]; then
  WORKDIR="$ROOT/target/vault-bench"
  [[ $SMOKE == 1 ]] && WORKDIR="$ROOT/target/vault-bench-smoke"
fi
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
PRISTINE="$WORKDIR/pristine"      # generated once, reused while the stamp matches
DATA="$WORKDIR/data"              # per-run copy that gets mutated
SRC="$DATA/shop"                  # the directory every tool backs up
REPOS="$WORKDIR/repos"
RESTORES="$WORKDIR/restore"
LOGS="$WORKDIR/logs"
rm -rf "$DATA" "$REPOS" "$RESTORES" "$LOGS" "$WORKDIR/cache" "$WORKDIR/borg-home"
mkdir -p "$DATA" "$REPOS" "$RESTORES" "$LOGS"

export VAULT_PASSWORD="bench-password-not-secret"
export RESTIC_PASSWORD="$VAULT_PASSWORD"
export BORG_PASSPHRASE="$VAULT_PASSWORD"
# keep tool caches/state inside the workdir (both tools use a local cache by default;
# it stays enabled, it just lives here and starts empty every run)
export RESTIC_CACHE_DIR="$WORKDIR/cache/restic"
export BORG_BASE_DIR="$WORKDIR/borg-home"
export BORG_DISPLAY_PASSPHRASE=no

# ---------------------------------------------------------------- build our CLI
if has_tool ours; then
  if [[ -n "${VAULT_BIN:-}" ]]; then
    [[ -x "$VAULT_BIN" ]] || die "VAULT_BIN=$VAULT_BIN is not an executable"
  else
    log "building repairops-vault (release)"
    (cd "$ROOT" && cargo build --release -p repairops-vault)
    target_dir=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    VAULT_BIN="$target_dir/release/repairops-vault"
    [[ -x "$VAULT_BIN" ]] || die "build finished but $VAULT_BIN is missing"
  fi
fi

# ---------------------------------------------------------------- environment
log "environment"
cpu=$(grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
{
  echo "mode:     $MODE (db ${DB_MB} MB, attachments ${ATT_MB} MB)"
  echo "workdir:  $WORKDIR ($(stat -f -c %T "$WORKDIR") filesystem)"
  echo "restic:   $(restic version)"
  echo "borg:     $(borg --version)"
  if has_tool ours; then echo "vault:    $("$VAULT_BIN" --version) ($VAULT_BIN)"; else echo "vault:    skipped (SKIP_OURS=1)"; fi
  echo "python:   $(python3 --version 2>&1)"
  echo "uname:    $(uname -a)"
  echo "nproc:    $(nproc)"
  echo "cpu:      ${cpu:-unknown}"
  echo "memory:"; free -h | sed 's/^/  /'
  echo "disk:";   df -h "$WORKDIR" | sed 's/^/  /'
} | tee "$LOGS/environment.txt"
if [[ $(stat -f -c %T "$WORKDIR") == tmpfs ]]; then
  echo "WARNING: $WORKDIR is on tmpfs (RAM): disk I/O is not measured. Use --workdir on a real disk."
fi
avail_mb=$(df -Pm "$WORKDIR" | awk 'NR==2 {print $4}')
need_mb=$(( (DB_MB + ATT_MB) * 7 ))
if (( avail_mb < need_mb )); then
  echo "WARNING: ${avail_mb} MB free in $WORKDIR; this run needs about ${need_mb} MB"
fi

# ---------------------------------------------------------------- page cache
CACHE_MODE=cold
drop_caches() { sync; { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; }
if [[ "${BENCH_NO_DROP_CACHES:-0}" != 1 ]] && drop_caches; then
  echo "page cache: dropping it (sync; echo 3 > /proc/sys/vm/drop_caches) worked: every backup/restore starts cold"
else
  CACHE_MODE=warm
  echo "page cache: not dropped (BENCH_NO_DROP_CACHES=1, not root, or /proc/sys read-only here);"
  echo "            instead the step's input is read once beforehand, so every tool starts warm"
fi
# prepare_step INPUT_DIR: equal page-cache state for every tool before a timed step
prepare_step() {
  if [[ $CACHE_MODE == cold ]]; then
    drop_caches || true
  else
    sync
    find "$1" -type f -exec cat {} + > /dev/null
  fi
}

# ---------------------------------------------------------------- dataset
tree_stats() {  # prints "<files> <bytes>" of regular files under $1
  find "$1" -type f -printf '%s\n' | awk '{n++; b+=$1} END {printf "%d %d\n", n, b}'
}
gen_hash=$(sha256sum "$GEN" | cut -d' ' -f1)
want_stamp="db_mb=$DB_MB attachments_mb=$ATT_MB seed=$GEN_SEED generator=$gen_hash"
have_data=0
if [[ -f "$PRISTINE/stamp" && -d "$PRISTINE/shop" ]]; then
  if [[ "$(sed -n 1p "$PRISTINE/stamp")" == "$want_stamp" && \
        "$(sed -n 2p "$PRISTINE/stamp")" == "$(tree_stats "$PRISTINE/shop")" ]]; then
    have_data=1
  fi
fi
if [[ $have_data == 1 ]]; then
  log "dataset: reusing $PRISTINE/shop (stamp matches)"
else
  log "dataset: generating ($DB_MB MB db + $ATT_MB MB attachments)"
  rm -rf "$PRISTINE"; mkdir -p "$PRISTINE"
  python3 "$GEN" generate "$PRISTINE/shop" --db-mb "$DB_MB" --attachments-mb "$ATT_MB" --seed "$GEN_SEED"
  { echo "$want_stamp"; tree_stats "$PRISTINE/shop"; } > "$PRISTINE/stamp"
fi
cp -a --reflink=auto "$PRISTINE/shop" "$SRC"
read -r FILES1 BYTES1 < <(tree_stats "$SRC")
echo "dataset: $FILES1 files, $BYTES1 bytes ($(awk -v b="$BYTES1" 'BEGIN{printf "%.1f", b/1e6}') MB) at $SRC"

# ---------------------------------------------------------------- measurement helpers
declare -A SECS RSS_KB STEP_BYTES REPO_BYTES
STEPS=(init backup-1 backup-2 restore)

# timed STEP TOOL CMD...: run CMD under /usr/bin/time -v, output to logs, record wall/RSS
timed() {
  local step=$1 tool=$2; shift 2
  local base="$LOGS/$step.$tool"
  printf '  %-9s %-7s ... ' "$step" "$tool"
  if ! /usr/bin/time -v -o "$base.time" "$@" > "$base.out" 2> "$base.err"; then
    echo "FAILED"
    echo "---- command: $*" >&2
    echo "---- stderr (last 40 lines of $base.err):" >&2; tail -n 40 "$base.err" >&2 || true
    echo "---- stdout (last 20 lines of $base.out):" >&2; tail -n 20 "$base.out" >&2 || true
    die "$step with $tool failed"
  fi
  SECS[$step.$tool]=$(awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($NF, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$base.time")
  RSS_KB[$step.$tool]=$(awk -F': ' '/Maximum resident set size/ {print $NF}' "$base.time")
  echo "${SECS[$step.$tool]} s, peak RSS $(( ${RSS_KB[$step.$tool]} / 1024 )) MiB"
}
repo_size() { REPO_BYTES[$1.$2]=$(du -sb "$REPOS/$2" | cut -f1); }

# ---------------------------------------------------------------- the tools
# ours:   repairops-vault --repo DIR --password-env VAULT_PASSWORD ...
# restic: default `restic init` (its default repository format is printed below)
# borg:   borg init -e repokey (default compression lz4)
vault() { "$VAULT_BIN" --repo "$REPOS/ours" --password-env VAULT_PASSWORD "$@"; }

do_init() {
  case $1 in
    ours)   timed init ours   "$VAULT_BIN" --repo "$REPOS/ours" --password-env VAULT_PASSWORD init ;;
    restic) timed init restic restic -r "$REPOS/restic" init ;;
    borg)   timed init borg   borg init -e repokey "$REPOS/borg" ;;
  esac
}
do_backup() {  # do_backup STEP TOOL NAME
  case $2 in
    ours)   timed "$1" ours   "$VAULT_BIN" --repo "$REPOS/ours" --password-env VAULT_PASSWORD backup "$SRC" --tag kind=manual ;;
    restic) timed "$1" restic restic -r "$REPOS/restic" backup "$SRC" ;;
    borg)   timed "$1" borg   borg create "$REPOS/borg::$3" "$SRC" ;;
  esac
}
# do_restore TOOL: restore the latest snapshot into an empty dir; sets RESTORED to the
# directory that must equal $SRC
do_restore() {
  local target="$RESTORES/$1"
  rm -rf "$target"; mkdir -p "$target"
  case $1 in
    ours)
      local id
      id=$(vault snapshots --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s[-1]["id"])') \
        || die "could not read the latest snapshot id from 'repairops-vault snapshots --json'"
      echo "  (ours: latest snapshot $id)"
      timed restore ours "$VAULT_BIN" --repo "$REPOS/ours" --password-env VAULT_PASSWORD restore "$id" --target "$target"
      RESTORED="$target/$(basename "$SRC")" ;;
    restic)
      timed restore restic restic -r "$REPOS/restic" restore latest --target "$target"
      RESTORED="$target$SRC" ;;          # restic recreates the absolute source path
    borg)
      timed restore borg env -C "$target" borg extract "$REPOS/borg::second"
      RESTORED="$target/${SRC#/}" ;;     # borg stores paths without the leading slash
  esac
}
verify_restore() {  # verify_restore TOOL
  [[ -d "$RESTORED" ]] || die "$1: restored tree not found at $RESTORED (contents: $(ls -A "$RESTORES/$1" | head))"
  if ! diff -r --no-dereference -q "$SRC" "$RESTORED" > "$LOGS/verify.$1.txt" 2>&1; then
    echo "---- differences (first 40 lines of $LOGS/verify.$1.txt):" >&2
    head -n 40 "$LOGS/verify.$1.txt" >&2
    die "$1: RESTORE IS NOT IDENTICAL TO THE SOURCE"
  fi
  local rs; rs=$(tree_stats "$RESTORED")
  [[ "$rs" == "$FILES2 $BYTES2" ]] || die "$1: restored $rs (files bytes) but source has $FILES2 $BYTES2"
  echo "  verify    $1: identical ($FILES2 files, $BYTES2 bytes)"
}

# ---------------------------------------------------------------- run
log "init"
for t in "${TOOLS[@]}"; do do_init "$t"; repo_size init "$t"; done
restic_repo_version=$(restic -r "$REPOS/restic" cat config --no-lock 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin).get("version", "?"))' 2>/dev/null || echo "?")
echo "  restic repository format version: $restic_repo_version (restic's default; compression: $( [[ $restic_repo_version == 2 ]] && echo 'auto (default)' || echo 'none (v1 format)'))"
echo "  borg: repokey encryption, default compression (lz4)"

log "first backup ($BYTES1 bytes, page cache: $CACHE_MODE)"
for t in "${TOOLS[@]}"; do
  prepare_step "$SRC"
  do_backup backup-1 "$t" first
  STEP_BYTES[backup-1.$t]=$BYTES1
  repo_size backup-1 "$t"
done

log "mutate (one shop day, applied once, seen by every tool)"
python3 "$GEN" mutate "$SRC" --seed "$MUTATE_SEED" | tee "$LOGS/mutate.txt"
read -r FILES2 BYTES2 < <(tree_stats "$SRC")

log "second backup ($BYTES2 bytes, page cache: $CACHE_MODE)"
for t in "${TOOLS[@]}"; do
  prepare_step "$SRC"
  do_backup backup-2 "$t" second
  STEP_BYTES[backup-2.$t]=$BYTES2
  repo_size backup-2 "$t"
done

log "restore latest snapshot + verify"
for t in "${TOOLS[@]}"; do
  prepare_step "$REPOS/$t"
  do_restore "$t"
  STEP_BYTES[restore.$t]=$BYTES2
  verify_restore "$t"
  rm -rf "${RESTORES:?}/$t"
done

# ---------------------------------------------------------------- report
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s < 0.01) s = 0.01; printf "%.1f", b / 1e6 / s }'; }
mib()  { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
peak_kb() { local t=$1 m=0 s; for s in "${STEPS[@]}"; do (( ${RSS_KB[$s.$t]} > m )) && m=${RSS_KB[$s.$t]}; done; echo "$m"; }

rows=()   # step|tool|seconds|MB/s|rss MiB|repo MiB
for s in "${STEPS[@]}"; do
  for t in "${TOOLS[@]}"; do
    thr="-"; [[ -n "${STEP_BYTES[$s.$t]:-}" ]] && thr=$(mbps "${STEP_BYTES[$s.$t]}" "${SECS[$s.$t]}")
    repo="-"; [[ -n "${REPO_BYTES[$s.$t]:-}" ]] && repo=$(mib "${REPO_BYTES[$s.$t]}")
    rows+=("$s|$t|${SECS[$s.$t]}|$thr|$(( ${RSS_KB[$s.$t]} / 1024 ))|$repo")
  done
done

# ratio lines: metric|vs|value|meaning
ratios=()
if has_tool ours; then
  for other in restic borg; do
    for s in backup-1 backup-2 restore; do
      r=$(awk -v a="${SECS[$s.$other]}" -v b="${SECS[$s.ours]}" 'BEGIN { if (b < 0.01) b = 0.01; if (a < 0.01) a = 0.01; printf "%.2f", a / b }')
      ratios+=("$s throughput|$other|${r}x|ours MB/s ÷ $other MB/s (>1: ours faster)")
    done
    r=$(awk -v a="${REPO_BYTES[backup-2.ours]}" -v b="${REPO_BYTES[backup-2.$other]}" 'BEGIN { printf "%.2f", a / b }')
    ratios+=("repo size after 2 backups|$other|${r}x|ours ÷ $other (<1: ours smaller)")
    r=$(awk -v a="$(peak_kb ours)" -v b="$(peak_kb "$other")" 'BEGIN { printf "%.2f", a / b }')
    ratios+=("peak memory (max over steps)|$other|${r}x|ours ÷ $other (<1: ours leaner)")
  done
fi

log "results ($MODE, page cache $CACHE_MODE; MB = 10^6 bytes, MiB = 2^20 bytes)"
printf '%-9s  %-7s  %9s  %9s  %13s  %13s\n' step tool seconds "MB/s" "peak RSS MiB" "repo MiB"
for row in "${rows[@]}"; do
  IFS='|' read -r s t sec thr rss repo <<< "$row"
  printf '%-9s  %-7s  %9s  %9s  %13s  %13s\n' "$s" "$t" "$sec" "$thr" "$rss" "$repo"
done
if [[ ${#ratios[@]} -gt 0 ]]; then
  echo
  printf '%-30s  %-7s  %7s  %s\n' metric vs ratio meaning
  for row in "${ratios[@]}"; do
    IFS='|' read -r m o v meaning <<< "$row"
    printf '%-30s  %-7s  %7s  %s\n' "$m" "$o" "$v" "$meaning"
  done
else
  echo "(no ratios: repairops-vault was skipped)"
fi

{
  echo "step,tool,seconds,mb_per_s,peak_rss_mib,repo_mib"
  for row in "${rows[@]}"; do echo "${row//|/,}"; done
} > "$WORKDIR/results.csv"

{
  echo "### Backup benchmark: repairops-vault vs restic vs borg ($MODE run, $(date -u +%Y-%m-%d))"
  echo
  echo "- Dataset: repair-shop SQLite DB (${DB_MB} MB) + photo/PDF attachments (${ATT_MB} MB):" \
       "$FILES1 files, $(awk -v b="$BYTES1" 'BEGIN{printf "%.1f", b/1e6}') MB; after one mutated shop day:" \
       "$FILES2 files, $(awk -v b="$BYTES2" 'BEGIN{printf "%.1f", b/1e6}') MB (\`bench/vault/gen_shop.py\`, seed $GEN_SEED / $MUTATE_SEED)"
  echo "- Machine: $(nproc) cores, ${cpu:-unknown CPU}, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(stat -f -c %T "$WORKDIR") filesystem"
  echo "- Tools: $( has_tool ours && "$VAULT_BIN" --version || echo 'repairops-vault skipped'); $(restic version | cut -d' ' -f1-2) (repo format v$restic_repo_version, defaults); $(borg --version) (repokey, lz4 default)"
  if [[ $CACHE_MODE == cold ]]; then
    echo "- Page cache dropped before every backup and restore (cold)."
  else
    echo "- Page cache not dropped: each step's input was pre-read, so every tool ran warm."
  fi
  echo "- MB/s = dataset bytes ÷ wall seconds (10^6 bytes); repo size = \`du -sb\` after the step; RSS = /usr/bin/time -v maximum resident set size."
  echo
  echo "| step | tool | seconds | MB/s | peak RSS (MiB) | repo size (MiB) |"
  echo "|---|---|---:|---:|---:|---:|"
  for row in "${rows[@]}"; do
    IFS='|' read -r s t sec thr rss repo <<< "$row"
    echo "| $s | $t | $sec | $thr | $rss | $repo |"
  done
  if [[ ${#ratios[@]} -gt 0 ]]; then
    echo
    echo "| metric | ours vs | ratio | meaning |"
    echo "|---|---|---:|---|"
    for row in "${ratios[@]}"; do
      IFS='|' read -r m o v meaning <<< "$row"
      echo "| $m | $o | $v | $meaning |"
    done
  fi
} > "$WORKDIR/results.md"

echo
echo "wrote $WORKDIR/results.md and $WORKDIR/results.csv (logs: $LOGS)"
