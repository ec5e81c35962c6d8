# Sourced by scripts/soak-fpm.sh and scripts/race-lockoff.sh: a private redis-server and memcached on
# free 127.0.0.1 ports (the kernel's pick), pid files in a state dir, so that these scripts never use
# or disturb the servers of `make test` (scripts/services/) or of another checkout.
#   ps_start DIR   starts both, sets PS_REDIS_PORT and PS_MEMCACHED_PORT; non-zero if one did not start
#   ps_stop DIR    stops both
ps_free_port() {
  php -n -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); fclose($s); echo substr(strrchr($n, ":"), 1);'
}

ps_wait_port() { # port
  local i
  for ((i = 0; i < 200; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

ps_start() {
  local dir=$1 user=()
  mkdir -p "$dir"
  [[ $(id -u) -eq 0 ]] && user=(-u root)
  PS_REDIS_PORT=$(ps_free_port)
  redis-server --bind 127.0.0.1 --port "$PS_REDIS_PORT" --save '' --appendonly no --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null || return 1
  ps_wait_port "$PS_REDIS_PORT" || { echo "private redis-server on 127.0.0.1:$PS_REDIS_PORT did not start" >&2; return 1; }
  PS_MEMCACHED_PORT=$(ps_free_port)
  memcached -d "${user[@]}" -l 127.0.0.1 -p "$PS_MEMCACHED_PORT" -U 0 -m 256 -P "$dir/memcached.pid" || return 1
  ps_wait_port "$PS_MEMCACHED_PORT" || { echo "private memcached on 127.0.0.1:$PS_MEMCACHED_PORT did not start" >&2; return 1; }
  export PS_REDIS_PORT PS_MEMCACHED_PORT
}

ps_stop() {
  local f pid i
  for f in "$1"/redis.pid "$1"/memcached.pid; do
    [[ -s $f ]] || continue
    pid=$(tr -dc 0-9 < "$f")
    [[ -n $pid ]] || continue
    kill "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    rm -f "$f"
  done
  return 0
}
