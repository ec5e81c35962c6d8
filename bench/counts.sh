#!/usr/bin/env bash
# Cost per session cycle that does not depend on the machine's load: user-space instructions
# (valgrind --tool=callgrind) and system calls (strace -c -f) per bench/cycle.php cycle, for one or
# more builds side by side (a build = a tree with target/release/libsession_proxy.so and bench/).
# Wall-clock benches on a shared 2-CPU machine move 2x between runs; these counts repeat to <1 %.
#
#   bash bench/counts.sh [TREE ...]    (default: this tree; e.g. bash bench/counts.sh /work/wt-before .)
#   env: ITER=1000 BYTES=200 CONFIGS="sqlite files sqlite-nolock redis redis-nolock memcached memcached-nolock"
#        (and redis-encrypted, sqlite-encrypted: the same with session_proxy.encryption_key set)
#        (also redis-optimistic, memcached-optimistic, sqlite-optimistic, files-optimistic:
#        session_proxy.locking=optimistic; files-nolock)
#        REDIS_PORT=6379 MEMCACHED_PORT=11211 (servers to use for the network engines: not started here)
#
# Each run does 200 warm-up cycles plus ITER; the figures are divided by ITER + 200 (start-up, about
# 2 % at ITER=1000, is in every build alike).
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-1000}
BYTES=${BYTES:-200}
CONFIGS=${CONFIGS:-sqlite files sqlite-nolock}
TREES=("$@"); ((${#TREES[@]})) || TREES=("$PWD")
WORK=$(mktemp -d /tmp/sp-counts.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
head -c 32 /dev/urandom > "$WORK/key"

config() { # name dir -> "save_path locking"
  case $1 in
    sqlite) echo "sqlite://$2/s.sqlite 1" ;;
    sqlite-nolock) echo "sqlite://$2/s.sqlite 0" ;;
    files) echo "files://$2 1" ;;
    redis) echo "redis://127.0.0.1:${REDIS_PORT:-6379}?prefix=cnt$RANDOM: 1" ;;
    redis-encrypted) echo "redis://127.0.0.1:${REDIS_PORT:-6379}?prefix=cnt$RANDOM: 1 encrypted" ;;
    sqlite-encrypted) echo "sqlite://$2/s.sqlite 1 encrypted" ;;
    redis-nolock) echo "redis://127.0.0.1:${REDIS_PORT:-6379}?prefix=cnt$RANDOM: 0" ;;
    redis-optimistic) echo "redis://127.0.0.1:${REDIS_PORT:-6379}?prefix=cnt$RANDOM: optimistic" ;;
    memcached) echo "memcached://127.0.0.1:${MEMCACHED_PORT:-11211}?prefix=cnt$RANDOM: 1" ;;
    memcached-nolock) echo "memcached://127.0.0.1:${MEMCACHED_PORT:-11211}?prefix=cnt$RANDOM: 0" ;;
    memcached-optimistic) echo "memcached://127.0.0.1:${MEMCACHED_PORT:-11211}?prefix=cnt$RANDOM: optimistic" ;;
    sqlite-optimistic) echo "sqlite://$2/s.sqlite optimistic" ;;
    files-nolock) echo "files://$2 0" ;;
    files-optimistic) echo "files://$2 optimistic" ;;
    *) echo "bench/counts.sh: unknown config $1" >&2; exit 2 ;;
  esac
}
php_args() { # tree save_path locking [encrypted] -> the array CMD
  CMD=(php -n -d "extension=$1/target/release/libsession_proxy.so" -d session.save_handler=session_proxy
    -d "session.save_path=\"$2\"" -d "session_proxy.locking=$3")
  [[ ${4:-} == encrypted ]] && CMD+=(-d "session_proxy.encryption_key=$WORK/key")
  CMD+=("$1/bench/cycle.php" "$ITER" "$BYTES")
}
cycles=$((ITER + 200))
echo "per cycle ($BYTES B, $cycles cycles per run): user-space instructions (callgrind) / system calls (strace -c -f)"
printf '| config |'; for t in "${TREES[@]}"; do printf ' %s |' "$(cd "$t" && git rev-parse --short HEAD 2>/dev/null || echo "$t")"; done; echo
printf '|---|'; for _ in "${TREES[@]}"; do printf -- '---:|'; done; echo
for c in $CONFIGS; do
  row="| $c |"
  for t in "${TREES[@]}"; do
    d=$(mktemp -d "$WORK/d.XXXX")
    read -r path lock enc <<<"$(config "$c" "$d")"
    php_args "$t" "$path" "$lock" "$enc"
    ir=$(valgrind --tool=callgrind --callgrind-out-file="$d/cg" "${CMD[@]}" 2>&1 >/dev/null |
      awk '/Collected/ {print $4}')
    rm -rf "$d"; d=$(mktemp -d "$WORK/d.XXXX"); read -r path lock enc <<<"$(config "$c" "$d")"
    php_args "$t" "$path" "$lock" "$enc"
    strace -c -f -o "$d/st" "${CMD[@]}" >/dev/null
    sc=$(awk '$NF == "total" {print $4}' "$d/st")
    rm -rf "$d"
    row="$row $(awk -v i="$ir" -v s="$sc" -v n="$cycles" 'BEGIN {printf "%.0f / %.1f", i/n, s/n}') |"
  done
  echo "$row"
done
