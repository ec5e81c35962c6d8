#!/usr/bin/env bash
# A test MariaDB server for the mysql engine (see README.md here): 127.0.0.1:13306 (SP_MYSQL_PORT moves
# it) and a unix socket in the state dir, with TLS (a test CA made here by openssl, server certificate
# for 127.0.0.1 and localhost). Data directory under STATE_DIR/mariadb, made by mariadb-install-db;
# mariadbd runs as the "mysql" user (Debian's package makes it) when started as root, else as the
# caller. User sp (password sp-secret) owns database sp; root logs in over the socket only (unix_socket
# auth) or over TCP without a password from 127.0.0.1 (the tests' admin connection).
# Writes SP_MYSQL_PORT, SP_MYSQL_SOCKET, SP_MYSQL_USER, SP_MYSQL_PASSWORD, SP_MYSQL_DB, SP_MYSQL_CA,
# SP_MYSQL_DATA, SP_MYSQL_RUNAS to STATE_DIR/env.
# A build tree that the mysql user cannot enter (a clone inside root's 0700 home, as CI's) gets its data
# directory in a private directory of the system temp dir instead, linked from STATE_DIR/mariadb (as
# pgsql.sh does); stop removes it. Every path given to the server is the real one.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cmd=$1 state=$2
link=$state/mariadb
dir=$(readlink -f "$link" 2>/dev/null || echo "$link")
PORT=${SP_MYSQL_PORT:-13306}
RUNAS=$(id -un)
if [[ $(id -u) -eq 0 ]]; then RUNAS=mysql; id -u mysql >/dev/null 2>&1 || RUNAS=root; fi

stop() {
  # A clean shutdown with flushes off takes well under a second; kill_pid kills it after 5 s.
  [[ -f $dir/mariadbd.pid ]] && kill_pid "$(cat "$dir/mariadbd.pid" 2>/dev/null)" || true
  return 0
}

case $cmd in
start)
  command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || { echo "mariadb-server not installed (scripts/deps.sh)" >&2; exit 1; }
  MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  stop
  [[ -L $link ]] && rm -rf "$dir"
  rm -rf "$link"; mkdir -p "$state"
  dir=$link
  if [[ $(id -u) -eq 0 && $RUNAS != root ]] && ! runuser -u "$RUNAS" -- test -x "$state" 2>/dev/null; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/sp-mariadb.XXXXXX")
    ln -s "$dir" "$link"
  fi
  dir=$(readlink -f "$dir")
  mkdir -p "$dir/tls"
  tls=$dir/tls
  test_certs "$tls" "session_proxy mariadb test CA" || exit 1
  cat > "$dir/my.cnf" <<EOF
[mariadbd]
datadir = $dir/data
socket = $dir/mysqld.sock
pid-file = $dir/mariadbd.pid
log-error = $dir/error.log
bind-address = 127.0.0.1
port = $PORT
user = $RUNAS
skip-name-resolve
innodb_flush_log_at_trx_commit = 0
innodb_doublewrite = 0
sync_binlog = 0
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
max_connections = 300
max_allowed_packet = 64M
ssl_ca = $tls/ca.pem
ssl_cert = $tls/server.pem
ssl_key = $tls/server.key
EOF
  [[ $(id -u) -eq 0 ]] && chown -R "$RUNAS" "$dir"
  chmod 755 "$dir" "$tls"; chmod 644 "$tls/ca.pem" "$dir/my.cnf"
  mariadb-install-db --defaults-file="$dir/my.cnf" --auth-root-authentication-method=socket --skip-test-db \
    > "$dir/install.log" 2>&1 || { echo "mariadb-install-db failed"; tail -5 "$dir/install.log"; exit 1; }
  # Detached; its stdout/stderr go to the log, so the caller's pipes are not held open.
  setsid "$MARIADBD" --defaults-file="$dir/my.cnf" > "$dir/stdout.log" 2>&1 < /dev/null &
  ok=
  for _ in $(seq 600); do # at most 30 s
    if mariadb-admin --no-defaults -S "$dir/mysqld.sock" -u root ping >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.05
  done
  [[ -n $ok ]] || { echo "mariadbd on port $PORT did not start"; tail -5 "$dir/error.log" 2>/dev/null; stop; exit 1; }
  mariadb --no-defaults -S "$dir/mysqld.sock" -u root -e "
    CREATE DATABASE sp;
    CREATE USER 'sp'@'127.0.0.1' IDENTIFIED BY 'sp-secret';
    CREATE USER 'sp'@'localhost' IDENTIFIED BY 'sp-secret';
    GRANT ALL ON sp.* TO 'sp'@'127.0.0.1';
    GRANT ALL ON sp.* TO 'sp'@'localhost';
    CREATE USER 'root'@'127.0.0.1';
    GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
  " || { echo "could not create the test database and user"; stop; exit 1; }
  {
    echo "SP_MYSQL_PORT=$PORT"
    echo "SP_MYSQL_SOCKET=$dir/mysqld.sock"
    echo "SP_MYSQL_USER=sp"
    echo "SP_MYSQL_PASSWORD=sp-secret"
    echo "SP_MYSQL_DB=sp"
    echo "SP_MYSQL_CA=$tls/ca.pem"
    echo "SP_MYSQL_DATA=$dir"
    echo "SP_MYSQL_RUNAS=$RUNAS"
  } >> "$state/env"
  ;;
stop)
  stop
  if [[ -L $link ]]; then rm -rf "$dir"; rm -f "$link"; fi
  ;;
*) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
