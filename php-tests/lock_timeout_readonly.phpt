--TEST--
Locking: lock_timeout_action=readonly opens the session read-only after the wait; its changes are refused with a notice
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

foreach (sp_engines('toro') as $engine => $dsn) {
    echo "== $engine\n";
    $sig = sp_tmpdir('toro-sig');
    $id = 'readonly77';
    lk_seed($dsn, $id, ['n' => 1, 'by' => 'seed']);

    // A: holds the lock until the parent releases it, then increments and writes.
    $a = lk_spawn('
        session_id($P["id"]);
        $ok = session_start();
        lk_signal($P["sig"] . "/a-locked");
        lk_await($P["sig"] . "/release");
        $_SESSION["n"]++;
        $_SESSION["by"] = "A";
        session_write_close();
        lk_done(["ok" => $ok]);
    ', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn]);
    lk_wait_signal("$sig/a-locked");

    // B: times out after 300 ms, opens read-only, changes $_SESSION and writes.
    $rb = lk_run('B', '
        session_id($P["id"]);
        $t0 = microtime(true);
        $ok = session_start();
        $waited = microtime(true) - $t0;
        $start_errors = $GLOBALS["lk_errors"];
        $GLOBALS["lk_errors"] = [];
        $seen = $_SESSION;
        $_SESSION["n"] = 99;
        $_SESSION["by"] = "B";
        $closed = session_write_close();
        lk_done(["ok" => $ok, "waited" => $waited, "seen" => $seen, "start_errors" => $start_errors,
                 "closed" => $closed, "status" => session_status()]);
    ', ['id' => $id], [
        'session.save_path' => $dsn,
        'session_proxy.lock_wait_timeout' => '300',
        'session_proxy.lock_timeout_action' => 'readonly',
    ]);

    // While A still holds the lock: B's change is not in the store, and B's close left A's lock alone.
    $stored_before = lk_stored($dsn, $id);
    $rc = lk_run('C', '
        session_id($P["id"]);
        $ok = session_start();
        lk_done(["ok" => $ok]);
    ', ['id' => $id], [
        'session.save_path' => $dsn,
        'session_proxy.lock_wait_timeout' => '200',
        'session_proxy.lock_timeout_action' => 'fail',
    ]);
    lk_signal_parent("$sig/release");
    $ra = lk_result('A', sp_wait($a));

    echo 'B session_start(): ', var_export($rb['ok'] ?? null, true), "\n";
    $waited = $rb['waited'] ?? 0.0;
    echo 'B waited at least 0.29 s and returned within 3 s: ', lk_check($waited >= 0.29 && $waited < 3.0, lk_s($waited)), "\n";
    echo "B at session_start():\n";
    lk_print_errors('B', ['errors' => $rb['start_errors'] ?? []], $dsn);
    $w = lk_errors(['errors' => $rb['start_errors'] ?? []], $dsn)[0] ?? '';
    echo 'says it opened read-only, with a notice (not a warning): ', lk_check(str_starts_with($w, 'Notice: ') && str_contains($w, 'read-only'), $w), "\n";
    echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";
    echo "B at session_write_close():\n";
    lk_print_errors('B', $rb, $dsn);
    $n = lk_errors($rb, $dsn)[0] ?? '';
    echo 'notice says not saved: ', lk_check(str_starts_with($n, 'Notice: ') && str_contains($n, 'were not saved'), $n), "\n";
    echo 'B session closed: ', var_export(($rb['status'] ?? null) === PHP_SESSION_NONE, true), "\n";
    echo 'stored while A holds the lock: ', json_encode($stored_before), "\n";
    echo 'C (lock_wait_timeout=200, fail) after B: ', var_export($rc['ok'] ?? null, true), "\n";
    $cw = lk_errors($rc, $dsn)[0] ?? '';
    echo 'C timed out waiting for the lock: ', lk_check(str_contains($cw, 'timed out after 200 ms'), $cw), "\n";
    echo 'A started: ', var_export($ra['ok'] ?? null, true), "\n";
    lk_print_errors('A', $ra, $dsn);
    echo 'stored after A: ', json_encode(lk_stored($dsn, $id)), "\n";
}
?>
--EXPECT--
== sqlite
B session_start(): true
B waited at least 0.29 s and returned within 3 s: yes
B at session_start():
B: Notice: session_start(): session_proxy: timed out after 300 ms (session_proxy.lock_wait_timeout) waiting for the lock on session readon… held by another request in <DSN>; opened read-only, its changes will not be saved
says it opened read-only, with a notice (not a warning): yes
B saw: {"n":1,"by":"seed"}
B at session_write_close():
B: Notice: session_write_close(): session_proxy: session readon… was opened read-only after a lock wait timeout; its changes were not saved
notice says not saved: yes
B session closed: true
stored while A holds the lock: {"n":1,"by":"seed"}
C (lock_wait_timeout=200, fail) after B: false
C timed out waiting for the lock: yes
A started: true
A: no errors
stored after A: {"n":2,"by":"A"}
== files
B session_start(): true
B waited at least 0.29 s and returned within 3 s: yes
B at session_start():
B: Notice: session_start(): session_proxy: timed out after 300 ms (session_proxy.lock_wait_timeout) waiting for the lock on session readon… held by another request in <DSN>; opened read-only, its changes will not be saved
says it opened read-only, with a notice (not a warning): yes
B saw: {"n":1,"by":"seed"}
B at session_write_close():
B: Notice: session_write_close(): session_proxy: session readon… was opened read-only after a lock wait timeout; its changes were not saved
notice says not saved: yes
B session closed: true
stored while A holds the lock: {"n":1,"by":"seed"}
C (lock_wait_timeout=200, fail) after B: false
C timed out waiting for the lock: yes
A started: true
A: no errors
stored after A: {"n":2,"by":"A"}
