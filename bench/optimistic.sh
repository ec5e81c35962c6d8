#!/usr/bin/env bash
# session_proxy.locking=optimistic against On and Off, same run (issue 12's bench):
#  1. single-client cycles/s (bench/cycle.php) on SQLite, files, Redis and Memcached in each mode (the
#     three modes interleaved run by run),
#     with the round trips per cycle (SessionProxy\stats()), and phpredis in its best unlocked
#     configuration (persistent, no liveness ECHO) against the same redis-server;
#  2. the 16-request batch: 16 parallel requests on one cookie, each setting its own key during 50 ms
#     of work, through nginx + php-fpm (17 workers, a pool of its own: scripts/services/web.sh), wall
#     time per engine, optimistic against On.
# Each figure is the median of $REPEAT runs.
# Usage: bash bench/optimistic.sh   (env: REPEAT=5 ITER=5000 PORT=6397 MC_PORT=21297 BENCH_DIR=/tmp
#                                    ENGINES="sqlite files redis memcached" BATCH=1 (0: the first part only))
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/libsession_proxy.so"
REPEAT=${REPEAT:-5}
ITER=${ITER:-5000}
PORT=${PORT:-6397}
MC_PORT=${MC_PORT:-21297}
BASE=$(mktemp -d "${BENCH_DIR:-/tmp}/sp-obench.XXXXXX")
user_args=(); [[ $(id -u) -eq 0 ]] && user_args=(-u root)
cleanup() {
  redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  [[ -f $BASE/mc.pid ]] && kill "$(cat "$BASE/mc.pid")" 2>/dev/null
  [[ -d $BASE/web ]] && bash scripts/services/web.sh stop "$BASE/web" >/dev/null 2>&1
  rm -rf "$BASE"
}
trap cleanup EXIT
redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no --daemonize yes \
  --dir "$BASE" --pidfile "$BASE/r.pid" --logfile "$BASE/r.log" >/dev/null
memcached -d "${user_args[@]}" -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 256 -P "$BASE/mc.pid"
for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
mkdir -p "$BASE/files"
declare -A DSN=([sqlite]="sqlite://$BASE/s.sqlite" [files]="files://$BASE/files"
  [redis]="redis://127.0.0.1:$PORT" [memcached]="memcached://127.0.0.1:$MC_PORT")
read -r -a ENGINES <<<"${ENGINES:-sqlite files redis memcached}"
BATCH=${BATCH:-1}
PIN=""; command -v taskset >/dev/null && PIN="taskset -c 0"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

# One run: "<cycles/s> <round trips>".
one() { # engine bytes locking
  $PIN php -n -d extension="$SO" -d session.save_handler=session_proxy -d "session.save_path=\"${DSN[$1]}\"" \
    -d session_proxy.locking="$3" bench/cycle.php "$ITER" "$2" trips
}
# The three modes of one engine, interleaved run by run (the machine's load then falls on each alike):
# "<On median> <On trips> <Off median> <Off trips> <optimistic median> <optimistic trips>".
modes() { # engine bytes
  local on=() off=() opt=() a b c
  for _ in $(seq "$REPEAT"); do
    a=$(one "$1" "$2" 1); b=$(one "$1" "$2" 0); c=$(one "$1" "$2" optimistic)
    on+=("$a"); off+=("$b"); opt+=("$c")
  done
  for m in on off opt; do
    local -n runs=$m
    printf '%s %s ' "$(printf '%s\n' "${runs[@]}" | cut -d' ' -f1 | median)" "${runs[-1]##* }"
  done
  echo
}
phpredis() { # bytes
  local out=()
  for _ in $(seq "$REPEAT"); do
    out+=("$($PIN php -n -d extension=igbinary -d extension=msgpack -d extension=redis -d redis.pconnect.echo_check_liveness=0 \
      -d session.save_handler=redis -d "session.save_path=\"tcp://127.0.0.1:$PORT?persistent=1\"" \
      -d redis.session.locking_enabled=0 bench/cycle.php "$ITER" "$1" trips | cut -d' ' -f1)")
  done
  printf '%s\n' "${out[@]}" | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a/b}'; }

echo "## Single-client cycles/s, median of $REPEAT runs x $ITER cycles (PHP pinned: ${PIN:-no}); round trips per cycle in brackets"
echo
echo "| engine | payload | On | Off | optimistic | optimistic / Off | phpredis unlocked | optimistic / phpredis |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for bytes in 200 4096; do
  pr=$(phpredis "$bytes")
  for e in "${ENGINES[@]}"; do
    read -r on on_rt off off_rt opt opt_rt < <(modes "$e" "$bytes")
    peer="-"; vs="-"
    [[ $e == redis ]] && { peer=$pr; vs=$(ratio "$opt" "$pr"); }
    echo "| $e | $bytes B | $on [$on_rt] | $off [$off_rt] | $opt [$opt_rt] | $(ratio "$opt" "$off") | $peer | $vs |"
  done
done

# --- 2. the 16-request batch through php-fpm -------------------------------------------------------
((BATCH)) || exit 0
mkdir -p "$BASE/web"
SP_FPM_WORKERS=17 SP_WEB_PORT=0 SP_FPM_PORT=0 bash scripts/services/web.sh start "$BASE/web" >/dev/null
url=$(sed -n 's/^SP_WEB_URL=//p' "$BASE/web/env")
echo
echo "## 16 parallel requests on one cookie, each setting its own key during 50 ms of work: batch wall time, median of $REPEAT batches (nginx + php-fpm, 17 workers)"
echo
echo "| engine | locking On | optimistic | On / optimistic | keys kept (optimistic) |"
echo "|---|---:|---:|---:|---:|"
for e in "${ENGINES[@]}"; do
  dsn=${DSN[$e]}
  [[ $e == redis || $e == memcached ]] && dsn="$dsn?prefix=batch$RANDOM:"
  SP_WEB_URL=$url php -n bench/batch.php "$dsn" "$REPEAT" | {
    read -r on opt kept
    echo "| $e | $on ms | $opt ms | $(ratio "$on" "$opt") | $kept |"
  }
done
