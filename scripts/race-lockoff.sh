#!/usr/bin/env bash
# Measures lost updates with locking off (README, Reliability): RUNS (default 5) times per engine, N
# (default 200) parallel requests of one session through nginx + php-fpm (scripts/services/web.sh),
# SQLite, files, and a private redis-server and memcached (scripts/private-servers.sh).
#   RUNS=5 N=200 bash scripts/race-lockoff.sh
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/private-servers.sh
STATE=$(mktemp -d /tmp/sp-lockoff.XXXXXX)
trap 'bash scripts/services/web.sh stop "$STATE" >/dev/null 2>&1; ps_stop "$STATE/servers"; rm -rf "$STATE"' EXIT
ps_start "$STATE/servers" || exit 1
bash scripts/services/web.sh start "$STATE" || exit 1
set -a; . "$STATE/env"; set +a
SESSION_PROXY_SO="$PWD/target/release/libsession_proxy.so" php -n scripts/race_lockoff.php "${RUNS:-5}" "${N:-200}"
