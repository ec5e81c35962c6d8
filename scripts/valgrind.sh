#!/usr/bin/env bash
# Runs the phpt suite under valgrind's memcheck and summarizes what it found, split into errors whose
# stack passes through libsession_proxy.so (ours) and the rest (PHP, libc, other extensions).
#
#   bash scripts/valgrind.sh [php-tests/x.phpt ...]   (default: every phpt except the php-fpm/nginx and
#                                                      framework tests, whose PHP runs in php-fpm)
#
# The test's own PHP runs under run-tests.php -m (USE_ZEND_ALLOC=0, so every allocation is seen);
# child PHP processes that tests start (helpers.inc sp_php_cmd) run under their own valgrind
# (SP_VALGRIND=1), each logging to target/valgrind/<test>-child-<pid>.log (VALGRIND_LOG_DIR: another
# directory, e.g. to run the suite in chunks). It starts the Redis and memcached test servers
# (scripts/services/redis.sh, memcached.sh) as scripts/test.sh does, so their tests run too. PCRE's JIT is off
# (pcre.jit=0): its generated code gives false positives. Leaks counted are "definitely lost" only
# (a per-process pool kept until exit is "still reachable" by design).
#
# Under valgrind everything is 20-50x slower, so tests that measure time (lock waits) may FAIL here:
# their pass/fail is reported but does not count; memory errors do. Exit status: non-zero when an
# invalid read/write, use of uninitialised memory, invalid free or a definite leak involves our library.
set -uo pipefail
cd "$(dirname "$0")/.."

SO="$PWD/target/release/libsession_proxy.so"
PHP_BIN="$(command -v php)"
RUN_TESTS="$(php-config --extension-dir)/build/run-tests.php"
LOG_DIR="${VALGRIND_LOG_DIR:-$PWD/target/valgrind}"
JOBS="${VALGRIND_JOBS:-2}"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 2; }
[[ -f $SO ]] || { echo "build first: $SO is missing"; exit 2; }

if [[ $# -gt 0 ]]; then
  tests=("$@")
else
  # The race_50 tests (50 concurrent children each: race_50, redis_race_50, memcached_race_50) are
  # left out: under valgrind they only hit lock and busy timeouts, and they would double the run time
  # of `make soak`; their code paths are the lock tests'. Name them to run them (see README).
  mapfile -t tests < <(ls php-tests/*.phpt | grep -Ev '/(fpm_|symfony_|laravel_|race_50|redis_race_50|memcached_race_50)')
fi
if [[ ${VALGRIND_SUMMARY_ONLY:-0} != 1 ]]; then
rm -rf "$LOG_DIR"; mkdir -p "$LOG_DIR"
# run-tests.php writes its temporary files beside each test: run a copy of the suite, so a `make test`
# running at the same time in php-tests/ is not disturbed.
# Tests also read ../Cargo.toml, ../stubs, ../demo, ../Makefile: the copy sits in a tree of symlinks.
mkdir -p "$LOG_DIR/tree"
for e in *; do [[ $e == php-tests || $e == target ]] || ln -s "$PWD/$e" "$LOG_DIR/tree/$e"; done
SUITE="$LOG_DIR/tree/php-tests"
cp -r php-tests "$SUITE"
rm -f "$SUITE"/*.{php,out,diff,exp,log,mem,sh} 2>/dev/null
tests=("${tests[@]/#php-tests\//$SUITE/}")

# The Redis and memcached tests need the servers of scripts/services (as scripts/test.sh starts them);
# the web service is not needed (the php-fpm tests are not run here). Stopped on exit.
SERVICES_DIR="$LOG_DIR/services"
mkdir -p "$SERVICES_DIR"; : > "$SERVICES_DIR/env"
stop_services() { for svc in redis memcached; do bash "scripts/services/$svc.sh" stop "$SERVICES_DIR" >/dev/null 2>&1; done; return 0; }
trap stop_services EXIT
for svc in redis memcached; do
  bash "scripts/services/$svc.sh" start "$SERVICES_DIR" >"$SERVICES_DIR/start-$svc.out" 2>&1 ||
    { echo "service $svc failed to start (see $SERVICES_DIR/start-$svc.out)"; exit 2; }
done
set -a; . "$SERVICES_DIR/env"; set +a

echo "== valgrind: ${#tests[@]} phpt tests, $JOBS at a time (logs: $LOG_DIR)"
start=$(date +%s)
# VALGRIND_OPTS reaches the valgrind that run-tests.php starts (-m) and the children's. run-tests
# traces children (--trace-children=yes) into the same log file; skip that, children have their own.
SP_VALGRIND=1 SP_VALGRIND_LOG_DIR="$LOG_DIR" \
VALGRIND_OPTS="--leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=40 --trace-children-skip=*" \
SESSION_PROXY_SO="$SO" TEST_PHP_EXECUTABLE="$PHP_BIN" \
  php -n "$RUN_TESTS" -n -m -q --no-color --no-progress -j"$JOBS" -p "$PHP_BIN" \
    -d extension="$SO" -d pcre.jit=0 "${tests[@]}" > "$LOG_DIR/run-tests.log" 2>&1
# run-tests keeps a test's valgrind log (<test>.mem) only when it is not empty.
for m in "$SUITE"/*.mem; do [[ -f $m ]] && mv "$m" "$LOG_DIR/$(basename "$m" .mem)-main.log"; done
elapsed=$(( $(date +%s) - start ))

grep -E "^(FAIL|LEAK|BORK|SKIP) " "$LOG_DIR/run-tests.log" | sed 's/^/  phpt: /' || true
count() { sed -nE "s/^Tests $1 *: *([0-9]+).*/\1/p" "$LOG_DIR/run-tests.log" | head -1; }
echo "phpt under valgrind: passed $(count passed), failed $(count failed) (timing-sensitive tests may fail under valgrind), leaked $(count leaked), in ${elapsed}s"
fi

python3 - "$LOG_DIR" "${#tests[@]}" <<'PY'
import glob, os, re, sys
log_dir = sys.argv[1]
n_tests = int(sys.argv[2])
kinds = [
    ("invalid read", re.compile(r"Invalid read")),
    ("invalid write", re.compile(r"Invalid write")),
    ("invalid free", re.compile(r"Invalid free|Mismatched free|free\(\) / delete")),
    ("uninitialised", re.compile(r"uninitialised|Uninitialised")),
    ("overlap", re.compile(r"Source and destination overlap")),
    ("definitely lost", re.compile(r"definitely lost in loss record")),
    ("other", re.compile(r".")),
]
totals = {"ours": {}, "php": {}}
examples = {"ours": [], "php": []}
lost = {"ours": 0, "php": 0}
logs = sorted(glob.glob(os.path.join(log_dir, "*.log")))
logs = [l for l in logs if not l.endswith("run-tests.log")]
children = len([l for l in logs if "-child-" in l])
for path in logs:
    text = open(path, errors="replace").read()
    # Blocks are separated by "==PID== " lines with nothing after the prefix.
    block = []
    def flush(block):
        body = "\n".join(re.sub(r"^==\d+== ?", "", l) for l in block).strip()
        if not body or body.startswith(("Memcheck,", "Copyright", "Using Valgrind", "Command:", "HEAP SUMMARY", "LEAK SUMMARY", "ERROR SUMMARY", "For lists of", "For counts of", "Warning: set address range perms")):
            return
        head = body.splitlines()[0]
        kind = next(k for k, rx in kinds if rx.search(head))
        who = "ours" if ("libsession_proxy" in body or "session_proxy::" in body) else "php"
        totals[who][kind] = totals[who].get(kind, 0) + 1
        if kind == "definitely lost":
            m = re.match(r"([\d,]+) (?:\([\d,]+ direct, [\d,]+ indirect\) )?bytes", head)
            if m:
                lost[who] += int(m.group(1).replace(",", ""))
        if len(examples[who]) < 3:
            examples[who].append((os.path.basename(path), body.splitlines()[:12]))
    for line in text.splitlines():
        if re.fullmatch(r"==\d+== ?", line):
            flush(block); block = []
        else:
            block.append(line)
    flush(block)

def line(who):
    t = totals[who]
    parts = [f"{k} {t[k]}" for k, _ in kinds if t.get(k)]
    return ", ".join(parts) if parts else "none"
print(f"valgrind: {n_tests} test scripts and {children} child PHP processes checked")
print(f"  errors/leaks involving libsession_proxy.so: {line('ours')}; definitely lost: {lost['ours']} bytes")
print(f"  errors/leaks elsewhere (PHP, libc, ...):     {line('php')}; definitely lost: {lost['php']} bytes")
for who in ("ours", "php"):
    for name, body in examples[who]:
        print(f"  --- example ({who}) from {name}:")
        for l in body:
            print("      " + l)
bad = sum(v for k, v in totals["ours"].items())
open(os.path.join(log_dir, "summary.txt"), "w").write(f"ours={bad}\n")
sys.exit(1 if bad else 0)
PY
