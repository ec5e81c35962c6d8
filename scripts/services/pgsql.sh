#!/usr/bin/env bash
# Test PostgreSQL servers for the pgsql engine (see README.md here): a primary on 127.0.0.1:15432 with
# TLS (a test CA made here by openssl, server certificate for 127.0.0.1 and localhost) and a streaming
# standby on 127.0.0.1:15433 (pg_basebackup -R), for the failover test. SP_PG_PORT moves the primary,
# the standby is the next port. Data directories under STATE_DIR/pgsql; initdb and postgres refuse
# root, so they run as the unprivileged "postgres" user (made by Debian's package; "nobody" otherwise).
# Role sp (password sp-secret) owns database sp; TCP logins need the password (scram-sha-256).
# Writes SP_PG_PORT, SP_PG_STANDBY_PORT, SP_PG_USER, SP_PG_PASSWORD, SP_PG_DB, SP_PG_CA,
# SP_PG_DATA, SP_PG_STANDBY_DATA, SP_PG_BIN, SP_PG_RUNAS to STATE_DIR/env.
# A build tree that the postgres user cannot enter (a clone inside root's 0700 home) gets its data
# directories in a private directory of the system temp dir instead, linked from STATE_DIR/pgsql;
# stop removes it. Every path given to the servers is the real one (the link's path is not theirs).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cmd=$1 state=$2
link=$state/pgsql
dir=$(readlink -f "$link" 2>/dev/null || echo "$link")
PORT=${SP_PG_PORT:-15432}
SPORT=$((PORT + 1))
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
RUNAS=postgres
id -u "$RUNAS" >/dev/null 2>&1 || RUNAS=nobody
as() { if [[ $(id -u) -eq 0 ]]; then runuser -u "$RUNAS" -- "$@"; else "$@"; fi; }

stop() {
  for d in "$dir/standby" "$dir/primary"; do
    [[ -f $d/postmaster.pid ]] && as "$BIN/pg_ctl" -D "$d" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
  done
  return 0
}

wait_ready() { # port
  for _ in $(seq 200); do
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$1" && return 0
    sleep 0.05
  done
  echo "postgres on port $1 did not start" >&2
  return 1
}

case $cmd in
start)
  [[ -n $BIN && -x $BIN/postgres ]] || { echo "postgresql not installed (scripts/deps.sh)" >&2; exit 1; }
  stop
  [[ -L $link ]] && rm -rf "$dir"
  rm -rf "$link"; mkdir -p "$state"
  dir=$link
  if [[ $(id -u) -eq 0 ]] && ! runuser -u "$RUNAS" -- test -x "$state" 2>/dev/null; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/sp-pgsql.XXXXXX")
    ln -s "$dir" "$link"
  fi
  mkdir -p "$dir/run" "$dir/tls"
  tls=$dir/tls
  test_certs "$tls" "session_proxy pgsql test CA" || exit 1
  chown -R "$RUNAS" "$dir"
  chmod 755 "$dir" "$tls"; chmod 644 "$tls/ca.pem"
  p=$dir/primary
  as "$BIN/initdb" -D "$p" -U postgres -A trust --no-sync -E UTF8 > "$dir/initdb.log" 2>&1 ||
    { echo "initdb failed"; tail -5 "$dir/initdb.log"; exit 1; }
  cat >> "$p/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$dir/run'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
wal_level = replica
max_wal_senders = 4
hot_standby = on
ssl = on
ssl_cert_file = '$tls/server.pem'
ssl_key_file = '$tls/server.key'
EOF
  cat > "$p/pg_hba.conf" <<EOF
local all all trust
host replication all 127.0.0.1/32 trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
EOF
  as "$BIN/pg_ctl" -D "$p" -l "$dir/primary.log" -w -t 30 start >/dev/null || { tail -5 "$dir/primary.log"; exit 1; }
  wait_ready "$PORT"
  as "$BIN/psql" -q -h "$dir/run" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE sp LOGIN PASSWORD 'sp-secret'" -c "CREATE DATABASE sp OWNER sp" >/dev/null
  s=$dir/standby
  as "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -D "$s" -R -X stream -c fast --no-sync > "$dir/basebackup.log" 2>&1 ||
    { echo "pg_basebackup failed"; tail -5 "$dir/basebackup.log"; stop; exit 1; }
  sed -i "s/^port = $PORT\$/port = $SPORT/" "$s/postgresql.conf"
  as "$BIN/pg_ctl" -D "$s" -l "$dir/standby.log" -w -t 30 start >/dev/null || { tail -5 "$dir/standby.log"; stop; exit 1; }
  wait_ready "$SPORT" || { stop; exit 1; }
  {
    echo "SP_PG_PORT=$PORT"
    echo "SP_PG_STANDBY_PORT=$SPORT"
    echo "SP_PG_USER=sp"
    echo "SP_PG_PASSWORD=sp-secret"
    echo "SP_PG_DB=sp"
    echo "SP_PG_CA=$tls/ca.pem"
    echo "SP_PG_DATA=$p"
    echo "SP_PG_STANDBY_DATA=$s"
    echo "SP_PG_BIN=$BIN"
    echo "SP_PG_RUNAS=$RUNAS"
  } >> "$state/env"
  ;;
stop)
  stop
  if [[ -L $link ]]; then rm -rf "$dir"; rm -f "$link"; fi
  ;;
*) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
