#!/usr/bin/env bash
# Runs cargo's tests and the phpt suite, then prints one line "N passed, N failed" (their sum).
# Exit status is non-zero on any failure. A skipped phpt counts as a failure: every test here is
# about something this project installs, so a skip means something is missing.
set -uo pipefail
cd "$(dirname "$0")/.."

SO="$PWD/target/release/libsession_proxy.so"
PHP_BIN="$(command -v php)"
RUN_TESTS="$(php-config --extension-dir)/build/run-tests.php"
LOG_DIR="$PWD/target/test-logs"
mkdir -p "$LOG_DIR"

passed=0
failed=0

# --- servers -----------------------------------------------------------------------------------
# Each scripts/services/<name>.sh takes "start <state-dir>" / "stop <state-dir>". start launches its
# servers on 127.0.0.1 (ports of its own) and appends KEY=VALUE lines for the tests to
# <state-dir>/env, which both cargo's and the phpt tests see; a start that fails is a test failure,
# never a skip. Everything is stopped on exit.
SERVICES_DIR="$PWD/target/services"
rm -rf "$SERVICES_DIR"; mkdir -p "$SERVICES_DIR"; : > "$SERVICES_DIR/env"
stop_services() {
  for svc in scripts/services/*.sh; do [[ -f $svc ]] && bash "$svc" stop "$SERVICES_DIR" >/dev/null 2>&1; done
  return 0
}
trap stop_services EXIT
for svc in scripts/services/*.sh; do
  [[ -f $svc ]] || continue
  echo "== start $(basename "$svc" .sh)"
  if ! bash "$svc" start "$SERVICES_DIR"; then
    echo "service $(basename "$svc" .sh) failed to start"
    failed=$((failed + 1))
  fi
done
set -a; . "$SERVICES_DIR/env"; set +a

# --- cargo -------------------------------------------------------------------------------------
echo "== cargo test"
cargo test --release 2>&1 | tee "$LOG_DIR/cargo.log" | grep -E "^test result:|FAILED|panicked" || true
cargo_status=${PIPESTATUS[0]}
while read -r p f; do
  passed=$((passed + p)); failed=$((failed + f))
done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$LOG_DIR/cargo.log")
if [[ $cargo_status -ne 0 ]] && ! grep -q "^test result: FAILED" "$LOG_DIR/cargo.log"; then
  echo "cargo test did not run (build error?): see $LOG_DIR/cargo.log"
  failed=$((failed + 1))
fi

# --- phpt --------------------------------------------------------------------------------------
echo "== phpt"
total=$(find php-tests -name '*.phpt' | wc -l)
export SESSION_PROXY_SO="$SO" TEST_PHP_EXECUTABLE="$PHP_BIN"
# Tests start servers and child PHP processes of their own; keep the machine's INI out of them (-n).
php -n "$RUN_TESTS" -n -q --no-color --no-progress -j"${PHPT_JOBS:-2}" -p "$PHP_BIN" \
  -d extension="$SO" php-tests > "$LOG_DIR/phpt.log" 2>&1
grep -E "^(FAIL|BORK|SKIP|LEAK|PASS)" "$LOG_DIR/phpt.log" | grep -v "^PASS" || true
count() { sed -nE "s/^Tests $1 *: *([0-9]+).*/\1/p" "$LOG_DIR/phpt.log" | head -1; }
p_pass=$(count passed); p_fail=$(count failed); p_skip=$(count skipped); p_bork=$(grep -c "^BORK" "$LOG_DIR/phpt.log")
p_pass=${p_pass:-0}; p_fail=${p_fail:-0}; p_skip=${p_skip:-0}
# Anything that did not pass (failed, skipped, borked, or never ran) is a failure.
p_bad=$((total - p_pass))
echo "phpt: $total tests, $p_pass passed, $p_fail failed, $p_skip skipped, $p_bork borked (log: $LOG_DIR/phpt.log)"
for f in $(sed -nE 's/^(FAIL|BORK).*\[(.*)\] *$/\2/p' "$LOG_DIR/phpt.log"); do
  [[ -f ${f%.phpt}.diff ]] && { echo "--- ${f%.phpt}.diff"; head -40 "${f%.phpt}.diff"; }
  [[ -f ${f%.phpt}.out ]] && [[ ! -f ${f%.phpt}.diff ]] && { echo "--- ${f%.phpt}.out"; head -40 "${f%.phpt}.out"; }
done
passed=$((passed + p_pass)); failed=$((failed + p_bad))

echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
