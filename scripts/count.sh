# Sourced by scripts/test.sh and scripts/selftest.sh: how the runner turns a cargo or phpt run into
# numbers. Each function adds to the caller's $passed and $failed. scripts/selftest.sh runs these same
# functions on scratch crates and phpt files that crash, fail to build, bork or skip, so that a change
# here that lets such a run count as green fails `make test`.

# Runs `cargo test "$@"` (output in $1, the failures shown) and counts its results.
cargo_tests() {
  local log=$1 status; shift
  # PIPESTATUS must be read right after the pipeline, before any other command (even `|| true`).
  cargo test "$@" 2>&1 | tee "$log" | grep -E "^test result:|FAILED|panicked|error(\[E[0-9]+\])?:|signal: "
  status=${PIPESTATUS[0]}
  cargo_count "$log" "$status"
}

# Counts a cargo test log ($1) whose command exited with status $2.
# Every test binary cargo starts prints "Running ..." (or "Doc-tests ..."); only one that ran to the
# end prints its "test result:" line. A binary that was killed (segfault, abort, OOM killer, an
# exit() in a test) prints none: each such binary counts as one failure. A cargo that failed without
# any failed test (a compile error: no binary ran at all) counts as one failure too.
cargo_count() {
  local log=$1 status=$2 p f cp=0 cf=0 started finished
  while read -r p f; do
    cp=$((cp + p)); cf=$((cf + f))
  done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$log")
  # Counted anywhere in a line: a binary that died mid-line ("test x ... " and no "ok") leaves the
  # next binary's "Running"/"Doc-tests" glued to that partial line (seen: an exit(0) in a test).
  started=$(grep -oE ' {3,}(Running|Doc-tests) ' "$log" | wc -l)
  finished=$(grep -c '^test result:' "$log")
  if ((finished < started)); then
    echo "cargo: $((started - finished)) test binaries ended without a result (crash, abort or kill): see $log"
    cf=$((cf + started - finished))
  fi
  if ((status != 0 && cf == 0)); then
    echo "cargo test exited with status $status and no failed test (build error?): see $log"
    cf=$((cf + 1))
  fi
  passed=$((passed + cp)); failed=$((failed + cf))
}

# Runs the phpt files under $1 with run-tests.php (log in $2, further arguments passed on) and counts
# them. Anything that did not pass (failed, skipped, borked, leaked, or never ran) is a failure: every
# test here is about something this project installs, so a skip means something is missing.
phpt_tests() {
  local dir=$1 log=$2 total p_pass p_fail p_skip p_bork p_warn f; shift 2
  total=$(find "$dir" -name '*.phpt' | wc -l)
  find "$dir" -name '*.first.diff' -delete
  php -n "$(first_keeping_runner)" -n -q --no-color --no-progress "$@" "$dir" > "$log" 2>&1
  # WARN: passed only on run-tests' retry (a test that sleeps or times is retried once after a
  # failure): a flake, counted as a failure, and named here with how its first attempt failed.
  grep -E "^(FAIL|BORK|SKIP|LEAK|WARN|PASS) " "$log" | grep -v "^PASS"
  for f in $(sed -nE 's/^WARN .*\[([^]]*\.phpt)\].*/\1/p' "$log"); do
    [[ -f ${f%.phpt}.first.diff ]] && { echo "--- ${f%.phpt}.first.diff (its first attempt)"; head -40 "${f%.phpt}.first.diff"; echo; }
  done
  p_pass=$(phpt_summary passed "$log"); p_fail=$(phpt_summary failed "$log")
  p_skip=$(phpt_summary skipped "$log"); p_bork=$(grep -c "^BORK" "$log"); p_warn=$(phpt_summary warned "$log")
  p_pass=${p_pass:-0}; p_fail=${p_fail:-0}; p_skip=${p_skip:-0}; p_warn=${p_warn:-0}
  echo "phpt: $total tests, $p_pass passed, $p_fail failed, $p_skip skipped, $p_bork borked, $p_warn passed only on a retry (log: $log)"
  for f in $(sed -nE 's/^(FAIL|BORK).*\[(.*)\] *$/\2/p' "$log"); do
    [[ -f ${f%.phpt}.diff ]] && { echo "--- ${f%.phpt}.diff"; head -40 "${f%.phpt}.diff"; echo; }
    [[ -f ${f%.phpt}.out ]] && [[ ! -f ${f%.phpt}.diff ]] && { echo "--- ${f%.phpt}.out"; head -40 "${f%.phpt}.out"; echo; }
  done
  passed=$((passed + p_pass)); failed=$((failed + total - p_pass))
}

# A copy of $RUN_TESTS (in $LOG_DIR, or target/) that writes a failed first attempt's diff to
# <test>.first.diff before it retries: run-tests.php retries a failed test that sleeps or times and
# keeps only the retry's result, so a flake's first attempt would otherwise be lost. Prints its path.
first_keeping_runner() {
  local copy="${LOG_DIR:-$PWD/target}/run-tests.php"
  mkdir -p "$(dirname "$copy")"
  sed -E 's/^( *)goto retry;/\1@file_put_contents(preg_replace("\/diff$\/", "first.diff", $diff_filename), generate_diff($wanted, $wanted_re, $output));\n\1goto retry;/' \
    "$RUN_TESTS" > "$copy"
  grep -q 'first.diff' "$copy" || { echo "scripts/count.sh: no 'goto retry;' to patch in $RUN_TESTS; first attempts are not kept" >&2; cp "$RUN_TESTS" "$copy"; }
  echo "$copy"
}

# One number of run-tests.php's summary ("Tests passed : 3 ( 60.0%)").
phpt_summary() {
  sed -nE "s/^Tests $1 *: *([0-9]+).*/\1/p" "$2" | head -1
}

# Runs a check command ("$2"...) and counts it as one test named $1; its output goes to log $LOG_DIR/<name>.log.
check_cmd() {
  local name=$1 log="$LOG_DIR/$1.log"; shift
  if "$@" > "$log" 2>&1; then
    echo "$name: ok"
    passed=$((passed + 1))
  else
    echo "$name: FAILED (log: $log)"; tail -20 "$log"
    failed=$((failed + 1))
  fi
}

# The last line of a run, and its verdict: green only with no failure and at least one pass.
finish() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 && $passed -gt 0 ]]
}
