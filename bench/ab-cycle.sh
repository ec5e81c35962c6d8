#!/usr/bin/env bash
# A/B of the single-client cycle (bench/cycle.php) between builds, interleaved run by run so that a
# shared machine's load falls on every build alike: PHP's files handler, then each tree's
# session_proxy build, REPEAT times; medians, and each build's ratio to PHP files of the same runs.
#
#   bash bench/ab-cycle.sh TREE...   (env: REPEAT=5 ITER=3000 BYTES=200 ENGINES="files sqlite redis memcached"
#                                     LOCKING=1 RPORT=6381 MPORT=21281 NETQ='&busy_poll=0' BENCH_DIR=/tmp)
#   redis and memcached: a redis-server and a memcached of its own on RPORT / MPORT (127.0.0.1), stopped at the end
#   a TREE is a checkout with target/release/libsession_proxy.so (e.g. a `git worktree add --detach`)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-5}
ITER=${ITER:-3000}
BYTES=${BYTES:-200}
ENGINES=${ENGINES:-files sqlite}
LOCKING=${LOCKING:-1}
RPORT=${RPORT:-6381}
MPORT=${MPORT:-21281}
# Appended to the network engines' DSNs: the same busy polling for every build (older builds polled
# 50 µs by default, newer ones not at all).
NETQ=${NETQ-&busy_poll=0}
TREES=("$@"); ((${#TREES[@]})) || { echo "usage: bash bench/ab-cycle.sh TREE..." >&2; exit 2; }
BASE=$(mktemp -d "${BENCH_DIR:-/tmp}/sp-ab.XXXXXX")
cleanup() {
  redis-cli -h 127.0.0.1 -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
  [[ -f $BASE/mc.pid ]] && kill "$(cat "$BASE/mc.pid")" 2>/dev/null
  rm -rf "$BASE"
}
trap cleanup EXIT
if [[ " $ENGINES " == *" redis "* ]]; then
  redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize yes --dir "$BASE" --logfile "$BASE/r.log" >/dev/null
  for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
fi
if [[ " $ENGINES " == *" memcached "* ]]; then
  user_args=(); [[ $(id -u) -eq 0 ]] && user_args=(-u root)
  memcached -d "${user_args[@]}" -l 127.0.0.1 -p "$MPORT" -U 0 -m 256 -P "$BASE/mc.pid"; sleep 0.3
fi
PIN=""; command -v taskset >/dev/null && PIN="taskset -c 0"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
one() { # save_handler save_path extension-or-empty
  $PIN php -n ${3:+-d "extension=$3"} -d "session.save_handler=$1" -d "session.save_path=\"$2\"" -d "session_proxy.locking=$LOCKING" bench/cycle.php "$ITER" "$BYTES"
}
fs=$(df -T "$BASE" | awk 'NR==2 {print $2}')
echo "cycles/s at $BYTES B, session_proxy.locking=$LOCKING, network DSNs +'$NETQ', median of $REPEAT interleaved runs x $ITER cycles, pinned: ${PIN:-no}, storage on $fs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for e in $ENGINES; do
  printf '\n| %s | PHP files |' "$e"; for t in "${TREES[@]}"; do printf ' %s | ratio |' "$(cd "$t" && git rev-parse --short HEAD)"; done; echo
  printf '|---|---:|'; for _ in "${TREES[@]}"; do printf -- '---:|---:|'; done; echo
  declare -A runs=(); php_runs=()
  for r in $(seq "$REPEAT"); do
    d="$BASE/php-$r"; mkdir -p "$d"; php_runs+=("$(one files "$d" "")")
    for i in "${!TREES[@]}"; do
      d="$BASE/$e-$i-$r"; mkdir -p "$d"
      case $e in files) p="files://$d" ;; sqlite) p="sqlite://$d/s.sqlite" ;;
        redis) p="redis://127.0.0.1:$RPORT?prefix=ab$i.$r:$NETQ" ;; memcached) p="memcached://127.0.0.1:$MPORT?prefix=ab$i.$r.$NETQ" ;; *) echo "unknown engine $e" >&2; exit 2 ;; esac
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
