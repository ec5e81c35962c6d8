--TEST--
Locking: a waiting request gets the lock only when the holder releases it, and sees the holder's write
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

foreach (sp_engines('handover') as $engine => $dsn) {
    echo "== $engine\n";
    $sig = sp_tmpdir('handover-sig');
    $id = 'handover1';
    lk_seed($dsn, $id, ['n' => 1, 'by' => 'seed']);

    // A: takes the lock, waits until B is about to call session_start(), keeps the lock 1 s more,
    // then writes and releases.
    $a = lk_spawn('
        session_id($P["id"]);
        $ok = session_start();
        $seen = $_SESSION;
        lk_signal($P["sig"] . "/a-locked");
        lk_await($P["sig"] . "/b-ready");
        usleep(1000000);
        $_SESSION["n"]++;
        $_SESSION["by"] = "A";
        $release = microtime(true);
        session_write_close();
        lk_done(["ok" => $ok, "seen" => $seen, "release" => $release]);
    ', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn]);
    lk_wait_signal("$sig/a-locked");

    // B: started once A holds the lock.
    $b = lk_spawn('
        session_id($P["id"]);
        lk_signal($P["sig"] . "/b-ready");
        $t0 = microtime(true);
        $ok = session_start();
        $t1 = microtime(true);
        $seen = $_SESSION;
        session_write_close();
        lk_done(["ok" => $ok, "seen" => $seen, "waited" => $t1 - $t0, "acquired" => $t1]);
    ', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '10000']);

    $rb = lk_result('B', sp_wait($b));
    $ra = lk_result('A', sp_wait($a));

    echo 'A started: ', var_export($ra['ok'] ?? null, true), ', saw ', json_encode($ra['seen'] ?? null), "\n";
    lk_print_errors('A', $ra, $dsn);
    echo 'B started: ', var_export($rb['ok'] ?? null, true), "\n";
    lk_print_errors('B', $rb, $dsn);
    $waited = $rb['waited'] ?? 0.0;
    echo 'B waited at least 0.8 s and less than 9 s: ', lk_check($waited >= 0.8 && $waited < 9.0, lk_s($waited)), "\n";
    $gap = ($rb['acquired'] ?? 0.0) - ($ra['release'] ?? INF);
    echo 'B got the lock after A began to release it: ', lk_check($gap >= 0, lk_s($gap)), "\n";
    // The wake-up delay itself: from A's last statement before session_write_close() to B's
    // session_start() returning. B polls, backing off to 16 ms steps; the rest is A's write and
    // request end and B's read. Measured over 20 runs beside a CPU burner (2 jobs in parallel):
    // median 12 ms, worst 68 ms (sqlite 66, files 68); memcached's hand-over on the same machine
    // at load 15 (2 cores) had outliers up to 142 ms. 300 ms is 4x the worst here and 2x that
    // outlier; a hand-over that waits for A's lock to expire (30 s) or polls in steps of a few
    // hundred ms fails.
    echo 'B got the lock within 300 ms of the release: ', lk_check($gap < 0.3, lk_s($gap)), "\n";
    echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";
    echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
}
?>
--EXPECT--
== sqlite
A started: true, saw {"n":1,"by":"seed"}
A: no errors
B started: true
B: no errors
B waited at least 0.8 s and less than 9 s: yes
B got the lock after A began to release it: yes
B got the lock within 300 ms of the release: yes
B saw: {"n":2,"by":"A"}
stored: {"n":2,"by":"A"}
== files
A started: true, saw {"n":1,"by":"seed"}
A: no errors
B started: true
B: no errors
B waited at least 0.8 s and less than 9 s: yes
B got the lock after A began to release it: yes
B got the lock within 300 ms of the release: yes
B saw: {"n":2,"by":"A"}
stored: {"n":2,"by":"A"}
