#!/usr/bin/env bash
# Session cycles/s with each at-rest layer vs none, same run (configurations interleaved within each
# repetition), at 200 B, 4 KiB and 64 KiB, on Redis and SQLite; then the stored size with and without
# compression of the realistic payload of bench/payload.php (a Laravel-style session with a cart).
# Each figure is the median of $REPEAT runs. PHP on CPU 0, redis-server on CPU 1.
# Usage: bash bench/layers.sh   (env: REPEAT=5 ITER=3000 PORT=6419; CONFIGS="none encryption ..." ENGINES="redis sqlite"
#        SIZES="200 4096 65536" SIZE_TABLE=0 to leave out the stored-size table and the per-layer cost)
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/libsession_proxy.so"
REPEAT=${REPEAT:-5}
ITER=${ITER:-3000}
PORT=${PORT:-6419}
BASE=$(mktemp -d "${BENCH_DIR:-/tmp}/sp-lbench.XXXXXX")
head -c 32 /dev/urandom > "$BASE/key"
taskset -c 1 redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no --daemonize yes \
  --dir "$BASE" --pidfile "$BASE/r.pid" --logfile "$BASE/r.log" >/dev/null
trap 'redis-cli -h 127.0.0.1 -p $PORT shutdown nosave >/dev/null 2>&1; rm -rf "$BASE"' EXIT
for _ in $(seq 100); do redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

read -r -a CONFIGS <<<"${CONFIGS:-none encryption hash_ids zstd lz4 all}"
read -r -a ENGINES <<<"${ENGINES:-redis sqlite}"
read -r -a SIZES <<<"${SIZES:-200 4096 65536}"
layer_ini() {
  case $1 in
    none) ;;
    encryption) echo "-d session_proxy.encryption_key=$BASE/key" ;;
    hash_ids) echo "-d session_proxy.hash_ids=1 -d session_proxy.hash_key=$BASE/key" ;;
    zstd) echo "-d session_proxy.compression=zstd" ;;
    lz4) echo "-d session_proxy.compression=lz4" ;;
    all) echo "-d session_proxy.encryption_key=$BASE/key -d session_proxy.hash_ids=1 -d session_proxy.compression=zstd" ;;
  esac
}
one() { # engine-dsn bytes config
  # shellcheck disable=SC2046
  taskset -c 0 php -n -d extension="$SO" -d session.save_handler=session_proxy -d "session.save_path=\"$1\"" \
    $(layer_ini "$3") bench/cycle.php "$ITER" "$2" framework,cpu
}

echo "session cycles/s with each layer, and the PHP process's CPU µs per cycle (change vs none in brackets),"
echo "median of $REPEAT runs x $ITER cycles (configurations interleaved); PHP on CPU 0, redis-server on CPU 1"
for engine in "${ENGINES[@]}"; do
  echo
  echo "$engine:"
  printf '| payload |'; for c in "${CONFIGS[@]}"; do printf ' %s |' "$c"; done; echo
  printf '|---|'; for _ in "${CONFIGS[@]}"; do printf -- '---|'; done; echo
  for bytes in "${SIZES[@]}"; do
    declare -A got=() cpu=()
    for r in $(seq "$REPEAT"); do
      for c in "${CONFIGS[@]}"; do
        case $engine in
          redis) dsn="redis://127.0.0.1:$PORT/0?prefix=b$bytes$c:" ;;
          sqlite) dsn="sqlite://$BASE/$bytes-$c.sqlite" ;;
        esac
        read -r cps us < <(one "$dsn" "$bytes" "$c")
        got[$c]+="$cps "
        cpu[$c]+="$us "
      done
    done
    med() { echo "$1" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
    base=$(med "${got[none]}")
    base_us=$(med "${cpu[none]}")
    printf '| %s B |' "$bytes"
    for c in "${CONFIGS[@]}"; do
      m=$(med "${got[$c]}")
      u=$(med "${cpu[$c]}")
      if [[ $c == none ]]; then
        printf ' %s/s, %s µs |' "$m" "$u"
      else
        printf ' %s/s (%+.1f%%), %s µs (%+.1f%%) |' "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN {print (a/b-1)*100}')" \
          "$u" "$(awk -v a="$u" -v b="$base_us" 'BEGIN {print (a/b-1)*100}')"
      fi
    done
    echo
    unset got cpu
  done
done

[[ ${SIZE_TABLE:-1} == 0 ]] && exit 0
echo
echo "stored size of the payload (bench/payload.php: a Laravel-style session with a cart), files engine"
echo "| payload | serialized | zstd | ratio | lz4 | ratio | zstd + encryption | ratio |"
echo "|---|---|---|---|---|---|---|---|"
for bytes in 4096 65536; do
  line="| $bytes B |"
  plain=""
  for c in zstd lz4 "zstd+enc"; do
    d="$BASE/size-$bytes-$c"; mkdir -p "$d"
    extra="-d session_proxy.compression=${c%%+*}"
    [[ $c == *enc ]] && extra="$extra -d session_proxy.encryption_key=$BASE/key"
    # shellcheck disable=SC2086
    read -r plain stored < <(php -n -d extension="$SO" $extra bench/layers.php size "$bytes" "$d")
    line="$line $stored | $(awk -v a="$plain" -v b="$stored" 'BEGIN {printf "%.1fx", a/b}') |"
  done
  echo "${line/B |/B | $plain |}"
done

echo
echo "each layer's own CPU work per cycle (one write's encode + one read's decode; no engine), examples/layer_cost.rs"
cargo run --quiet --release --example layer_cost
