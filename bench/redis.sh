#!/usr/bin/env bash
# Session cycles/s against one redis-server, same run: session_proxy vs phpredis' session handler (in its
# best configuration: persistent connection, no ECHO liveness check), locking on and off, plus the
# floor (a bare GET + SETEX from PHP). session_proxy runs twice: as configured by default (reads sleep
# at once, as phpredis' do: the effect of fewer round trips alone), and with busy_poll=50.
# Each figure is the median of $REPEAT runs.
# Usage: bash bench/redis.sh   (env: REPEAT=5 ITER=10000 PORT=${SP_REDIS_PORT_BASE:-6399} PIN=same|split)
#   PIN=split (default): PHP on CPU 0, redis-server on CPU 1; PIN=same: both on CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/libsession_proxy.so"
REPEAT=${REPEAT:-5}
ITER=${ITER:-10000}
PORT=${PORT:-${SP_REDIS_PORT_BASE:-6399}}
PIN=${PIN:-split}
BASE=$(mktemp -d "${BENCH_DIR:-/tmp}/sp-rbench.XXXXXX")
REDIS_CPU=1; [[ $PIN == same ]] && REDIS_CPU=0
taskset -c "$REDIS_CPU" redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no --daemonize yes \
  --dir "$BASE" --pidfile "$BASE/r.pid" --logfile "$BASE/r.log" >/dev/null
trap 'redis-cli -h 127.0.0.1 -p $PORT shutdown nosave >/dev/null 2>&1; rm -rf "$BASE"' EXIT
for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

PHPREDIS=(-d extension=igbinary -d extension=msgpack -d extension=redis -d redis.pconnect.echo_check_liveness=0)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
rep() { local out=(); for _ in $(seq "$REPEAT"); do out+=("$("$@")"); done; printf '%s\n' "${out[@]}" | median; }

sp() { # bytes locking [query]
  taskset -c 0 php -n -d extension="$SO" -d session.save_handler=session_proxy \
    -d "session.save_path=\"redis://127.0.0.1:$PORT${3:+?$3}\"" -d session_proxy.locking="$2" bench/cycle.php "$ITER" "$1"
}
phpredis() { # bytes locking
  taskset -c 0 php -n "${PHPREDIS[@]}" -d session.save_handler=redis \
    -d "session.save_path=\"tcp://127.0.0.1:$PORT?persistent=1\"" -d redis.session.locking_enabled="$2" \
    bench/cycle.php "$ITER" "$1"
}
floor() { taskset -c 0 php -n "${PHPREDIS[@]}" bench/floor.php "$ITER" "$1" "$PORT"; }

echo "Redis session cycles/s, median of $REPEAT runs x $ITER cycles; PHP on CPU 0, redis-server on CPU $REDIS_CPU"
echo "| payload | floor GET+SETEX | locking | phpredis | session_proxy | ratio | session_proxy busy_poll=50 | ratio |"
echo "|---|---|---|---|---|---|---|---|"
r() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a/b}'; }
for bytes in 200 4096 65536; do
  f=$(rep floor "$bytes")
  for lock in 1 0; do
    p=$(rep phpredis "$bytes" "$lock"); s=$(rep sp "$bytes" "$lock"); z=$(rep sp "$bytes" "$lock" busy_poll=50)
    echo "| $bytes B | $f | $([[ $lock = 1 ]] && echo on || echo off) | $p | $s | $(r "$s" "$p") | $z | $(r "$z" "$p") |"
  done
done
