#!/usr/bin/env bash
# Session cycles/s: session_proxy's memcached engine vs php-memcached (Debian php8.2-memcached 3.2.0,
# its best configuration: persistent connections, binary protocol, ketama), both against the same 3
# memcached servers in the same run; locking on and off; 3 payload sizes. Each figure is the median of
# $REPEAT runs of $ITER cycles (bench/cycle.php), PHP pinned to CPU 0 and the servers to CPU 1.
# session_proxy runs by default (reads sleep at once, as php-memcached's do: the effect of fewer round
# trips alone), with busy_poll=50, and with lock_placement=session.
# Usage: bash bench/memcached.sh   (env: REPEAT=5 ITER=5000)
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/libsession_proxy.so"
REPEAT=${REPEAT:-5}
ITER=${ITER:-5000}
. scripts/lib.sh # alive, kill_pid, free_port, wait_port
# Ports from SP_MEMCACHED_PORT_BASE (default 21251), each replaced by a free one if taken: a previous
# run's servers may still be exiting (that made a run right after another fail at session_start).
BASE_PORT=${SP_MEMCACHED_PORT_BASE:-21251}
DIR=$(mktemp -d /tmp/sp-bench-mc.XXXXXX)
user_args=(); [[ $(id -u) -eq 0 ]] && user_args=(-u root)
PIN_PHP=""; PIN_SRV=""
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then PIN_PHP="taskset -c 0"; PIN_SRV="taskset -c 1"; fi
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill_pid "$pid"; done; rm -rf "$DIR"; }
trap cleanup EXIT
PORTS=()
for i in 0 1 2; do
  p=$(free_port $((BASE_PORT + i))) || { echo "bench/memcached.sh: no free port" >&2; exit 1; }
  $PIN_SRV memcached "${user_args[@]}" -l 127.0.0.1 -p "$p" -U 0 -m 256 >"$DIR/$p.log" 2>&1 &
  PIDS+=($!); PORTS+=("$p")
  wait_port "$p" 10 "$!" || { echo "bench/memcached.sh: memcached on port $p did not start" >&2; cat "$DIR/$p.log" >&2; exit 1; }
done
servers=$(printf '127.0.0.1:%s,' "${PORTS[@]}"); servers=${servers%,}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
sp1() { # bytes locking [query]
  $PIN_PHP php -n -d extension="$SO" -d session.save_handler=session_proxy \
    -d "session.save_path=\"memcached://$servers${3:+?$3}\"" -d session_proxy.locking="$2" bench/cycle.php "$ITER" "$1"
}
pm1() { # bytes locking
  $PIN_PHP php -n -d extension=igbinary -d extension=msgpack -d extension=memcached \
    -d session.save_handler=memcached -d session.save_path="$servers" -d memcached.sess_persistent=1 \
    -d memcached.sess_locking="$2" bench/cycle.php "$ITER" "$1"
}
echo "session cycles/s against 3 local memcached servers, median of $REPEAT runs x $ITER cycles, PHP pinned: ${PIN_PHP:-no}, servers pinned: ${PIN_SRV:-no}"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a/b}'; }
echo "three servers ($servers)"
printf '| payload | locking | php-memcached | session_proxy | ratio | session_proxy busy_poll=50 | ratio | session_proxy lock_placement=session | ratio |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for bytes in 200 4096 65536; do
  for lock in 1 0; do
    # Runs of the handlers alternate, so background load hits them alike.
    A=(); B=(); C=(); Z=()
    for _ in $(seq "$REPEAT"); do
      A+=("$(pm1 "$bytes" "$lock")"); B+=("$(sp1 "$bytes" "$lock")"); Z+=("$(sp1 "$bytes" "$lock" busy_poll=50)")
      [[ $lock = 1 ]] && C+=("$(sp1 "$bytes" "$lock" lock_placement=session)")
    done
    a=$(printf '%s\n' "${A[@]}" | median); b=$(printf '%s\n' "${B[@]}" | median); c=-; rc=-
    z=$(printf '%s\n' "${Z[@]}" | median)
    if [[ $lock = 1 ]]; then c=$(printf '%s\n' "${C[@]}" | median); rc=$(ratio "$c" "$a"); fi
    printf '| %s B | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$bytes" "$([[ $lock = 1 ]] && echo on || echo off)" "$a" "$b" \
      "$(ratio "$b" "$a")" "$z" "$(ratio "$z" "$a")" "$c" "$rc"
  done
done
# One server (the common deployment): the lock item and the session always share it.
servers="127.0.0.1:${PORTS[0]}"
echo
echo "one server ($servers), locking on"
printf '| payload | php-memcached | session_proxy | ratio |\n|---|---|---|---|\n'
for bytes in 200 4096 65536; do
  A=(); B=()
  for _ in $(seq "$REPEAT"); do A+=("$(pm1 "$bytes" 1)"); B+=("$(sp1 "$bytes" 1)"); done
  a=$(printf '%s\n' "${A[@]}" | median); b=$(printf '%s\n' "${B[@]}" | median)
  printf '| %s B | %s | %s | %s |\n' "$bytes" "$a" "$b" "$(ratio "$b" "$a")"
done
