--TEST--
Locking: lock_wait_timeout with lock_timeout_action=fail makes session_start() fail in bounded time, naming the wait
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

foreach (sp_engines('tofail') as $engine => $dsn) {
    echo "== $engine\n";
    $sig = sp_tmpdir('tofail-sig');
    $id = 'timeoutfail42';
    lk_seed($dsn, $id, ['v' => 'seed']);

    // A: holds the lock until the parent says B is done, then writes.
    $a = lk_spawn('
        session_id($P["id"]);
        $ok = session_start();
        lk_signal($P["sig"] . "/a-locked");
        lk_await($P["sig"] . "/release");
        $_SESSION["v"] = "A";
        session_write_close();
        lk_done(["ok" => $ok]);
    ', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn]);
    lk_wait_signal("$sig/a-locked");

    $rb = lk_run('B', '
        session_id($P["id"]);
        $t0 = microtime(true);
        $ok = session_start();
        $waited = microtime(true) - $t0;
        lk_done(["ok" => $ok, "waited" => $waited, "status" => session_status(), "session" => $_SESSION ?? null]);
    ', ['id' => $id], [
        'session.save_path' => $dsn,
        'session_proxy.lock_wait_timeout' => '300',
        'session_proxy.lock_timeout_action' => 'fail',
    ]);
    lk_signal_parent("$sig/release");
    $ra = lk_result('A', sp_wait($a));

    echo 'B session_start(): ', var_export($rb['ok'] ?? null, true), "\n";
    echo 'B session active: ', var_export(($rb['status'] ?? null) === PHP_SESSION_ACTIVE, true), "\n";
    echo 'B $_SESSION: ', json_encode($rb['session'] ?? null), "\n";
    $waited = $rb['waited'] ?? 0.0;
    echo 'B waited at least 0.29 s and returned within 3 s: ', lk_check($waited >= 0.29 && $waited < 3.0, lk_s($waited)), "\n";
    $ours = array_values(array_filter(lk_errors($rb, $dsn), fn ($e) => str_contains($e, 'session_proxy:')));
    echo 'B session_proxy warnings: ', count($ours), "\n";
    $w = $ours[0] ?? '';
    echo 'is a warning: ', lk_check(str_starts_with($w, 'Warning: '), $w), "\n";
    foreach (['timed out after 300 ms', 'session_proxy.lock_wait_timeout', substr($id, 0, 6)] as $needle) {
        echo "mentions \"$needle\": ", lk_check(str_contains($w, $needle), $w), "\n";
    }
    echo 'does not reveal the whole id: ', lk_check(!str_contains($w, $id), $w), "\n";
    echo "B errors:\n";
    lk_print_errors('B', $rb, $dsn);
    echo 'A started: ', var_export($ra['ok'] ?? null, true), "\n";
    lk_print_errors('A', $ra, $dsn);
    echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
}
?>
--EXPECT--
== sqlite
B session_start(): false
B session active: false
B $_SESSION: []
B waited at least 0.29 s and returned within 3 s: yes
B session_proxy warnings: 1
is a warning: yes
mentions "timed out after 300 ms": yes
mentions "session_proxy.lock_wait_timeout": yes
mentions "timeou": yes
does not reveal the whole id: yes
B errors:
B: Warning: session_start(): session_proxy: timed out after 300 ms (session_proxy.lock_wait_timeout) waiting for the lock on session timeou… held by another request in <DSN>
B: Warning: session_start(): Failed to read session data: session_proxy (path: <DSN>)
A started: true
A: no errors
stored: {"v":"A"}
== files
B session_start(): false
B session active: false
B $_SESSION: []
B waited at least 0.29 s and returned within 3 s: yes
B session_proxy warnings: 1
is a warning: yes
mentions "timed out after 300 ms": yes
mentions "session_proxy.lock_wait_timeout": yes
mentions "timeou": yes
does not reveal the whole id: yes
B errors:
B: Warning: session_start(): session_proxy: timed out after 300 ms (session_proxy.lock_wait_timeout) waiting for the lock on session timeou… held by another request in <DSN>
B: Warning: session_start(): Failed to read session data: session_proxy (path: <DSN>)
A started: true
A: no errors
stored: {"v":"A"}
