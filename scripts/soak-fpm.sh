#!/usr/bin/env bash
# The php-fpm soak of `make soak`: SOAK_REQUESTS (default 100000) session cycles per engine through
# nginx + php-fpm (scripts/services/web.sh), native handler on SQLite and files and the class on SQLite, with locking on; checks that no update is lost and reports
# each worker's RSS after warm-up and at the end. Exit status non-zero on any error or lost update.
set -uo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${SOAK_REQUESTS:-100000}
STATE=$(mktemp -d /tmp/sp-soak.XXXXXX)
DATA=$(mktemp -d "$(php -n -r 'echo sys_get_temp_dir();')/sp-soak-data.XXXXXX")
trap 'bash scripts/services/web.sh stop "$STATE" >/dev/null 2>&1; rm -rf "$STATE" "$DATA"' EXIT
bash scripts/services/web.sh start "$STATE" || exit 1
set -a; . "$STATE/env"; set +a
mkdir -p "$DATA/files"
status=0
for run in "native sqlite://$DATA/soak.sqlite" "native files://$DATA/files" "class sqlite://$DATA/soak-class.sqlite"; do
  read -r handler dsn <<< "$run"
  python3 scripts/fpm_soak.py --url "$SP_WEB_URL" --handler "$handler" --dsn "$dsn" --requests "$REQUESTS" \
    --clients 8 --sessions 64 --fpm-config "$STATE/web/php-fpm.conf" || status=1
done
exit $status
