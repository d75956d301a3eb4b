#!/usr/bin/env bash
# Interleaved A/B of the second backup: which of several repairops-vault builds backs
# up one shop day faster. Single runs on a shared VM vary by ±20%; alternating the
# builds over many cold runs and comparing medians separates a real change from drift.
#
#   bench/vault/ab.sh [--runs N] [--workdir DIR] BIN_A BIN_B [BIN...]
#
# Once per workdir: generates the shop (gen_shop.py, 300 MB db + 800 MB attachments),
# takes the first backup with BIN_A into a pristine repository, and mutates the shop
# by one day. Then, N times, for each build in turn: hard-links a copy of the pristine
# repository (backups only add files, so the copy costs nothing), drops the page
# cache, and times the second backup. Prints the median and minimum wall time per build.
# Needs root (to drop the page cache) and python3.
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
RUNS=8
WORKDIR="$ROOT/target/vault-ab"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --workdir) WORKDIR=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
[[ $# -ge 2 ]] || { echo "give at least two repairops-vault binaries to compare" >&2; exit 2; }
bins=()
for b in "$@"; do
  [[ -x $b ]] || { echo "$b is not an executable" >&2; exit 2; }
  bins+=("$(cd "$(dirname "$b")" && pwd)/$(basename "$b")")
done
set -- "${bins[@]}"
[[ $(id -u) == 0 ]] || { echo "dropping the page cache needs root" >&2; exit 2; }
export VAULT_PASSWORD=ab-password-not-secret
mkdir -p "$WORKDIR" && cd "$WORKDIR"
if [[ ! -f prepared ]]; then
  rm -rf shop pristine
  python3 "$SCRIPT_DIR/gen_shop.py" generate shop --db-mb 300 --attachments-mb 800 --seed 42 >/dev/null
  "$1" --repo pristine --password-env VAULT_PASSWORD init >/dev/null
  "$1" --repo pristine --password-env VAULT_PASSWORD backup shop --tag kind=manual >/dev/null
  python3 "$SCRIPT_DIR/gen_shop.py" mutate shop --seed 1 >/dev/null
  touch prepared
fi
: > times.txt
for ((i = 1; i <= RUNS; i++)); do
  for b in "$@"; do
    rm -rf repo && cp -al pristine repo
    sync; echo 3 > /proc/sys/vm/drop_caches
    /usr/bin/time -f "%e %U %S" -o t.txt "$b" --repo repo --password-env VAULT_PASSWORD backup shop --tag kind=manual >/dev/null
    echo "$b $(cat t.txt)" >> times.txt
  done
done
rm -rf repo
for b in "$@"; do
  grep -F "$b " times.txt | sort -k2 -n | awk -v b="$b" '{w[NR]=$2; u+=$3; s+=$4}
    END {printf "%-50s median %.2f s  min %.2f s  user %.2f s  sys %.2f s  (%d runs)\n", b, w[int((NR+1)/2)], w[1], u/NR, s/NR, NR}'
done
