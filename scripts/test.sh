#!/usr/bin/env bash
# Runs cargo's tests, a type-check of the fuzz targets, the import check, the runner's self-test and
# the phpt suite, then prints one line "N passed, N failed" (their sum). Exit status is non-zero on
# any failure. A skipped phpt counts as a failure: every test here is about something this project
# installs, so a skip means something is missing. A test binary that crashes or does not build
# counts as failed (scripts/count.sh).
set -uo pipefail
cd "$(dirname "$0")/.."

SO="$PWD/target/release/libsession_proxy.so"
PHP_BIN="$(command -v php)"
RUN_TESTS="$(php-config --extension-dir)/build/run-tests.php"
LOG_DIR="$PWD/target/test-logs"
mkdir -p "$LOG_DIR"

passed=0
failed=0
# cargo_tests, phpt_tests, check_cmd, finish: how results are counted.
. scripts/count.sh

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
cargo_tests "$LOG_DIR/cargo.log" --release --no-fail-fast

# The session-proxy tool (cli/, a workspace member built without the php feature): its tests run the
# binary (target/release/session-proxy, which the phpt tests use too) against the same servers.
echo "== cargo test (session-proxy tool)"
cargo_tests "$LOG_DIR/cargo-cli.log" --release --no-fail-fast -p session-proxy-cli

# The fuzz targets (fuzz/, its own workspace) must keep compiling: cargo-fuzz needs nightly for its
# default build, so the suite type-checks them with stable, in a target dir of their own.
echo "== fuzz targets"
check_cmd fuzz-check cargo check --manifest-path fuzz/Cargo.toml --bins --target-dir "$PWD/target/fuzz-check"

# The src/ import graph must have no circle (scripts/imports.sh prints one if it does).
echo "== import check"
check_cmd imports bash scripts/imports.sh

# A layer (src/store/layer/*.rs) must forward every method of the traits it wraps: each layer file
# denies clippy::missing_trait_methods, a lint only clippy runs. One counted result; other clippy
# warnings are reported in its log but do not fail it.
echo "== clippy"
check_cmd clippy cargo clippy --all-targets

# The extension with the test-only feature "test-panic" for panic_guard.phpt: profile panic-test (the
# release profile's panic strategy) writes target/panic-test/, so target/release/ keeps the normal build.
# The first build compiles the dependencies once more (unoptimised), later ones only this crate.
echo "== test-panic build"
check_cmd panic-test-build cargo build --profile panic-test --features test-panic
export SESSION_PROXY_PANIC_SO="$PWD/target/panic-test/libsession_proxy.so"

# The runner itself: crashes, build errors, borks and skips must count as failures (scripts/selftest.sh).
echo "== runner self-test"
check_cmd runner-selftest bash scripts/selftest.sh

# --- phpt --------------------------------------------------------------------------------------
echo "== phpt"
export SESSION_PROXY_SO="$SO" TEST_PHP_EXECUTABLE="$PHP_BIN"
# Tests start servers and child PHP processes of their own; keep the machine's INI out of them (-n).
# --set-timeout: run-tests' default is 60 s per test, and the fpm tests that go through every engine
# (fpm_users: eight) take about that long on a loaded 2-core machine; a timeout is a failure.
phpt_tests php-tests "$LOG_DIR/phpt.log" -j"${PHPT_JOBS:-2}" --set-timeout 300 -p "$PHP_BIN" -d extension="$SO"

finish
