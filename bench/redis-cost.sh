#!/usr/bin/env bash
# Redis server-side cost per session cycle, which does not depend on the machine's load as much as a
# wall clock does: the server's CPU time (`INFO cpu`: used_cpu_user + used_cpu_sys, all of it: parsing,
# system calls, commands) over ITER cycles of bench/cycle.php in each mode, and `INFO commandstats`
# per command (calls per cycle x usec per call; CONFIG RESETSTAT after the warm-up run; a command run
# inside MULTI/EXEC or a script is counted on its own and in the EXEC/EVALSHA that ran it); and the
# round trips per cycle (SessionProxy\stats()). phpredis (unlocked, persistent) against the same
# server in the same run. Uses a running redis-server: PORT (default 6379).
#   bash bench/redis-cost.sh [TREE]   env: PORT=6379 ITER=2000 BYTES=200 MODES="1 0 optimistic phpredis"
set -euo pipefail
cd "$(dirname "$0")/.."
TREE=${1:-$PWD}
PORT=${PORT:-6379}
ITER=${ITER:-2000}
BYTES=${BYTES:-200}
MODES=${MODES:-1 0 optimistic phpredis}
cli() { redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }
for m in $MODES; do
  if [[ $m == phpredis ]]; then
    cmd=(php -n -d extension=igbinary -d extension=msgpack -d extension=redis -d redis.pconnect.echo_check_liveness=0
      -d session.save_handler=redis -d "session.save_path=\"tcp://127.0.0.1:$PORT?persistent=1&prefix=cost$RANDOM:\""
      -d redis.session.locking_enabled=0 "$TREE/bench/cycle.php")
  else
    cmd=(php -n -d "extension=$TREE/target/release/libsession_proxy.so" -d session.save_handler=session_proxy
      -d "session.save_path=\"redis://127.0.0.1:$PORT?prefix=cost$RANDOM:\"" -d "session_proxy.locking=$m" "$TREE/bench/cycle.php")
  fi
  # The warm-up run creates the sessions and loads the scripts; the measured run starts from a reset.
  "${cmd[@]}" 200 "$BYTES" >/dev/null
  cli config resetstat >/dev/null
  cpu() { cli info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.6f", s}'; }
  c0=$(cpu)
  out=$("${cmd[@]}" "$ITER" "$BYTES" trips)
  c1=$(cpu)
  # Each run also does cycle.php's own 200 warm-up cycles.
  n=$((ITER + 200))
  cli info commandstats | tr -d '\r' | awk -F'[:,=]' -v n="$n" -v m="$m" -v rt="${out##* }" -v cps="${out%% *}" -v cpu="$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')" '
    /^cmdstat_/ { c = substr($1, 9); if (c ~ /^config/) next; calls[c] = $3; usec[c] = $5 }
    END {
      printf "%s: %.1f us server CPU per cycle, %s round trips, %s cycles/s;", m, cpu * 1e6 / n, rt, cps
      for (c in calls) printf " %s %.2fx%.1fus", c, calls[c] / n, usec[c] / calls[c]
      printf "\n"
    }'
done
