#!/usr/bin/env bash
# Self-test of the test runner (run by scripts/test.sh, counted there as one test): the counting of
# scripts/count.sh, which scripts/test.sh uses, is run on scratch cargo crates and phpt files made to
# pass, fail, crash, not build, bork and skip. Each case checks the runner's verdict (finish()). Exit
# status non-zero when any case is judged wrongly. Scratch files live in target/selftest.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN_TESTS=${RUN_TESTS:-"$(php-config --extension-dir)/build/run-tests.php"}
. scripts/count.sh
SCRATCH="$ROOT/target/selftest"
rm -rf "$SCRATCH/crate" "$SCRATCH/broken" "$SCRATCH/phpt"
mkdir -p "$SCRATCH"
bad=0

# verdict NAME WANT(green|red) CMD...: runs CMD in a subshell, then finish(). The counters start at one
# pass, as if the rest of the suite had passed: a crash that adds nothing must still turn the run red.
verdict() {
  local name=$1 want=$2 got out; shift 2
  out=$( (passed=1; failed=0; "$@"; finish) 2>&1 ) && got=green || got=red
  if [[ $got == "$want" ]]; then
    echo "ok: $name: $got ($(tail -1 <<<"$out"))"
  else
    echo "WRONG: $name: $got, expected $want. Runner output:"; sed 's/^/    /' <<<"$out"
    bad=$((bad + 1))
  fi
}

# --- cargo: one crate whose test does what SELFTEST_MODE says, one that does not compile ----------
mkdir -p "$SCRATCH/crate/src" "$SCRATCH/broken/src"
for c in crate broken; do
  cat > "$SCRATCH/$c/Cargo.toml" <<EOF
[package]
name = "sp_selftest_$c"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]
EOF
done
cat > "$SCRATCH/crate/src/lib.rs" <<'EOF'
#[test]
fn first() {}

#[test]
fn mode() {
    match std::env::var("SELFTEST_MODE").as_deref() {
        Ok("fail") => panic!("a failing test"),
        Ok("abort") => std::process::abort(),
        // A write to an unmapped page (std's SIGSEGV handler then lets the default action kill us).
        Ok("segv") => unsafe { (std::hint::black_box(8usize) as *mut u8).write_volatile(1) },
        Ok("exit") => std::process::exit(0),
        _ => {}
    }
}
EOF
cat > "$SCRATCH/broken/src/lib.rs" <<'EOF'
#[test]
fn does_not_compile() {
    let x: u32 = "not a number";
}
EOF
export CARGO_TARGET_DIR="$SCRATCH/target"
LOG_DIR="$SCRATCH"
cargo_case() { SELFTEST_MODE=$1 cargo_tests "$SCRATCH/cargo-$1.log" --manifest-path "$SCRATCH/$2/Cargo.toml" --no-fail-fast; }
verdict "cargo, all tests pass" green cargo_case pass crate
verdict "cargo, a test fails" red cargo_case fail crate
verdict "cargo, the test binary aborts (SIGABRT)" red cargo_case abort crate
verdict "cargo, the test binary segfaults (SIGSEGV)" red cargo_case segv crate
verdict "cargo, a test exits the binary with status 0" red cargo_case exit crate
verdict "cargo, the tests do not compile" red cargo_case pass broken

# --- phpt: one that passes, and one each that fails, skips and borks -------------------------------
mkdir -p "$SCRATCH/phpt"/{pass,fail,skip,bork,retry}
for d in pass fail skip bork retry; do
  printf -- '--TEST--\nselftest pass\n--FILE--\n<?php echo "ok";\n--EXPECT--\nok\n' > "$SCRATCH/phpt/$d/a.phpt"
done
printf -- '--TEST--\nselftest fail\n--FILE--\n<?php echo "no";\n--EXPECT--\nok\n' > "$SCRATCH/phpt/fail/b.phpt"
printf -- '--TEST--\nselftest skip\n--SKIPIF--\n<?php die("skip always");\n--FILE--\n<?php echo "ok";\n--EXPECT--\nok\n' > "$SCRATCH/phpt/skip/b.phpt"
printf -- '--TEST--\nselftest bork (no --EXPECT--)\n--FILE--\n<?php echo "ok";\n' > "$SCRATCH/phpt/bork/b.phpt"
# Fails its first run and passes run-tests' retry (it retries a failed test that sleeps or times).
rm -f "$SCRATCH/phpt/retry/mark"
printf -- '--TEST--\nselftest passes on the retry only\n--FILE--\n<?php usleep(1); $f = __DIR__ . "/mark"; if (is_file($f)) { echo "ok"; } else { touch($f); echo "no"; }\n--EXPECT--\nok\n' > "$SCRATCH/phpt/retry/b.phpt"
phpt_case() { phpt_tests "$SCRATCH/phpt/$1" "$SCRATCH/phpt-$1.log" -p "$(command -v php)"; }
verdict "phpt, all pass" green phpt_case pass
verdict "phpt, one fails" red phpt_case fail
verdict "phpt, one is skipped" red phpt_case skip
verdict "phpt, one borks" red phpt_case bork
verdict "phpt, one passes only on the retry" red phpt_case retry
# ... and the runner shows how its first attempt failed (run-tests.php itself keeps only the retry).
retry_shown() {
  local out
  out=$( (passed=0; failed=0; phpt_case retry) 2>&1 )
  grep -q '^--- .*/b.first.diff' <<<"$out" && grep -q '^001+ no' <<<"$out" && grep -q '^001- ok' <<<"$out" \
    && echo "ok: phpt, the retried test's first attempt is shown" \
    || { echo "WRONG: phpt, the retried test's first attempt is not shown. Runner output:"; sed 's/^/    /' <<<"$out"; bad=$((bad + 1)); }
}
rm -f "$SCRATCH/phpt/retry/mark"
retry_shown

# --- a checkout inside a private (0700) directory: the web service serves it ---------------------
# (root's home on Debian is 0700: nginx's workers, when they ran as "nobody", answered 404 there.)
# A copy of what scripts/services/web.sh needs, started on free ports with one php-fpm worker.
web_private() {
  local priv="$SCRATCH/private" co="$SCRATCH/private/checkout" state="$SCRATCH/private/state" rc=0 url code
  rm -rf "$priv"
  mkdir -p "$co/scripts/services" "$co/php-tests" "$co/target/release"
  chmod 0700 "$priv"
  cp scripts/lib.sh "$co/scripts/" && cp scripts/services/web.sh "$co/scripts/services/" \
    && cp -r php-tests/web "$co/php-tests/" && cp target/release/libsession_proxy.so "$co/target/release/" || return 1
  SP_WEB_PORT=0 SP_FPM_PORT=0 SP_FPM_WORKERS=1 bash "$co/scripts/services/web.sh" start "$state" || rc=1
  if ((rc == 0)); then
    url=$(sed -n 's/^SP_WEB_URL=//p' "$state/env")
    code=$(php -n -r '$c = stream_context_create(["http" => ["timeout" => 5, "ignore_errors" => true]]);
      $b = @file_get_contents($argv[1], false, $c); echo explode(" ", $http_response_header[0] ?? "- none")[1], " ", $b;' "$url/ping.php")
    [[ $code == "200 pong session_proxy" ]] || { echo "ping.php answered: $code"; rc=1; }
  fi
  bash "$co/scripts/services/web.sh" stop "$state" || rc=1
  rm -rf "$priv"
  return $rc
}
if out=$(web_private 2>&1); then
  echo "ok: web service from a checkout in a 0700 directory: ping.php 200"
else
  echo "WRONG: web service from a checkout in a 0700 directory:"; sed 's/^/    /' <<<"$out"
  bad=$((bad + 1))
fi

echo "runner self-test: $bad cases judged wrongly"
[[ $bad -eq 0 ]]
