--TEST--
Locking: a holder killed with SIGKILL: files frees its lock at once, SQLite honours the lock row until lock_expire; data intact
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

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
    if ($engine === 'files') {
        // flock dies with its process: no waiting at all.
        echo 'B got the lock at once (< 1 s): ', lk_check($waited < 1.0, lk_s($waited)), "\n";
    } else {
        // The lock row outlives A: B may only take it once it expired, 2 s after A took it.
        $since = ($rb['acquired'] ?? 0.0) - $locked['before'];
        echo 'B got the lock no earlier than 2 s after A took it: ', lk_check($since >= 1.95, lk_s($since)), "\n";
        echo 'and within 4 s after A took it: ', lk_check($since < 4.0, lk_s($since)), "\n";
    }
    echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";
    echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
}
?>
--EXPECT--
== sqlite
A held the lock: true
A killed by SIGKILL: true
A printed: ""
B session_start(): true
B: no errors
B got the lock no earlier than 2 s after A took it: yes
and within 4 s after A took it: yes
B saw: {"v":"before-kill"}
stored: {"v":"before-kill","v2":"B"}
== files
A held the lock: true
A killed by SIGKILL: true
A printed: ""
B session_start(): true
B: no errors
B got the lock at once (< 1 s): yes
B saw: {"v":"before-kill"}
stored: {"v":"before-kill","v2":"B"}
