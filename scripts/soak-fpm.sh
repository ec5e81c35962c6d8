#!/usr/bin/env bash
# The php-fpm soak of `make soak`: SOAK_REQUESTS (default 100000) session cycles per run through
# nginx + php-fpm (scripts/services/web.sh) with locking on: the native handler on SQLite, files, Redis
# and Memcached (a private redis-server and memcached on free ports, scripts/private-servers.sh) and
# the class on SQLite. 8 clients share 64 sessions (two at a time on each, so the locks are contended);
# checks that no update is lost and that no worker's RSS grows by more than 1 MiB after warm-up
# (scripts/fpm_soak.py). SOAK_ENGINES picks runs (default "sqlite files redis memcached class-sqlite").
# Exit status non-zero on any error or lost update.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/private-servers.sh
REQUESTS=${SOAK_REQUESTS:-100000}
ENGINES=" ${SOAK_ENGINES:-sqlite files redis memcached class-sqlite} "
STATE=$(mktemp -d /tmp/sp-soak.XXXXXX)
DATA=$(mktemp -d "$(php -n -r 'echo sys_get_temp_dir();')/sp-soak-data.XXXXXX")
trap 'bash scripts/services/web.sh stop "$STATE" >/dev/null 2>&1; ps_stop "$STATE/servers"; rm -rf "$STATE" "$DATA"' EXIT
if [[ $ENGINES == *" redis "* || $ENGINES == *" memcached "* ]]; then
  ps_start "$STATE/servers" || exit 1
fi
bash scripts/services/web.sh start "$STATE" || exit 1
set -a; . "$STATE/env"; set +a
mkdir -p "$DATA/files"
status=0
runs=()
[[ $ENGINES == *" sqlite "* ]] && runs+=("native sqlite://$DATA/soak.sqlite")
[[ $ENGINES == *" files "* ]] && runs+=("native files://$DATA/files")
[[ $ENGINES == *" redis "* ]] && runs+=("native redis://127.0.0.1:${PS_REDIS_PORT:-0}?prefix=sp-soak:")
[[ $ENGINES == *" memcached "* ]] && runs+=("native memcached://127.0.0.1:${PS_MEMCACHED_PORT:-0}?prefix=sp-soak.")
[[ $ENGINES == *" class-sqlite "* ]] && runs+=("class sqlite://$DATA/soak-class.sqlite")
for run in "${runs[@]}"; do
  read -r handler dsn <<< "$run"
  python3 scripts/fpm_soak.py --url "$SP_WEB_URL" --handler "$handler" --dsn "$dsn" --requests "$REQUESTS" \
    --clients 8 --sessions 64 --fpm-config "$STATE/web/php-fpm.conf" || status=1
done
exit $status
