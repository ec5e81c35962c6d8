#!/usr/bin/env bash
# A/B of the single-client cycle (bench/cycle.php) between builds, interleaved run by run so that a
# shared machine's load falls on every build alike: PHP's files handler, then each tree's
# session_proxy build, REPEAT times; medians, and each build's ratio to PHP files of the same runs.
#
#   bash bench/ab-cycle.sh TREE...   (env: REPEAT=5 ITER=3000 BYTES=200 ENGINES="files sqlite" BENCH_DIR=/tmp)
#   a TREE is a checkout with target/release/libsession_proxy.so (e.g. a `git worktree add --detach`)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-5}
ITER=${ITER:-3000}
BYTES=${BYTES:-200}
ENGINES=${ENGINES:-files sqlite}
TREES=("$@"); ((${#TREES[@]})) || { echo "usage: bash bench/ab-cycle.sh TREE..." >&2; exit 2; }
BASE=$(mktemp -d "${BENCH_DIR:-/tmp}/sp-ab.XXXXXX")
trap 'rm -rf "$BASE"' EXIT
PIN=""; command -v taskset >/dev/null && PIN="taskset -c 0"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
one() { # save_handler save_path extension-or-empty
  $PIN php -n ${3:+-d "extension=$3"} -d "session.save_handler=$1" -d "session.save_path=$2" bench/cycle.php "$ITER" "$BYTES"
}
fs=$(df -T "$BASE" | awk 'NR==2 {print $2}')
echo "cycles/s at $BYTES B, median of $REPEAT interleaved runs x $ITER cycles, pinned: ${PIN:-no}, storage on $fs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for e in $ENGINES; do
  printf '\n| %s | PHP files |' "$e"; for t in "${TREES[@]}"; do printf ' %s | ratio |' "$(cd "$t" && git rev-parse --short HEAD)"; done; echo
  printf '|---|---:|'; for _ in "${TREES[@]}"; do printf -- '---:|---:|'; done; echo
  declare -A runs=(); php_runs=()
  for r in $(seq "$REPEAT"); do
    d="$BASE/php-$r"; mkdir -p "$d"; php_runs+=("$(one files "$d" "")")
    for i in "${!TREES[@]}"; do
      d="$BASE/$e-$i-$r"; mkdir -p "$d"
      case $e in files) p="files://$d" ;; sqlite) p="sqlite://$d/s.sqlite" ;; *) echo "unknown engine $e" >&2; exit 2 ;; esac
      runs[$i]+="$(one session_proxy "$p" "${TREES[$i]}/target/release/libsession_proxy.so") "
    done
  done
  pf=$(printf '%s\n' "${php_runs[@]}" | median)
  row="| $BYTES B | $pf |"
  for i in "${!TREES[@]}"; do
    m=$(tr ' ' '\n' <<<"${runs[$i]}" | grep . | median)
    row="$row $m | $(awk -v a="$m" -v b="$pf" 'BEGIN {printf "%.2fx", a/b}') |"
  done
  echo "$row"
  unset runs
done
