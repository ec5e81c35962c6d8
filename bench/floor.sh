#!/usr/bin/env bash
# Where a SQLite session cycle's time goes, one process pinned to one CPU, storage on tmpfs: PHP's own
# files handler's whole cycle (the tmpfs target of issue 10) against session_proxy's SQLite cycle from
# PHP, the engine's cycle without PHP, and the bare SQLite statements of a cycle
# (examples/sqlite_floor.rs). Each figure is the median of $REPEAT runs, in µs per cycle.
#   bash bench/floor.sh   (env: REPEAT=5 ITER=20000 BYTES=200 BENCH_DIR=/dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/libsession_proxy.so"
REPEAT=${REPEAT:-5}
ITER=${ITER:-20000}
BYTES=${BYTES:-200}
[[ -f $SO ]] || { echo "bench/floor.sh: $SO not found (make build)" >&2; exit 1; }
cargo build --release --quiet --example sqlite_floor
BASE=$(mktemp -d "${BENCH_DIR:-/dev/shm}/sp-floor.XXXXXX")
trap 'rm -rf "$BASE"' EXIT
mkdir -p "$BASE/php-files"
PIN=""
command -v taskset >/dev/null && PIN="taskset -c 0"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# µs per cycle of bench/cycle.php with the given handler, save path and locking.
php_cycle() {
  for _ in $(seq "$REPEAT"); do
    $PIN php -n -d extension="$SO" -d session.save_handler="$1" -d session.save_path="$2" -d session_proxy.locking="$3" \
      bench/cycle.php "$ITER" "$BYTES" | awk 'NR == 1 {printf "%.2f\n", 1e6 / $1}'
  done | median
}
declare -A floor
for _ in $(seq "$REPEAT"); do
  while read -r line; do
    floor[${line% *}]+="${line##* } "
  done < <($PIN target/release/examples/sqlite_floor "$BASE" "$ITER" "$BYTES")
done
step() { tr ' ' '\n' <<<"${floor[$1]}" | grep . | median; }

fs=$(df -T "$BASE" | awk 'NR==2 {print $2}')
files=$(php_cycle files "$BASE/php-files" 1)
echo "µs per session cycle of $BYTES B, median of $REPEAT runs x $ITER cycles, pinned: ${PIN:-no}, storage on $fs ($BASE)"
echo "| step | µs per cycle | x PHP files' whole cycle |"
echo "|---|---:|---:|"
row() { echo "| $1 | $2 | $(awk -v a="$2" -v b="$files" 'BEGIN {printf "%.2fx", a/b}') |"; }
row "PHP files handler, whole cycle from PHP (bench/cycle.php)" "$files"
row "session_proxy SQLite, whole cycle from PHP, locking on" "$(php_cycle session_proxy "sqlite://$BASE/sp.sqlite" 1)"
row "session_proxy SQLite, whole cycle from PHP, locking off" "$(php_cycle session_proxy "sqlite://$BASE/sp-off.sqlite" 0)"
row "the engine's cycle without PHP, locking on" "$(step "engine, locking on")"
row "the engine's cycle without PHP, locking off" "$(step "engine, locking off")"
row "the bare SQLite statements of a cycle (SELECT; BEGIN IMMEDIATE, UPDATE, COMMIT)" "$(step statements)"
