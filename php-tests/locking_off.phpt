--TEST--
Locking off (session_proxy.locking=0): a second request does not wait for the first; last writer wins
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

// [A's locking, B's locking]: both off, and A locking while B has locking off.
$scenarios = ['both off' => ['0', '0'], 'A on, B off' => ['1', '0']];

foreach (sp_engines('lockoff') as $engine => $dsn) {
    echo "== $engine\n";
    foreach ($scenarios as $name => [$a_locking, $b_locking]) {
        echo "-- $name\n";
        $sig = sp_tmpdir('lockoff-sig');
        $id = 'lockoff' . $a_locking . $b_locking;
        lk_seed($dsn, $id, ['v' => 'seed', 'n' => 1]);

        // A: has the session open until the parent says B is done, then writes.
        $a = lk_spawn('
            session_id($P["id"]);
            $ok = session_start();
            lk_signal($P["sig"] . "/a-started");
            lk_await($P["sig"] . "/release");
            $_SESSION["v"] = "A";
            $_SESSION["n"]++;
            session_write_close();
            lk_done(["ok" => $ok]);
        ', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn, 'session_proxy.locking' => $a_locking]);
        lk_wait_signal("$sig/a-started");

        // B: were it to wait for A, it would fail after 2 s (A only finishes after B).
        $rb = lk_run('B', '
            session_id($P["id"]);
            $t0 = microtime(true);
            $ok = session_start();
            $waited = microtime(true) - $t0;
            $seen = $_SESSION;
            $_SESSION["v"] = "B";
            $_SESSION["n"]++;
            session_write_close();
            lk_done(["ok" => $ok, "waited" => $waited, "seen" => $seen]);
        ', ['id' => $id], [
            'session.save_path' => $dsn,
            'session_proxy.locking' => $b_locking,
            'session_proxy.lock_wait_timeout' => '2000',
        ]);
        $stored_mid = lk_stored($dsn, $id);
        lk_signal_parent("$sig/release");
        $ra = lk_result('A', sp_wait($a));

        echo 'B session_start(): ', var_export($rb['ok'] ?? null, true), "\n";
        lk_print_errors('B', $rb, $dsn);
        $waited = $rb['waited'] ?? INF;
        echo 'B did not wait for A (< 1 s): ', lk_check($waited < 1.0, lk_s($waited)), "\n";
        echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";
        echo 'stored after B, A still open: ', json_encode($stored_mid), "\n";
        echo 'A session_start(): ', var_export($ra['ok'] ?? null, true), "\n";
        lk_print_errors('A', $ra, $dsn);
        echo 'stored after A: ', json_encode(lk_stored($dsn, $id)), "\n";
    }
}
?>
--EXPECT--
== sqlite
-- both off
B session_start(): true
B: no errors
B did not wait for A (< 1 s): yes
B saw: {"v":"seed","n":1}
stored after B, A still open: {"v":"B","n":2}
A session_start(): true
A: no errors
stored after A: {"v":"A","n":2}
-- A on, B off
B session_start(): true
B: no errors
B did not wait for A (< 1 s): yes
B saw: {"v":"seed","n":1}
stored after B, A still open: {"v":"B","n":2}
A session_start(): true
A: no errors
stored after A: {"v":"A","n":2}
== files
-- both off
B session_start(): true
B: no errors
B did not wait for A (< 1 s): yes
B saw: {"v":"seed","n":1}
stored after B, A still open: {"v":"B","n":2}
A session_start(): true
A: no errors
stored after A: {"v":"A","n":2}
-- A on, B off
B session_start(): true
B: no errors
B did not wait for A (< 1 s): yes
B saw: {"v":"seed","n":1}
stored after B, A still open: {"v":"B","n":2}
A session_start(): true
A: no errors
stored after A: {"v":"A","n":2}
