#!/usr/bin/env bash
# The per-user index's cost (issue 13): session cycles/s with sessions not bound, bound once at login,
# bound by session_proxy.user_key, and set_user() on every request, on each engine, in one run (the
# modes interleaved run by run). Each figure is the median of $REPEAT runs, pinned to one CPU.
# Usage: bash bench/users.sh   (env: REPEAT=5 ITER=5000 BENCH_DIR=/tmp; Redis/Memcached from
# SP_REDIS_PORT / SP_MEMCACHED_PORT1, PostgreSQL from SP_PG_PORT etc., MySQL/MariaDB from SP_MYSQL_PORT etc., e.g. `set -a; . target/services/env; set +a`, skipped if unset)
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/libsession_proxy.so"
REPEAT=${REPEAT:-5}
ITER=${ITER:-5000}
BASE=$(mktemp -d "${BENCH_DIR:-/tmp}/sp-bench-users.XXXXXX")
trap 'rm -rf "$BASE"' EXIT
mkdir -p "$BASE/files"
PIN=""
command -v taskset >/dev/null && PIN="taskset -c 0"
MODES=(none login key every)

engines=("sqlite=sqlite://$BASE/u.sqlite" "files=files://$BASE/files")
[[ -n ${SP_REDIS_PORT:-} ]] && engines+=("redis=redis://127.0.0.1:$SP_REDIS_PORT?prefix=spbu$$:")
[[ -n ${SP_MEMCACHED_PORT1:-} ]] && engines+=("memcached=memcached://127.0.0.1:$SP_MEMCACHED_PORT1?prefix=spbu$$.")
[[ -n ${SP_PG_PORT:-} ]] && engines+=("pgsql=pgsql://$SP_PG_USER:$SP_PG_PASSWORD@127.0.0.1:$SP_PG_PORT/$SP_PG_DB?sslmode=disable&table=spbu$$")
[[ -n ${SP_MYSQL_PORT:-} ]] && engines+=("mysql=mysql://$SP_MYSQL_USER:$SP_MYSQL_PASSWORD@127.0.0.1:$SP_MYSQL_PORT/$SP_MYSQL_DB?sslmode=disable&table=spbu$$")

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

echo "session cycles/s (round trips per cycle), median of $REPEAT runs x $ITER cycles, 200 B, pinned: ${PIN:-no}"
printf '| engine | not bound | bound at login | user_key | set_user every request |\n|---|---|---|---|---|\n'
for e in "${engines[@]}"; do
  name=${e%%=*} dsn=${e#*=}
  declare -A out=() trips=()
  for _ in $(seq "$REPEAT"); do
    for m in "${MODES[@]}"; do
      read -r c t < <($PIN php -n -d extension="$SO" -d session.save_handler=session_proxy -d "session.save_path=\"$dsn\"" \
        bench/users.php "$ITER" "$m")
      out[$m]+="$c "
      trips[$m]=$t
    done
  done
  row="| $name"
  for m in "${MODES[@]}"; do
    row+=" | $(tr ' ' '\n' <<<"${out[$m]}" | grep . | median) (${trips[$m]})"
  done
  echo "$row |"
  unset out trips
done
