# Sourced by scripts/soak-fpm.sh and scripts/race-lockoff.sh: a private redis-server and memcached on
# free 127.0.0.1 ports (the kernel's pick), pid files in a state dir, so that these scripts never use
# or disturb the servers of `make test` (scripts/services/) or of another checkout.
#   ps_start DIR   starts both, sets PS_REDIS_PORT and PS_MEMCACHED_PORT; non-zero if one did not start
#   ps_stop DIR    stops both
# alive, kill_pid, free_port, wait_port
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ps_start() {
  local dir=$1 user=()
  mkdir -p "$dir"
  [[ $(id -u) -eq 0 ]] && user=(-u root)
  PS_REDIS_PORT=$(free_port)
  redis-server --bind 127.0.0.1 --port "$PS_REDIS_PORT" --save '' --appendonly no --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null || return 1
  wait_port "$PS_REDIS_PORT" 10 || { echo "private redis-server on 127.0.0.1:$PS_REDIS_PORT did not start" >&2; return 1; }
  PS_MEMCACHED_PORT=$(free_port)
  memcached -d "${user[@]}" -l 127.0.0.1 -p "$PS_MEMCACHED_PORT" -U 0 -m 256 -P "$dir/memcached.pid" || return 1
  wait_port "$PS_MEMCACHED_PORT" 10 || { echo "private memcached on 127.0.0.1:$PS_MEMCACHED_PORT did not start" >&2; return 1; }
  export PS_REDIS_PORT PS_MEMCACHED_PORT
}

ps_stop() {
  local f
  for f in "$1"/redis.pid "$1"/memcached.pid; do
    [[ -s $f ]] || continue
    kill_pid "$(tr -dc 0-9 < "$f")"
    rm -f "$f"
  done
  return 0
}
