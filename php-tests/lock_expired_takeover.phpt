--TEST--
Locking: SQLite lets a request take over a lock older than lock_expire and refuses the old holder's write; files locks never expire
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

foreach (sp_engines('takeover') as $engine => $dsn) {
    echo "== $engine\n";
    $sig = sp_tmpdir('takeover-sig');
    $id = 'takeover5';
    lk_seed($dsn, $id, ['v' => 'seed']);

    // A: lock_expire=1; holds the lock until the parent releases it, then writes "A".
    $a = lk_spawn('
        session_id($P["id"]);
        $before = microtime(true);
        $ok = session_start();
        lk_signal($P["sig"] . "/a-locked", ["ok" => $ok, "before" => $before]);
        lk_await($P["sig"] . "/release");
        $_SESSION["v"] = "A";
        $release = microtime(true);
        session_write_close();
        lk_done(["ok" => $ok, "release" => $release]);
    ', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn, 'session_proxy.lock_expire' => '1']);
    $locked = lk_wait_signal("$sig/a-locked");
    echo 'A holds the lock: ', var_export($locked['ok'], true), "\n";

    // B starts once A's lock is 1.3 s old, i.e. expired.
    while (microtime(true) < $locked['before'] + 1.3) {
        usleep(10000);
    }
    $b = lk_spawn('
        session_id($P["id"]);
        lk_signal($P["sig"] . "/b-ready");
        $t0 = microtime(true);
        $ok = session_start();
        $t1 = microtime(true);
        lk_signal($P["sig"] . "/b-acquired");
        $seen = $_SESSION;
        $_SESSION["v"] = "B";
        session_write_close();
        lk_done(["ok" => $ok, "waited" => $t1 - $t0, "acquired" => $t1, "seen" => $seen]);
    ', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '10000']);

    if ($engine === 'sqlite') {
        // B takes the expired lock over at once and writes while A still runs.
        $rb = lk_result('B', sp_wait($b));
        lk_signal_parent("$sig/release");
        $ra = lk_result('A', sp_wait($a));
        echo 'B session_start(): ', var_export($rb['ok'] ?? null, true), "\n";
        lk_print_errors('B', $rb, $dsn);
        $waited = $rb['waited'] ?? INF;
        echo 'B took the expired lock over at once (< 1 s): ', lk_check($waited < 1.0, lk_s($waited)), "\n";
        echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";
        echo 'A finished after B: ', lk_check(($ra['release'] ?? 0) > ($rb['acquired'] ?? INF)), "\n";
        lk_print_errors('A', $ra, $dsn);
        $w = lk_errors($ra, $dsn)[0] ?? '';
        foreach (['Warning: ', 'session_proxy.lock_expire', 'took it over', 'not saved'] as $needle) {
            echo "A's warning mentions \"$needle\": ", lk_check(str_contains($w, $needle), $w), "\n";
        }
    } else {
        // flock has no expiry: B keeps waiting while A holds the lock, however old it is.
        lk_wait_signal("$sig/b-ready");
        usleep(1000000);
        echo 'B still waiting 1 s later: ', var_export(!file_exists("$sig/b-acquired"), true), "\n";
        lk_signal_parent("$sig/release");
        $ra = lk_result('A', sp_wait($a));
        $rb = lk_result('B', sp_wait($b));
        lk_print_errors('A', $ra, $dsn);
        echo 'B session_start(): ', var_export($rb['ok'] ?? null, true), "\n";
        lk_print_errors('B', $rb, $dsn);
        $gap = ($rb['acquired'] ?? 0.0) - ($ra['release'] ?? INF);
        echo 'B got the lock after A began to release it: ', lk_check($gap >= 0, lk_s($gap)), "\n";
        echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";
    }
    echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
}
?>
--EXPECT--
== sqlite
A holds the lock: true
B session_start(): true
B: no errors
B took the expired lock over at once (< 1 s): yes
B saw: {"v":"seed"}
A finished after B: yes
A: Warning: session_write_close(): session_proxy: the lock on session takeov… expired after 1 s (session_proxy.lock_expire) and another request took it over; this request's changes were not saved
A: Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (<DSN>)
A's warning mentions "Warning: ": yes
A's warning mentions "session_proxy.lock_expire": yes
A's warning mentions "took it over": yes
A's warning mentions "not saved": yes
stored: {"v":"B"}
== files
A holds the lock: true
B still waiting 1 s later: true
A: no errors
B session_start(): true
B: no errors
B got the lock after A began to release it: yes
B saw: {"v":"A"}
stored: {"v":"B"}
