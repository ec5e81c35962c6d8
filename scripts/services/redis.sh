#!/usr/bin/env bash
# Test servers for the Redis engine (see README.md here): two standalone redis-servers on 127.0.0.1
# (the second one for phpredis' multi-server save_path lists), the first also on a unix socket.
# A Redis Cluster of 3 masters + 3 replicas on 127.0.0.1:7391-7396 (redis-cli --cluster create).
# A Sentinel setup: master 127.0.0.1:6393, its replica :6394, one Sentinel on :26391 (master "spmaster").
# A TLS server on 127.0.0.1:6395 with a test CA made here by openssl (certificate for IP 127.0.0.1).
# A TLS-only Redis Cluster of 3 masters on 127.0.0.1:7397-7399 (cluster bus over TLS too).
# A TLS-only Sentinel setup with passwords: master 127.0.0.1:6396 (requirepass), one Sentinel on :26392
# (requirepass of its own, master "sptls").
# Usage: redis.sh start|stop STATE_DIR.
# Env written: SP_REDIS_PORT, SP_REDIS_PORT2, SP_REDIS_SOCKET, SP_REDIS_CLUSTER (host:port,… seeds),
# SP_REDIS_SENTINEL (host:port), SP_REDIS_SENTINEL_MASTER, SP_REDIS_TLS_PORT, SP_REDIS_TLS_CA (PEM path),
# SP_REDIS_TLS_CLUSTER (host:port,… seeds), SP_REDIS_TLS_SENTINEL (host:port), SP_REDIS_TLS_SENTINEL_MASTER,
# SP_REDIS_TLS_SENTINEL_PASSWORD (the Sentinel's), SP_REDIS_TLS_MASTER_PASSWORD (the master's),
# SP_REDIS_TLS_SENTINEL_ACL (user:password of an ACL user of that Sentinel allowed only AUTH, PING and
# SENTINEL get-master-addr-by-name).
set -uo pipefail
action=${1:?start|stop}
state=${2:?state dir}
dir="$state/redis"
PORT=${SP_REDIS_PORT_BASE:-6391}
PORTS=("$PORT" "$((PORT + 1))")
CPORT=${SP_REDIS_CLUSTER_BASE:-7391}
CPORTS=($(seq "$CPORT" $((CPORT + 5))))
MPORT=$((PORT + 2)); RPORT=$((PORT + 3)); TPORT=$((PORT + 4)); SPORT=${SP_REDIS_SENTINEL_PORT:-26391}
TCPORTS=($(seq $((CPORT + 6)) $((CPORT + 8))))
TMPORT=$((PORT + 5)); TSPORT=$((SPORT + 1))
TMASTER_PW=sp-master-secret; TSENTINEL_PW=sp-sentinel-secret; TSENTINEL_ACL=spwatch:sp-watch-secret

stop() {
  for f in "$dir"/*.pid; do
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    rm -f "$f"
  done
  return 0
}

tls_args() { # the server side of TLS with the test CA
  echo --tls-cert-file "$dir/tls/server.pem" --tls-key-file "$dir/tls/server.key" \
    --tls-ca-cert-file "$dir/tls/ca.pem" --tls-auth-clients no
}

rcli() { # plain|tls [redis-cli args...]: redis-cli, over TLS with the test CA for tls
  local kind=$1; shift
  if [[ $kind == tls ]]; then redis-cli --tls --cacert "$dir/tls/ca.pem" "$@"; else redis-cli "$@"; fi
}

start_one() { # plain|tls port [extra args...]: a redis-server (TLS-only for tls), waited for; env PW: its password
  local kind=$1 port=$2; shift 2
  local listen=(--port "$port")
  [[ $kind == tls ]] && listen=(--port 0 --tls-port "$port" $(tls_args))
  redis-server --bind 127.0.0.1 "${listen[@]}" --save '' --appendonly no --daemonize yes \
    --dir "$dir" --pidfile "$dir/$port.pid" --logfile "$dir/$port.log" "$@" >/dev/null ||
    { echo "$kind redis-server on 127.0.0.1:$port did not start"; return 1; }
  for _ in $(seq 100); do
    rcli "$kind" -h 127.0.0.1 -p "$port" --no-auth-warning ${PW:+-a "$PW"} ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "$kind redis-server on 127.0.0.1:$port does not answer; log: $dir/$port.log"; tail -5 "$dir/$port.log"
  return 1
}

create_cluster() { # plain|tls replicas port...: redis-cli --cluster create, then waits for cluster_state:ok
  local kind=$1 replicas=$2 ok p; shift 2
  rcli "$kind" --cluster create $(printf '127.0.0.1:%s ' "$@") --cluster-replicas "$replicas" --cluster-yes \
    > "$dir/cluster-create-$kind.log" 2>&1 ||
    { echo "redis-cli --cluster create ($kind) failed:"; tail -5 "$dir/cluster-create-$kind.log"; return 1; }
  for _ in $(seq 200); do
    ok=1
    for p in "$@"; do
      rcli "$kind" -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q "cluster_state:ok" || { ok=""; break; }
    done
    [[ -n $ok ]] && return 0
    sleep 0.05
  done
  echo "the $kind test cluster did not reach cluster_state:ok"
  return 1
}

case $action in
  start)
    command -v redis-server >/dev/null || { echo "redis-server is not installed (scripts/deps.sh)"; exit 1; }
    mkdir -p "$dir"; stop
    start_one plain "${PORTS[0]}" --unixsocket "$dir/redis.sock" --unixsocketperm 700 || { stop; exit 1; }
    start_one plain "${PORTS[1]}" || { stop; exit 1; }
    for p in "${CPORTS[@]}"; do
      mkdir -p "$dir/cluster-$p"
      start_one plain "$p" --cluster-enabled yes --cluster-config-file "$dir/cluster-$p/nodes.conf" \
        --cluster-node-timeout 2000 || { stop; exit 1; }
    done
    create_cluster plain 1 "${CPORTS[@]}" || { stop; exit 1; }

    # TLS: a throw-away CA and a server certificate for 127.0.0.1.
    tls="$dir/tls"; mkdir -p "$tls"
    {
      openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 2 -subj "/CN=session_proxy test CA" &&
      openssl req -newkey rsa:2048 -nodes -keyout "$tls/server.key" -out "$tls/server.csr" -subj "/CN=127.0.0.1" &&
      printf 'subjectAltName=IP:127.0.0.1\n' > "$tls/san.ext" &&
      openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
        -out "$tls/server.pem" -days 2 -extfile "$tls/san.ext"
    } > "$tls/openssl.log" 2>&1 || { echo "openssl could not make the test certificates"; tail -5 "$tls/openssl.log"; stop; exit 1; }
    start_one tls "$TPORT" || { stop; exit 1; }

    # TLS cluster: 3 masters, no replicas (fast to start), cluster bus over TLS too.
    for p in "${TCPORTS[@]}"; do
      mkdir -p "$dir/cluster-$p"
      start_one tls "$p" --cluster-enabled yes --cluster-config-file "$dir/cluster-$p/nodes.conf" \
        --cluster-node-timeout 2000 --tls-cluster yes --tls-replication yes || { stop; exit 1; }
    done
    create_cluster tls 0 "${TCPORTS[@]}" || { stop; exit 1; }

    # TLS Sentinel with passwords: the master and the Sentinel each have their own.
    PW=$TMASTER_PW start_one tls "$TMPORT" --requirepass "$TMASTER_PW" || { stop; exit 1; }
    cat > "$dir/sentinel-tls.conf" <<CONF
bind 127.0.0.1
port 0
tls-port $TSPORT
tls-cert-file $tls/server.pem
tls-key-file $tls/server.key
tls-ca-cert-file $tls/ca.pem
tls-auth-clients no
tls-replication yes
requirepass $TSENTINEL_PW
user ${TSENTINEL_ACL%%:*} on >${TSENTINEL_ACL#*:} -@all +auth +ping +sentinel|get-master-addr-by-name
daemonize yes
pidfile $dir/$TSPORT.pid
logfile $dir/$TSPORT.log
dir $dir
sentinel monitor sptls 127.0.0.1 $TMPORT 1
sentinel auth-pass sptls $TMASTER_PW
sentinel down-after-milliseconds sptls 5000
CONF
    redis-server "$dir/sentinel-tls.conf" --sentinel >/dev/null || { echo "the TLS redis-sentinel did not start"; stop; exit 1; }
    ok=""
    for _ in $(seq 200); do
      redis-cli --tls --cacert "$tls/ca.pem" -h 127.0.0.1 -p "$TSPORT" --no-auth-warning -a "$TSENTINEL_PW" \
        sentinel get-master-addr-by-name sptls 2>/dev/null | grep -qx "$TMPORT" && { ok=1; break; }
      sleep 0.05
    done
    [[ -n $ok ]] || { echo "the TLS Sentinel does not name its master; log: $dir/$TSPORT.log"; tail -5 "$dir/$TSPORT.log"; stop; exit 1; }

    start_one plain "$MPORT" || { stop; exit 1; }
    start_one plain "$RPORT" --replicaof 127.0.0.1 "$MPORT" || { stop; exit 1; }
    cat > "$dir/sentinel.conf" <<CONF
bind 127.0.0.1
port $SPORT
daemonize yes
pidfile $dir/$SPORT.pid
logfile $dir/$SPORT.log
dir $dir
sentinel monitor spmaster 127.0.0.1 $MPORT 1
sentinel down-after-milliseconds spmaster 5000
sentinel failover-timeout spmaster 3000
CONF
    redis-server "$dir/sentinel.conf" --sentinel >/dev/null || { echo "redis-sentinel did not start"; stop; exit 1; }
    ok=""
    for _ in $(seq 300); do
      if redis-cli -h 127.0.0.1 -p "$SPORT" sentinel replicas spmaster 2>/dev/null | grep -qx "127.0.0.1" &&
         redis-cli -h 127.0.0.1 -p "$RPORT" info replication 2>/dev/null | grep -q "master_link_status:up"; then
        ok=1; break
      fi
      sleep 0.05
    done
    [[ -n $ok ]] || { echo "the Sentinel does not see the replica; log: $dir/$SPORT.log"; stop; exit 1; }
    {
      echo "SP_REDIS_PORT=${PORTS[0]}"
      echo "SP_REDIS_PORT2=${PORTS[1]}"
      echo "SP_REDIS_SOCKET=$dir/redis.sock"
      echo "SP_REDIS_TLS_PORT=$TPORT"
      echo "SP_REDIS_TLS_CA=$tls/ca.pem"
      echo "SP_REDIS_SENTINEL=127.0.0.1:$SPORT"
      echo "SP_REDIS_SENTINEL_MASTER=spmaster"
      echo "SP_REDIS_CLUSTER=$(printf '127.0.0.1:%s,' "${CPORTS[@]:0:3}" | sed 's/,$//')"
      echo "SP_REDIS_TLS_CLUSTER=$(printf '127.0.0.1:%s,' "${TCPORTS[@]}" | sed 's/,$//')"
      echo "SP_REDIS_TLS_SENTINEL=127.0.0.1:$TSPORT"
      echo "SP_REDIS_TLS_SENTINEL_MASTER=sptls"
      echo "SP_REDIS_TLS_SENTINEL_PASSWORD=$TSENTINEL_PW"
      echo "SP_REDIS_TLS_SENTINEL_ACL=$TSENTINEL_ACL"
      echo "SP_REDIS_TLS_MASTER_PASSWORD=$TMASTER_PW"
    } >> "$state/env"
    ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop STATE_DIR"; exit 2 ;;
esac
