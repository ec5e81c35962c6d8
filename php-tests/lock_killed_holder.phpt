--TEST--
Locking: a holder killed with SIGKILL frees its lock at once (files: its flock; SQLite: the kernel lock byte beside its lock row); a holder on another host keeps it until lock_expire; data intact
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';
require_once __DIR__ . '/inc/lifecycle.inc';

foreach (sp_engines('killed') as $engine => $dsn) {
    echo "== $engine\n";
    $sig = sp_tmpdir('killed-sig');
    $id = 'killedholder9';
    $ini = ['session.save_path' => $dsn, 'session_proxy.lock_expire' => '2'];
    lk_seed($dsn, $id, ['v' => 'before-kill']);

    // A: takes the lock, changes $_SESSION (never written), signals, then hangs until killed.
    $a = lk_spawn('
        session_id($P["id"]);
        $before = microtime(true);
        $ok = session_start();
        $_SESSION["v"] = "changed-by-A";
        lk_signal($P["sig"] . "/a-locked", ["ok" => $ok, "before" => $before, "seen" => $_SESSION]);
        lk_await($P["sig"] . "/never", 15.0);
    ', ['id' => $id, 'sig' => $sig], $ini);
    $locked = lk_wait_signal("$sig/a-locked");
    exec('kill -9 ' . (int) $a['pid'], $_, $rc);
    $st = sp_proc_status($a['proc']);
    echo 'A held the lock: ', var_export($locked['ok'], true), "\n";
    echo 'A killed by SIGKILL: ', var_export($rc === 0 && ($st['signal'] ?? 0) === 9, true), "\n";
    $out = sp_wait($a, SP_KILLED);
    echo 'A printed: ', json_encode($out), "\n";

    $rb = lk_run('B', '
        session_id($P["id"]);
        $t0 = microtime(true);
        $ok = session_start();
        $t1 = microtime(true);
        $seen = $_SESSION;
        $_SESSION["v2"] = "B";
        session_write_close();
        lk_done(["ok" => $ok, "waited" => $t1 - $t0, "acquired" => $t1, "seen" => $seen]);
    ', ['id' => $id], $ini + ['session_proxy.lock_wait_timeout' => '10000']);

    echo 'B session_start(): ', var_export($rb['ok'] ?? null, true), "\n";
    lk_print_errors('B', $rb, $dsn);
    $waited = $rb['waited'] ?? INF;
    // flock, and the lock byte that SQLite's lock row comes with, die with their process: B does
    // not wait for the 2 s lock_expire. 0.5 s leaves room for a loaded machine; measured: < 10 ms.
    echo 'B got the lock at once (< 0.5 s): ', lk_check($waited < 0.5, lk_s($waited)), "\n";
    echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";
    echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
}

// A holder on another host cannot be checked: its lock frees at lock_expire, as before. (Its token
// names another host: the lock row is written here as that host's request would have.)
echo "== sqlite, a holder on another host\n";
$dsn = sp_engines('killed-foreign')['sqlite'];
lk_seed($dsn, 'foreignheld', ['v' => 'kept']);
$t = microtime(true);
sp_sql(sp_dsn_path($dsn), 'INSERT INTO session_locks (id, owner, expires_at) VALUES (?, ?, ?)',
    ['foreignheld', str_repeat('ab', 16) . '-0123456789abcdef-4242-1', $t + 2.0]);
$rb = lk_run('B', '
    session_id("foreignheld");
    $ok = session_start();
    $t1 = microtime(true);
    $seen = $_SESSION;
    session_write_close();
    lk_done(["ok" => $ok, "acquired" => $t1, "seen" => $seen]);
', [], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '10000']);
lk_print_errors('B', $rb, $dsn);
$since = ($rb['acquired'] ?? 0.0) - $t;
echo 'B got the lock no earlier than its expiry, 2 s: ', lk_check($since >= 1.95, lk_s($since)), "\n";
echo 'and within 4 s: ', lk_check($since < 4.0, lk_s($since)), "\n";
echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";
?>
--EXPECT--
== sqlite
A held the lock: true
A killed by SIGKILL: true
A printed: ""
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
B saw: {"v":"before-kill"}
stored: {"v":"before-kill","v2":"B"}
== files
A held the lock: true
A killed by SIGKILL: true
A printed: ""
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
B saw: {"v":"before-kill"}
stored: {"v":"before-kill","v2":"B"}
== sqlite, a holder on another host
B: no errors
B got the lock no earlier than its expiry, 2 s: yes
and within 4 s: yes
B saw: {"v":"kept"}
