#!/usr/bin/env bash
# Session cycles/s against one PostgreSQL server (scripts/services/pgsql.sh on its own port, fsync off),
# same run: session_proxy's pgsql engine (lock=advisory, the default; and locking off) vs Symfony's
# PdoSessionHandler 5.4 (Debian's) through pdo_pgsql on one PDO connection for the run (its best case), in its default lock mode (LOCK_TRANSACTIONAL: a
# transaction with SELECT … FOR UPDATE held for the whole request) and LOCK_NONE. A cycle is
# bench/cycle.php's: session_start, change, session_write_close over 100 rotating sessions.
# Each figure is the median of $REPEAT runs.
# The same against one MariaDB of its own (scripts/services/mariadb.sh, flushes off): the mysql engine
# (GET_LOCK, the default; locking off) vs PdoSessionHandler through pdo_mysql (LOCK_TRANSACTIONAL, LOCK_NONE).
# LINK_US=N puts each server behind bench/delay_proxy.py, which adds N µs to every round trip (N/2
# each way): the database on another host, as a shared SQL server is; 0 (the default) connects
# directly. Usage: bash bench/sql.sh   (env: REPEAT=5 ITER=5000 PORT=15482 MYPORT=13386
# ENGINES="pgsql mysql" LINK_US=0 SO=…)
set -euo pipefail
cd "$(dirname "$0")/.."
SO=${SO:-$PWD/target/release/libsession_proxy.so}  # another build: SO=/path/to/libsession_proxy.so
REPEAT=${REPEAT:-5}
ITER=${ITER:-5000}
PORT=${PORT:-15482}
MYPORT=${MYPORT:-13386}
ENGINES=${ENGINES:-pgsql mysql}
want() { [[ " $ENGINES " == *" $1 "* ]]; }
BASE=$(mktemp -d "${BENCH_DIR:-/tmp}/sp-sqlbench.XXXXXX")
chmod 755 "$BASE"
PROXIES=()
cleanup() {
  for p in "${PROXIES[@]}"; do kill "$p" 2>/dev/null; done
  bash scripts/services/pgsql.sh stop "$BASE" >/dev/null 2>&1
  bash scripts/services/mariadb.sh stop "$BASE" >/dev/null 2>&1
  rm -rf "$BASE"
}
trap cleanup EXIT
: > "$BASE/env"
if want pgsql; then SP_PG_PORT=$PORT bash scripts/services/pgsql.sh start "$BASE" >/dev/null; fi
if want mysql; then SP_MYSQL_PORT=$MYPORT bash scripts/services/mariadb.sh start "$BASE" >/dev/null; fi
set -a; . "$BASE/env"; set +a
LINK_US=${LINK_US:-0}
CPORT=$PORT
CMYPORT=$MYPORT
delayed() { # target-port: starts a delay proxy in front of it; its port in $DELAYED
  DELAYED=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 bench/delay_proxy.py "$DELAYED" "$1" "$(awk -v u="$LINK_US" 'BEGIN {print u / 2}')" > "$BASE/proxy-$DELAYED.out" 2>&1 &
  PROXIES+=($!)
  for _ in $(seq 100); do grep -q ready "$BASE/proxy-$DELAYED.out" 2>/dev/null && return; sleep 0.05; done
  echo "the delay proxy did not start" >&2; exit 1
}
if [[ $LINK_US != 0 ]]; then
  if want pgsql; then delayed "$PORT"; CPORT=$DELAYED; fi
  if want mysql; then delayed "$MYPORT"; CMYPORT=$DELAYED; fi
fi
where="server on the same host"
if [[ $LINK_US != 0 ]]; then
  where="server behind bench/delay_proxy.py, $LINK_US µs of delay per round trip"
  echo "The link: $(python3 bench/delay_proxy.py --rtt "$(awk -v u="$LINK_US" 'BEGIN {print u / 2}')")"
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
rep() { local out=(); for _ in $(seq "$REPEAT"); do out+=("$("$@")"); done; printf '%s\n' "${out[@]}" | median; }

sp() { # bytes locking
  php -n -d extension="$SO" -d session.save_handler=session_proxy \
    -d "session.save_path=\"pgsql://$SP_PG_USER:$SP_PG_PASSWORD@127.0.0.1:$CPORT/$SP_PG_DB?table=sp_bench&sslmode=disable\"" \
    -d session_proxy.locking="$2" bench/cycle.php "$ITER" "$1"
}
symfony() { # bytes lock_mode
  php -n -d extension=pdo -d extension=pdo_pgsql bench/sql_symfony.php "$ITER" "$1" \
    "pgsql:host=127.0.0.1;port=$CPORT;dbname=$SP_PG_DB" "$SP_PG_USER" "$SP_PG_PASSWORD" "$2" "sf_bench_$2"
}

r() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a/b}'; }
rows() { # session_proxy-function symfony-function: the table's rows, one per payload
  local s t s0 n bytes
  for bytes in 200 4096; do
    s=$(rep "$1" "$bytes" 1); t=$(rep "$2" "$bytes" transactional)
    s0=$(rep "$1" "$bytes" 0); n=$(rep "$2" "$bytes" none)
    echo "| $bytes B | $s | $t | $(r "$s" "$t") | $s0 | $n | $(r "$s0" "$n") |"
  done
}
if want pgsql; then
echo "PostgreSQL $("$SP_PG_BIN/postgres" --version | awk '{print $3}') session cycles/s, median of $REPEAT runs x $ITER cycles (one PHP process, $where)"
echo "| payload | session_proxy lock=advisory | PdoSessionHandler LOCK_TRANSACTIONAL (its default) | ratio | session_proxy locking off | PdoSessionHandler LOCK_NONE | ratio |"
echo "|---|---|---|---|---|---|---|"
rows sp symfony
fi

mysp() { # bytes locking
  php -n -d extension="$SO" -d session.save_handler=session_proxy \
    -d "session.save_path=\"mysql://$SP_MYSQL_USER:$SP_MYSQL_PASSWORD@127.0.0.1:$CMYPORT/$SP_MYSQL_DB?table=sp_bench&sslmode=disable\"" \
    -d session_proxy.locking="$2" bench/cycle.php "$ITER" "$1"
}
mysymfony() { # bytes lock_mode
  php -n -d extension=pdo -d extension=mysqlnd -d extension=pdo_mysql bench/sql_symfony.php "$ITER" "$1" \
    "mysql:host=127.0.0.1;port=$CMYPORT;dbname=$SP_MYSQL_DB" "$SP_MYSQL_USER" "$SP_MYSQL_PASSWORD" "$2" "sf_bench_$2"
}
if want mysql; then
echo "MariaDB $(mariadbd --version | awk '{print $3}') session cycles/s, median of $REPEAT runs x $ITER cycles (one PHP process, $where)"
echo "| payload | session_proxy lock=advisory (GET_LOCK) | PdoSessionHandler LOCK_TRANSACTIONAL (its default) | ratio | session_proxy locking off | PdoSessionHandler LOCK_NONE | ratio |"
echo "|---|---|---|---|---|---|---|"
rows mysp mysymfony
fi
