#!/usr/bin/env bash
# Session cycles/s of session_proxy (SQLite, files engines) against PHP's own `files` handler, same
# machine, same run. Each figure is the median of $REPEAT runs, each run pinned to one CPU.
# Usage: bash bench/cycle.sh   (env: REPEAT=5 ITER=20000 BENCH_DIR=/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/libsession_proxy.so"
REPEAT=${REPEAT:-5}
ITER=${ITER:-20000}
BASE=$(mktemp -d "${BENCH_DIR:-/tmp}/sp-bench.XXXXXX")
trap 'rm -rf "$BASE"' EXIT
mkdir -p "$BASE/php-files" "$BASE/sp-files"
PIN=""
command -v taskset >/dev/null && PIN="taskset -c 0"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

run() { # handler save_path bytes locking
  local out=()
  for _ in $(seq "$REPEAT"); do
    out+=("$($PIN php -n -d extension="$SO" -d session.save_handler="$1" -d session.save_path="$2" \
      -d session_proxy.locking="$4" bench/cycle.php "$ITER" "$3")")
  done
  printf '%s\n' "${out[@]}" | median
}

fs=$(df -T "$BASE" | awk 'NR==2 {print $2}')
echo "session cycles/s, median of $REPEAT runs x $ITER cycles, pinned: ${PIN:-no}, storage on $fs ($BASE)"
printf '| payload | PHP files | session_proxy files | ratio | session_proxy SQLite | ratio | SQLite, locking off | ratio |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for bytes in 200 4096 65536; do
  php_files=$(run files "$BASE/php-files" "$bytes" 1)
  sp_files=$(run session_proxy "files://$BASE/sp-files" "$bytes" 1)
  sp_sqlite=$(run session_proxy "sqlite://$BASE/sp.sqlite" "$bytes" 1)
  sp_sqlite_nl=$(run session_proxy "sqlite://$BASE/sp-nolock.sqlite" "$bytes" 0)
  ratio() { awk -v a="$1" -v b="$php_files" 'BEGIN {printf "%.2fx", a/b}'; }
  printf '| %s B | %s | %s | %s | %s | %s | %s | %s |\n' "$bytes" "$php_files" \
    "$sp_files" "$(ratio "$sp_files")" "$sp_sqlite" "$(ratio "$sp_sqlite")" "$sp_sqlite_nl" "$(ratio "$sp_sqlite_nl")"
done
