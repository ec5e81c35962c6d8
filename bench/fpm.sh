#!/usr/bin/env bash
# Throughput where users run PHP: nginx in front of php-fpm, many workers, wrk as the load, every
# handler and its peers in the same run, each figure the median of $REPEAT runs.
#
#   bash bench/fpm.sh        (env: REPEAT=3 DURATION=10 WORKERS=8 CONNS=8 ONLY=regex GROWTH=1 HANDOVER=1 OPCACHE=0
#                             OUT=bench/results/fpm-YYYY-MM-DD SO=path/to/libsession_proxy.so)
#
# Three parts, each printed as a Markdown table and written to $OUT.tsv (bench/chart.py draws it):
# 1. req/s and p99 for each handler, two workloads: "new" (no cookie: every request creates a session)
#    and "existing" (a random one of 1000 cookies, created by a warm-up run). A request is
#    bench/web/session.php: session_start, one change (200 B of data), session_write_close.
#    Busy polling is off by default; the busy_poll=50 rows show what it does under this load.
#    Two rows bound what any handler can reach here: PHP's files handler on tmpfs (no disk), and PHP's
#    session machinery with a handler that stores nothing (bench/web/noop_handler.php, prepended: its
#    userland calls cost a little more than a native handler's would).
# 2. Lock hand-over: 16 concurrent requests on one cookie, each holding the session for 5 ms (then
#    50 ms); wall time against the ideal 16 x work (bench/handover.py; it also checks that no update
#    was lost).
# 3. Growth: the CLI cycle (bench/cycle.php) with 10^3 and 10^6 other sessions stored (SQLite), 10^3
#    and 10^5 (files engine); the ratio is the cost growth.
# It starts its own redis-server and memcached (127.0.0.1, free ports), nginx and php-fpm, and stops
# them at the end. Nothing is pinned: the servers, nginx, the workers and wrk share the 2 CPUs, as on
# a small web server. Storage for files and SQLite is in a directory under /tmp (see the "storage" line).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SO=${SO:-$ROOT/target/release/libsession_proxy.so} # SO=: another build (an A/B against a copy of the base .so)
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-10}
WORKERS=${WORKERS:-8}
CONNS=${CONNS:-8}
ONLY=${ONLY:-.}
GROWTH=${GROWTH:-1}
OPCACHE=${OPCACHE:-0} # 1: OPcache on, as Debian's php-fpm ships it (10-opcache.ini); 0 (the figures so far): every request compiles its script
HANDOVER=${HANDOVER:-1}
OUT=${OUT:-bench/results/fpm-$(date +%F)}
FPM_BIN=${SP_FPM_BIN:-/usr/sbin/php-fpm8.2}
NGINX_BIN=${SP_NGINX_BIN:-/usr/sbin/nginx}
. scripts/lib.sh # alive, kill_pid, free_port, wait_port

[[ -f $SO ]] || { echo "bench/fpm.sh: $SO not found (make build)" >&2; exit 1; }
# wrk is the load generator; Debian's python3-matplotlib draws the chart (bench/chart.py).
need=()
command -v wrk >/dev/null || need+=(wrk)
dpkg-query -W -f='${Status}' python3-matplotlib 2>/dev/null | grep -q "install ok installed" || need+=(python3-matplotlib)
if ((${#need[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

BASE=$(mktemp -d /tmp/sp-fpm-bench.XXXXXX)
mkdir -p "$BASE"/{tmp,php-files,sp-files,nginx-tmp,docroot} "$(dirname "$OUT")"
# The "PHP files (tmpfs)" row's directory: on /dev/shm (tmpfs on Debian), else beside the others.
SHM=$(mktemp -d "$( [[ -d /dev/shm && -w /dev/shm ]] && echo /dev/shm || echo "$BASE")/sp-fpm-bench.XXXXXX")
mkdir -p "$SHM/php-files"
cp bench/web/*.php "$BASE/docroot/"
# The helpers' port variables when set (each replaced by a free port if taken), else free ports.
RPORT=$(free_port "${SP_REDIS_PORT_BASE:-0}"); MPORT=$(free_port "${SP_MEMCACHED_PORT_BASE:-0}")
WPORT=$(free_port "${SP_WEB_PORT:-0}"); FPORT=$(free_port "${SP_FPM_PORT:-0}")
fpm_pid=""; nginx_pid=""
cleanup() {
  [[ -n $fpm_pid ]] && kill_pid "$fpm_pid"
  [[ -n $nginx_pid ]] && kill_pid "$nginx_pid"
  redis-cli -h 127.0.0.1 -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
  [[ -f $BASE/memcached.pid ]] && kill_pid "$(cat "$BASE/memcached.pid")"
  rm -rf "$BASE" "$SHM"
}
trap cleanup EXIT

redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize yes \
  --dir "$BASE" --pidfile "$BASE/redis.pid" --logfile "$BASE/redis.log" >/dev/null
user_args=(); [[ $(id -u) -eq 0 ]] && user_args=(-u root)
memcached -d "${user_args[@]}" -l 127.0.0.1 -p "$MPORT" -U 0 -m 512 -P "$BASE/memcached.pid"
wait_port "$RPORT" 10 && wait_port "$MPORT" 10 || { echo "bench/fpm.sh: redis or memcached did not start" >&2; exit 1; }

nginx_user=""; [[ $(id -u) -eq 0 ]] && nginx_user="user root;"
cat > "$BASE/nginx.conf" <<EOF
daemon off;
$nginx_user
worker_processes 1;
pid $BASE/nginx.pid;
error_log $BASE/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $BASE/nginx-tmp;
    fastcgi_temp_path $BASE/nginx-tmp;
    proxy_temp_path $BASE/nginx-tmp;
    uwsgi_temp_path $BASE/nginx-tmp;
    scgi_temp_path $BASE/nginx-tmp;
    server {
        listen 127.0.0.1:$WPORT;
        root $BASE/docroot;
        location ~ \.php\$ {
            fastcgi_pass 127.0.0.1:$FPORT;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param HTTP_COOKIE \$http_cookie;
            fastcgi_param SERVER_PROTOCOL \$server_protocol;
        }
    }
}
EOF
setsid "$NGINX_BIN" -c "$BASE/nginx.conf" -p "$BASE/" -e "$BASE/nginx-error.log" </dev/null >"$BASE/nginx.out" 2>&1 &
nginx_pid=$!
wait_port "$WPORT" 10 "$nginx_pid" || { echo "bench/fpm.sh: nginx did not start" >&2; cat "$BASE/nginx.out" >&2; exit 1; }

cat > "$BASE/php-fpm.conf" <<EOF
[global]
error_log = $BASE/php-fpm.log
daemonize = no
[bench]
listen = 127.0.0.1:$FPORT
listen.backlog = 4096
pm = static
pm.max_children = $WORKERS
clear_env = no
EOF

if [[ $OPCACHE == 1 ]]; then OPCACHE_ARGS=(-d zend_extension=opcache -d opcache.enable=1); else OPCACHE_ARGS=(-d opcache.enable=0); fi
# One pool per configuration: php-fpm restarted with that handler's INI (-n: nothing from /etc/php).
start_fpm() {
  [[ -n $fpm_pid ]] && { kill_pid "$fpm_pid"; fpm_pid=""; }
  local asroot=(); [[ $(id -u) -eq 0 ]] && asroot=(-R)
  TMPDIR="$BASE/tmp" setsid "$FPM_BIN" -F -n "${asroot[@]}" -y "$BASE/php-fpm.conf" -p "$BASE" \
    -d session.use_strict_mode=0 -d session.gc_probability=0 "${OPCACHE_ARGS[@]}" "$@" \
    </dev/null >"$BASE/php-fpm.out" 2>&1 &
  fpm_pid=$!
  wait_port "$FPORT" 20 "$fpm_pid" || { echo "bench/fpm.sh: php-fpm did not start: $*" >&2; tail "$BASE/php-fpm.out" >&2; exit 1; }
  local body
  for _ in $(seq 50); do
    body=$(curl_get "http://127.0.0.1:$WPORT/none.php") && [[ $body == ok ]] && break
    sleep 0.1
  done
  [[ $body == ok ]] || { echo "bench/fpm.sh: php-fpm does not answer ($body): $*" >&2; tail "$BASE/php-fpm.log" >&2; exit 1; }
  local want=off; [[ $OPCACHE == 1 ]] && want=on
  body=$(curl_get "http://127.0.0.1:$WPORT/opcache.php")
  [[ $body == "$want" ]] && return 0
  echo "bench/fpm.sh: OPcache is '$body', OPCACHE=$OPCACHE asks for $want: $*" >&2; exit 1
}
curl_get() { php -n -r 'echo @file_get_contents($argv[1]);' "$1"; }

cat > "$BASE/existing.lua" <<'EOF'
-- A random one of 1000 session cookies per request (the "existing sessions" workload).
math.randomseed(os.time())
request = function()
  return wrk.format(nil, nil, { ["Cookie"] = "PHPSESSID=benchpool" .. string.format("%022d", math.random(1, 1000)) })
end
EOF

# wrk's Requests/sec and 99th percentile latency (in ms) of one run.
wrk_run() { # path secs [lua]
  local out rps p99
  out=$(wrk -t2 -c"$CONNS" -d"${2}s" --latency ${3:+-s "$3"} "http://127.0.0.1:$WPORT/$1")
  if grep -qE "Non-2xx|Socket errors" <<<"$out"; then echo "bench/fpm.sh: errors in run: $out" >&2; exit 1; fi
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p99=$(awk '$1 == "99%" { v = $2; u = v; gsub(/[0-9.]/, "", u); gsub(/[a-z]/, "", v);
          if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.2f", v }' <<<"$out")
  echo "$rps $p99"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

SP=(-d "extension=$SO" -d session.save_handler=session_proxy)
PHPREDIS=(-d extension=igbinary -d extension=msgpack -d extension=redis -d redis.pconnect.echo_check_liveness=0
  -d session.save_handler=redis -d "session.save_path=\"tcp://127.0.0.1:$RPORT?persistent=1\"")
MEMC=(-d extension=igbinary -d extension=msgpack -d extension=memcached -d session.save_handler=memcached
  -d "session.save_path=127.0.0.1:$MPORT" -d memcached.sess_persistent=1 -d memcached.sess_binary_protocol=1)
# name|path|INI arguments for php-fpm (one word per argument, separated by tabs)
configs=(
  "nginx + fpm, no session (ceiling)|none.php|"
  "PHP files (ext4)|session.php|-d	session.save_handler=files	-d	session.save_path=$BASE/php-files"
  "PHP files (tmpfs)|session.php|-d	session.save_handler=files	-d	session.save_path=$SHM/php-files"
  "PHP session module, nothing stored (floor)|session.php|-d	auto_prepend_file=$BASE/docroot/noop_handler.php"
  "phpredis, unlocked (persistent, no echo check)|session.php|$(printf '%s\t' "${PHPREDIS[@]}")-d	redis.session.locking_enabled=0"
  "phpredis, locking on|session.php|$(printf '%s\t' "${PHPREDIS[@]}")-d	redis.session.locking_enabled=1"
  "php-memcached persistent, locking on|session.php|$(printf '%s\t' "${MEMC[@]}")-d	memcached.sess_locking=1"
  "session_proxy SQLite (zero-config default)|session.php|$(printf '%s\t' "${SP[@]}")-d	session.save_path="
  "session_proxy SQLite, locking off|session.php|$(printf '%s\t' "${SP[@]}")-d	session.save_path=	-d	session_proxy.locking=0"
  "session_proxy files|session.php|$(printf '%s\t' "${SP[@]}")-d	session.save_path=files://$BASE/sp-files"
  "session_proxy Redis, default|session.php|$(printf '%s\t' "${SP[@]}")-d	session.save_path=redis://127.0.0.1:$RPORT"
  "session_proxy Redis, busy_poll=50|session.php|$(printf '%s\t' "${SP[@]}")-d	session.save_path=\"redis://127.0.0.1:$RPORT?busy_poll=50\""
  "session_proxy Redis, locking off|session.php|$(printf '%s\t' "${SP[@]}")-d	session.save_path=redis://127.0.0.1:$RPORT	-d	session_proxy.locking=0"
  "session_proxy Memcached, default|session.php|$(printf '%s\t' "${SP[@]}")-d	session.save_path=memcached://127.0.0.1:$MPORT"
  "session_proxy Memcached, busy_poll=50|session.php|$(printf '%s\t' "${SP[@]}")-d	session.save_path=\"memcached://127.0.0.1:$MPORT?busy_poll=50\""
)
config_args() { IFS=$'\t' read -r -a args <<<"$1"; }

fs=$(df -T "$BASE" | awk 'NR==2 {print $2}')
echo "php-fpm: $WORKERS workers (pm=static, OPcache $([[ $OPCACHE == 1 ]] && echo on || echo off)), wrk: 2 threads, $CONNS connections, ${DURATION}s per run, median of $REPEAT runs"
echo "storage: $BASE on $fs; $(nproc) CPUs, nothing pinned; $(date -u +%FT%TZ)"
printf 'part\tname\tworkload\treq_s\tp99_ms\n' > "$OUT.tsv"
echo
echo "| handler | new sessions req/s | p99 ms | existing sessions req/s | p99 ms |"
echo "|---|---:|---:|---:|---:|"
for c in "${configs[@]}"; do
  IFS='|' read -r name path argstr <<<"$c"
  [[ $name =~ $ONLY ]] || continue
  config_args "$argstr"
  start_fpm "${args[@]}"
  row="| $name |"
  for workload in new existing; do
    lua=""; [[ $workload == existing ]] && lua="$BASE/existing.lua"
    wrk_run "$path" 2 "$lua" >/dev/null # warm-up (creates the 1000 sessions of "existing")
    rs=(); ps=()
    for _ in $(seq "$REPEAT"); do read -r r p < <(wrk_run "$path" "$DURATION" "$lua"); rs+=("$r"); ps+=("$p"); done
    r=$(printf '%s\n' "${rs[@]}" | median); p=$(printf '%s\n' "${ps[@]}" | median)
    printf 'fpm\t%s\t%s\t%s\t%s\n' "$name" "$workload" "$r" "$p" >> "$OUT.tsv"
    row="$row $r | $p |"
  done
  echo "$row"
done

if [[ $HANDOVER == 1 ]]; then
  echo
  echo "Lock hand-over: 16 concurrent requests on one cookie ($WORKERS workers), wall ms (median of $REPEAT); ideal 16 x work"
  echo "| handler | 16 x 5 ms (ideal 80) | ratio | 16 x 50 ms (ideal 800) | ratio |"
  echo "|---|---:|---:|---:|---:|"
  for c in "${configs[@]}"; do
    IFS='|' read -r name path argstr <<<"$c"
    [[ $name =~ $ONLY && $name =~ ^(PHP\ files|session_proxy\ (SQLite\ \(|files|Redis,\ default|Memcached,\ default)) ]] || continue
    config_args "$argstr"
    start_fpm "${args[@]}"
    row="| $name |"
    for work in 5 50; do
      ws=(); for _ in $(seq "$REPEAT"); do ws+=("$(python3 bench/handover.py "http://127.0.0.1:$WPORT/session.php" 16 "$work")"); done
      w=$(printf '%s\n' "${ws[@]}" | median)
      printf 'handover\t%s\t%sms\t%s\t\n' "$name" "$work" "$w" >> "$OUT.tsv"
      row="$row $w | $(awk -v a="$w" -v b=$((16 * work)) 'BEGIN {printf "%.2fx", a/b}') |"
    done
    echo "$row"
  done
fi

if [[ $GROWTH == 1 ]]; then
  echo
  echo "Growth: CLI cycles/s (bench/cycle.php, 5000 cycles over 100 sessions, median of $REPEAT) with other sessions stored"
  echo "| engine | small store | cycles/s | large store | cycles/s | cost growth |"
  echo "|---|---|---:|---|---:|---:|"
  grow() { # name dsn small large
    local s l d
    for n in "$3" "$4"; do
      d="$BASE/grow-$n"; rm -rf "$d"; mkdir -p "$d"
      local dsn=${2//@DIR@/$d}
      php -n "${SP[@]}" -d "session.save_path=$dsn" -d session_proxy.locking=0 bench/fill.php "$n" fill
      local cs=(); for _ in $(seq "$REPEAT"); do cs+=("$(php -n "${SP[@]}" -d "session.save_path=$dsn" bench/cycle.php 5000 200)"); done
      [[ $n == "$3" ]] && s=$(printf '%s\n' "${cs[@]}" | median) || l=$(printf '%s\n' "${cs[@]}" | median)
      rm -rf "$d"
    done
    printf 'growth\t%s\t%s-%s\t%s\t%s\n' "$1" "$3" "$4" "$s" "$l" >> "$OUT.tsv"
    echo "| $1 | $3 | $s | $4 | $l | $(awk -v a="$s" -v b="$l" 'BEGIN {printf "%.2fx", a/b}') |"
  }
  grow "session_proxy SQLite" "sqlite://@DIR@/s.sqlite" 1000 1000000
  grow "session_proxy files" "files://@DIR@" 1000 100000
fi
echo
echo "results: $OUT.tsv (chart: /usr/bin/python3 bench/chart.py $OUT.tsv)"
