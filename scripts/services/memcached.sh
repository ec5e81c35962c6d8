#!/usr/bin/env bash
# Test memcached servers for the memcached engine (see README.md here): three on TCP with a 32 MiB
# item limit (16 MiB sessions), one with memcached's default 1 MiB limit (oversize tests), one on a
# unix socket. Ports 21211-21214 on 127.0.0.1 (SP_MEMCACHED_PORT_BASE moves all four, for a second
# run beside this one).
set -euo pipefail
cmd=$1 dir=$2/memcached
BASE=${SP_MEMCACHED_PORT_BASE:-21211}
PORTS=("$BASE" "$((BASE + 1))" "$((BASE + 2))")
SMALL=$((BASE + 3))
user_args=()
[[ $(id -u) -eq 0 ]] && user_args=(-u root)

case $cmd in
start)
  mkdir -p "$dir"
  command -v memcached >/dev/null || { echo "memcached not installed (scripts/deps.sh)" >&2; exit 1; }
  for p in "${PORTS[@]}"; do
    memcached -d "${user_args[@]}" -l 127.0.0.1 -p "$p" -U 0 -m 64 -I 32m -P "$dir/$p.pid"
  done
  memcached -d "${user_args[@]}" -l 127.0.0.1 -p "$SMALL" -U 0 -m 64 -P "$dir/$SMALL.pid"
  memcached -d "${user_args[@]}" -s "$dir/memcached.sock" -a 0700 -m 64 -I 32m -P "$dir/sock.pid"
  for p in "${PORTS[@]}" "$SMALL"; do
    ok=0
    for _ in $(seq 100); do
      if exec 3<>"/dev/tcp/127.0.0.1/$p" 2>/dev/null; then exec 3>&-; ok=1; break; fi
      sleep 0.05
    done
    [[ $ok -eq 1 ]] || { echo "memcached on port $p did not start" >&2; exit 1; }
  done
  for _ in $(seq 100); do [[ -S $dir/memcached.sock ]] && break; sleep 0.05; done
  [[ -S $dir/memcached.sock ]] || { echo "memcached on $dir/memcached.sock did not start" >&2; exit 1; }
  {
    echo "SP_MEMCACHED_PORT1=${PORTS[0]}"
    echo "SP_MEMCACHED_PORT2=${PORTS[1]}"
    echo "SP_MEMCACHED_PORT3=${PORTS[2]}"
    echo "SP_MEMCACHED_SMALL_PORT=$SMALL"
    echo "SP_MEMCACHED_SOCKET=$dir/memcached.sock"
  } >> "$2/env"
  ;;
stop)
  for f in "$dir"/*.pid; do
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$f"
  done
  ;;
*) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
