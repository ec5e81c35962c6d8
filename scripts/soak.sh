#!/usr/bin/env bash
# `make soak`: the long checks that `make test` leaves out, each bounded, with one summary at the end.
# Under 30 minutes on 2 cores with the defaults: fuzz ~10 min (5 targets, 2 at a time: dsn, the
# slowest, on one core, the four others one after the other on the second), valgrind ~11 min, the
# php-fpm soak ~3.5 min (5 runs of 100 000 requests).
#
#   1. fuzz     every target in fuzz/ (cargo-fuzz, libFuzzer) for FUZZ_RUNS executions (default 10^7)
#               or FUZZ_SECONDS (default 600) per target, whichever comes first, FUZZ_JOBS (default 2)
#               targets at a time, inputs up to FUZZ_MAX_LEN bytes (default 256: a DSN's structure fits,
#               and dsn reaches 10^7 executions in time). Seeds: fuzz/seeds/<target>; the corpus grows
#               in target/fuzz-corpus.
#   2. valgrind the phpt suite under memcheck (scripts/valgrind.sh).
#   3. php-fpm  the soak through nginx + php-fpm (scripts/soak-fpm.sh, SOAK_REQUESTS cycles per run;
#               SQLite, files, Redis, Memcached, the class on SQLite).
#
# SOAK_ONLY="fuzz valgrind fpm" picks parts, FUZZ_TARGETS="dsn ..." fuzz targets. Exit status non-zero when any part failed.
set -uo pipefail
cd "$(dirname "$0")/.."

ONLY=" ${SOAK_ONLY:-fuzz valgrind fpm} "
FUZZ_RUNS=${FUZZ_RUNS:-10000000}
FUZZ_SECONDS=${FUZZ_SECONDS:-600}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-256}
FUZZ_JOBS=${FUZZ_JOBS:-2}
LOG_DIR="$PWD/target/soak"
mkdir -p "$LOG_DIR"
summary=()
status=0
t0=$(date +%s)
note() { summary+=("$1"); }

# --- 1. fuzzing ---------------------------------------------------------------------------------
if [[ $ONLY == *" fuzz "* ]]; then
  echo "== fuzz: $FUZZ_RUNS executions or ${FUZZ_SECONDS}s per target"
  if ! command -v cargo-fuzz >/dev/null; then
    echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked >"$LOG_DIR/cargo-fuzz-install.log" 2>&1 \
      || { note "fuzz: FAILED to install cargo-fuzz (see $LOG_DIR/cargo-fuzz-install.log)"; status=1; }
  fi
  if command -v cargo-fuzz >/dev/null; then
    # Stable Rust: no sanitizer (-s none needs no nightly flag; the fuzzed code is safe Rust, so
    # AddressSanitizer would add cost, not findings); -a keeps overflow checks and debug asserts.
    FUZZ_FLAGS=(-O -a -s none)
    targets=${FUZZ_TARGETS:-$(sed -nE 's/^name = "([a-z_]+)"$/\1/p' fuzz/Cargo.toml | grep -v -- '-fuzz$')}
    if ! (cd fuzz && cargo fuzz build "${FUZZ_FLAGS[@]}" >"$LOG_DIR/fuzz-build.log" 2>&1); then
      note "fuzz: FAILED to build (see $LOG_DIR/fuzz-build.log)"; status=1; targets=""
    fi
    run_target() {
      local t=$1 corpus="$PWD/target/fuzz-corpus/$1"
      mkdir -p "$corpus" "fuzz/artifacts/$t"
      (cd fuzz && cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "$corpus" "seeds/$t" -- \
        -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" -print_final_stats=1 -timeout=10 -rss_limit_mb=1024) \
        >"$LOG_DIR/fuzz-$t.log" 2>&1
      echo $? >"$LOG_DIR/fuzz-$t.rc"
    }
    running=0
    for t in $targets; do
      run_target "$t" &
      running=$((running + 1))
      if [[ $running -ge $FUZZ_JOBS ]]; then wait -n; running=$((running - 1)); fi
    done
    wait
    for t in $targets; do
      execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$LOG_DIR/fuzz-$t.log" | tail -1)
      secs=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$LOG_DIR/fuzz-$t.log" | tail -1)
      rc=$(cat "$LOG_DIR/fuzz-$t.rc" 2>/dev/null || echo 1)
      crash=$(grep -m1 -oE "Test unit written to \S+" "$LOG_DIR/fuzz-$t.log" | sed 's/Test unit written to //')
      if [[ $rc -eq 0 && -z $crash ]]; then
        note "fuzz $t: ${execs:-?} executions in ${secs:-?}s, 0 crashes"
      else
        note "fuzz $t: FAILED after ${execs:-?} executions: ${crash:-exit status $rc} (log: $LOG_DIR/fuzz-$t.log)"
        grep -m3 -A2 "panicked at" "$LOG_DIR/fuzz-$t.log" | sed 's/^/    /'
        status=1
      fi
    done
  fi
fi

# --- 2. valgrind ---------------------------------------------------------------------------------
if [[ $ONLY == *" valgrind "* ]]; then
  echo "== valgrind"
  if ! command -v valgrind >/dev/null; then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    echo "installing valgrind (apt-get install valgrind)"
    $SUDO apt-get install -y -qq --no-install-recommends valgrind >/dev/null
  fi
  bash scripts/valgrind.sh | tee "$LOG_DIR/valgrind.log"
  vs=${PIPESTATUS[0]}
  while IFS= read -r l; do note "$l"; done < <(grep -E "^(phpt under valgrind|valgrind:|  errors/leaks)" "$LOG_DIR/valgrind.log")
  [[ $vs -eq 0 ]] || { note "valgrind: FAILED (errors involving libsession_proxy.so, see target/valgrind)"; status=1; }
fi

# --- 3. php-fpm soak -------------------------------------------------------------------------------
if [[ $ONLY == *" fpm "* ]]; then
  echo "== php-fpm soak"
  s=$(date +%s)
  bash scripts/soak-fpm.sh 2>&1 | tee "$LOG_DIR/fpm.log"
  fs=${PIPESTATUS[0]}
  while read -r l; do note "  $l"; done < <(grep -E "^soak |max growth" "$LOG_DIR/fpm.log")
  if [[ $fs -eq 0 ]]; then note "php-fpm soak: passed in $(( $(date +%s) - s ))s (log: $LOG_DIR/fpm.log)"; else note "php-fpm soak: FAILED (log: $LOG_DIR/fpm.log)"; status=1; fi
fi

echo
echo "== soak summary ($(( ($(date +%s) - t0) / 60 )) min)"
printf '%s\n' "${summary[@]}"
exit $status
