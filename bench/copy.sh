#!/usr/bin/env bash
# session-proxy copy: sessions/s between each pair of SQLite, files (on $BENCH_DIR: say which file
# system), Redis and Memcached on this machine; N sessions of ~200 bytes, each copied into a fresh
# target (no session present: every one is read, written, and aged or given its TTL). One run per
# pair (the copy of N sessions is itself the average). Also the peak RSS of each copy.
# With SP_PG_PORT etc. set (the env of scripts/services/pgsql.sh), PostgreSQL too (a table per copy);
# with SP_MYSQL_PORT etc. (scripts/services/mariadb.sh), MySQL/MariaDB too.
# Usage: bash bench/copy.sh   (env: N=20000 REDIS_PORT=6398 MC_PORT=21298 BENCH_DIR=/tmp)
# RUNS=3: each cell copied that many times (each into a fresh target), the median rate shown.
# BINS="old=/path/to/session-proxy new=target/release/session-proxy": the same cells for each
# binary in turn, in the same sitting (a before/after comparison), one table per binary.
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/libsession_proxy.so"
BIN="$PWD/target/release/session-proxy"
N=${N:-20000}
RPORT=${REDIS_PORT:-6398}
MPORT=${MC_PORT:-21298}
BASE=$(mktemp -d "${BENCH_DIR:-/tmp}/sp-cbench.XXXXXX")
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize yes \
  --dir "$BASE" --pidfile "$BASE/r.pid" --logfile "$BASE/r.log" >/dev/null
memcached -l 127.0.0.1 -p "$MPORT" -U 0 -m 512 -d -P "$BASE/m.pid" $( [[ $(id -u) == 0 ]] && echo -u root )
cleanup() {
  redis-cli -h 127.0.0.1 -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
  [[ -f $BASE/m.pid ]] && kill "$(cat "$BASE/m.pid")" 2>/dev/null || true
  rm -rf "$BASE"
}
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

dsn() { # kind n
  case $1 in
    sqlite) echo "sqlite://$BASE/s$2.sqlite" ;;
    files) mkdir -p "$BASE/f$2"; echo "files://$BASE/f$2" ;;
    redis) echo "redis://127.0.0.1:$RPORT/0?prefix=b$2:" ;;
    memcached) echo "memcached://127.0.0.1:$MPORT?prefix=b$2." ;;
    pgsql) echo "pgsql://$SP_PG_USER:$SP_PG_PASSWORD@127.0.0.1:$SP_PG_PORT/$SP_PG_DB?sslmode=disable&table=cbench_${PGTAG}_$2" ;;
    mysql) echo "mysql://$SP_MYSQL_USER:$SP_MYSQL_PASSWORD@127.0.0.1:$SP_MYSQL_PORT/$SP_MYSQL_DB?sslmode=disable&table=cbench_${PGTAG}_$2" ;;
  esac
}
KINDS="sqlite files redis memcached"
PGTAG=$(tr "A-Z" "a-z" <<<"${BASE##*.}" | tr -dc "a-z0-9")
[[ -n ${SP_PG_PORT:-} ]] && KINDS+=" pgsql"
[[ -n ${SP_MYSQL_PORT:-} ]] && KINDS+=" mysql"

# The sessions: written by PHP through the extension into SQLite, then copied once into each kind.
php -n -d extension="$SO" -r '
  $h = new SessionProxy\Handler($argv[1]);
  $h->open("", "PHPSESSID");
  for ($i = 0; $i < (int) $argv[2]; $i++) {
    $h->write("bench$i", "user|s:5:\"bench\";data|s:160:\"" . str_repeat("x", 160) . "\";n|i:$i;");
  }
  $h->close();
' "$(dsn sqlite 0)" "$N"
declare -A SRC=([sqlite]="$(dsn sqlite 0)")
for k in ${KINDS#sqlite }; do
  SRC[$k]=$(dsn "$k" 0)
  "$BIN" copy --quiet "${SRC[sqlite]}" "${SRC[$k]}"
done

RUNS=${RUNS:-1}
# PAIRS="sqlite:redis redis:memcached": only these cells (the others show ·); default every pair.
PAIRS=${PAIRS:-}
n=1
declare -A CELL
# Cell from -> to for binary $2 (label $1): the median of RUNS copies, with the peak RSS.
cell() {
  local label=$1 bin=$2 from=$3 to=$4 r rates=() out rate copied rss=0 med
  for ((r = 0; r < RUNS; r++)); do
    n=$((n + 1))
    out=$(/usr/bin/time -f '%M' "$bin" copy --quiet --json "${SRC[$from]}" "$(dsn "$to" "$n")" 2>"$BASE/time")
    rate=$(sed -E 's/.*"sessions_per_second":([0-9.]+).*/\1/' <<<"$out")
    copied=$(sed -E 's/.*"copied":([0-9]+).*/\1/' <<<"$out")
    [[ $copied == "$N" ]] || { echo "copy $from -> $to copied $copied of $N" >&2; exit 1; }
    rates+=("${rate%.*}")
    (( $(tail -1 "$BASE/time") > rss )) && rss=$(tail -1 "$BASE/time")
    # The target is dropped again (a cell's runs would otherwise fill the servers' memory).
    case $to in
      redis) redis-cli -h 127.0.0.1 -p "$RPORT" --scan --pattern "b$n:*" | xargs -r -n 1000 redis-cli -h 127.0.0.1 -p "$RPORT" del >/dev/null ;;
      sqlite) rm -f "$BASE/s$n.sqlite"* ;;
      files) rm -rf "$BASE/f$n" ;;
    esac
  done
  med=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
  CELL[$label:$from:$to]="${med}/s ($rss KiB)"
}
BINS=${BINS:-"new=$BIN"}
# Cell by cell, every binary in turn (a before/after comparison sees the same load).
for from in $KINDS; do
  for to in $KINDS; do
    [[ $from != "$to" ]] || continue
    [[ -z $PAIRS || " $PAIRS " == *" $from:$to "* ]] || continue
    for b in $BINS; do cell "${b%%=*}" "${b#*=}" "$from" "$to"; done
  done
done
for b in $BINS; do
  echo "session-proxy copy (${b%%=*}: ${b#*=}), $N sessions of ~200 B into an empty target, median of $RUNS, $(nproc) CPUs, files on $(df -T "$BASE" | awk 'NR==2 {print $2}')"
  echo "| from \\ to | ${KINDS// / | } |"
  echo "|---$(printf '|---%.0s' $KINDS)|"
  for from in $KINDS; do
    row="| $from |"
    for to in $KINDS; do
      if [[ $from == "$to" ]]; then row+=" – |"; else row+=" ${CELL[${b%%=*}:$from:$to]:-·} |"; fi
    done
    echo "$row"
  done
done
