# Sourced by the scripts that start and stop servers (scripts/services/web.sh,
# scripts/private-servers.sh): process and port helpers.

# Whether a process runs (an exited one waiting to be reaped by its new parent, a zombie, does not).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# Kills one process (by pid) and waits for it to go; SIGKILL after 5 s.
kill_pid() {
  local pid=$1 i
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do alive "$pid" || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null
  for ((i = 0; i < 40; i++)); do alive "$pid" || return 0; sleep 0.05; done
  echo "$(basename "$0"): process $pid did not exit" >&2
  return 1
}

# A TCP port on 127.0.0.1 nobody listens on: $1 if free, else one the kernel picks.
free_port() {
  local want=${1:-0}
  php -n -r '
    $want = (int) $argv[1];
    foreach ($want ? [$want, 0] : [0] as $p) {
        $s = @stream_socket_server("tcp://127.0.0.1:$p", $no, $err);
        if ($s) { $n = stream_socket_get_name($s, false); fclose($s); echo substr(strrchr($n, ":"), 1); exit(0); }
    }
    exit(1);' "$want"
}

# Waits until something accepts TCP connections on 127.0.0.1:$1 (at most $2 s); fails early if pid $3
# (when given) died.
wait_port() {
  local port=$1 secs=$2 pid=${3:-} i
  for ((i = 0; i < secs * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    [[ -z $pid ]] || alive "$pid" || return 1
    sleep 0.1
  done
  return 1
}

# A test CA and a server certificate it signed for 127.0.0.1 and localhost, in DIR (ca.pem, ca.key,
# server.pem, server.key; openssl's output in DIR/openssl.log): the TLS servers of pgsql.sh, mariadb.sh.
test_certs() { # DIR CA-COMMON-NAME
  local tls=$1
  {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 2 -subj "/CN=$2" &&
      openssl req -newkey rsa:2048 -nodes -keyout "$tls/server.key" -out "$tls/server.csr" -subj "/CN=127.0.0.1" &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$tls/ext.cnf" &&
      openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
        -out "$tls/server.pem" -days 2 -extfile "$tls/ext.cnf"
  } > "$tls/openssl.log" 2>&1 || { echo "openssl could not make the test certificates"; tail -5 "$tls/openssl.log"; return 1; }
  chmod 600 "$tls/server.key"
}
