--TEST--
Panic guard: a Rust panic inside a save-handler hook (read) and inside a SessionProxy\Handler method (write) becomes a warning and a false result; the process goes on, and the next session works (test build with the test-panic feature)
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

// scripts/test.sh builds the extension with the test-only feature "test-panic" (profile panic-test: the
// release profile, so its panic strategy too) into target/panic-test/. With SESSION_PROXY_TEST_PANIC
// naming a place, that build panics there; the normal build has no such code.
$so = getenv('SESSION_PROXY_PANIC_SO') ?: dirname(__DIR__) . '/target/panic-test/libsession_proxy.so';
if (!is_file($so)) {
    exit("no test-panic build at $so (cargo build --profile panic-test --features test-panic)\n");
}
$d = sp_tmpdir('panic');
$dsn = "sqlite://$d/s.sqlite";

$code = <<<'PHP'
// The hook: session_start() reads the session through the save handler's read hook.
putenv('SESSION_PROXY_TEST_PANIC=read');
session_id('panicsid1');
$ok = session_start();
echo 'session_start with a panic in read: ', var_export($ok, true), "\n";
echo 'session active: ', var_export(session_status() === PHP_SESSION_ACTIVE, true), "\n";
putenv('SESSION_PROXY_TEST_PANIC');
session_id('panicsid1');
echo 'session_start after: ', var_export(session_start(), true), ' ', session_id(), "\n";
$_SESSION['n'] = 1;
echo 'session_write_close: ', var_export(session_write_close(), true), "\n";

// The class: SessionProxy\Handler::write panics.
$h = new SessionProxy\Handler($argv[1]);
echo 'open: ', var_export($h->open('', 'PHPSESSID'), true), "\n";
echo 'read: ', var_export($h->read('panicsid1'), true), "\n";
putenv('SESSION_PROXY_TEST_PANIC=Handler::write');
$ok = $h->write('panicsid1', 'n|i:2;');
echo 'write with a panic: ', var_export($ok, true), "\n";
putenv('SESSION_PROXY_TEST_PANIC');
echo 'write after: ', var_export($h->write('panicsid1', 'n|i:3;'), true), "\n";
echo 'read after: ', var_export($h->read('panicsid1'), true), "\n";
echo 'close: ', var_export($h->close(), true), "\n";
echo "still running\n";
PHP;
// RUST_BACKTRACE=0: Rust's panic message without a backtrace (the test environment may set it).
$cmd = 'RUST_BACKTRACE=0 exec ' . escapeshellarg(sp_php_binary()) . ' -n -d ' . escapeshellarg("extension=$so")
    . sp_ini_args(array_merge(SP_CLI_INI, ['session.save_path' => $dsn])) . ' ' . escapeshellarg(sp_script($code))
    . ' ' . escapeshellarg($dsn);
// The child must also end normally (exit 0, no signal): sp_run() checks.
echo str_replace($d, 'DIR', sp_run($cmd));
?>
--EXPECTF--
thread %s panicked at src/php/hooks.rs:%d:%d:
test panic in read
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

Warning: session_start(): session_proxy: internal error: test panic in read in %s on line %d

Warning: session_start(): Failed to read session data: session_proxy (path: sqlite://DIR/s.sqlite) in %s on line %d
session_start with a panic in read: false
session active: false
session_start after: true panicsid1
session_write_close: true
open: true
read: 'n|i:1;'

thread %s panicked at src/php/class.rs:%d:%d:
test panic in Handler::write

Warning: SessionProxy\Handler::write(): session_proxy: internal error: test panic in Handler::write in %s on line %d
write with a panic: false
write after: true
read after: 'n|i:3;'
close: true
still running
