--TEST--
Locking: session_write_close(), session_abort(), read_and_close and session_destroy() release the lock at once, not at script end
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

// How each case starts, and what it does to release the lock while the script keeps running.
$cases = [
    'write_close' => ['session_start();', '$_SESSION["v"] = "A"; $r = session_write_close();'],
    'abort' => ['session_start();', '$_SESSION["v"] = "A"; $r = session_abort();'],
    'read_and_close' => ['session_start(["read_and_close" => true]);', '$r = true;'],
    'destroy' => ['session_start();', '$_SESSION["v"] = "A"; $r = session_destroy();'],
];

foreach (sp_engines('release') as $engine => $dsn) {
    echo "== $engine\n";
    foreach ($cases as $case => [$start, $release]) {
        echo "-- $case\n";
        $sig = sp_tmpdir('release-sig');
        $id = 'rel-' . str_replace('_', '-', $case);
        lk_seed($dsn, $id, ['v' => 'seed']);

        // A: starts; unless read_and_close, waits for the parent to see that the lock is held; releases
        // it; then keeps running until B is done.
        $a = lk_spawn('
            session_id($P["id"]);
            $ok = ' . $start . '
            if ($P["probe"]) {
                lk_signal($P["sig"] . "/a-locked");
                lk_await($P["sig"] . "/probed");
            }
            ' . $release . '
            lk_signal($P["sig"] . "/a-released", ["ok" => $ok, "r" => $r, "status" => session_status()]);
            lk_await($P["sig"] . "/b-done");
            lk_done([]);
        ', ['id' => $id, 'sig' => $sig, 'probe' => $case !== 'read_and_close'], ['session.save_path' => $dsn]);

        if ($case !== 'read_and_close') {
            // Control: while A has the session open, its lock is really held.
            lk_wait_signal("$sig/a-locked");
            $probe = lk_run('probe', '
                session_id($P["id"]);
                lk_done(["ok" => session_start()]);
            ', ['id' => $id], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '200']);
            echo 'lock held before the call (a 200 ms wait fails): ', lk_lock_held($probe, $id), "\n";
            lk_signal_parent("$sig/probed");
        }

        $released = lk_wait_signal("$sig/a-released");
        echo 'A: start ', var_export($released['ok'], true), ', call returned ', var_export($released['r'], true),
            ', session active after: ', var_export($released['status'] === PHP_SESSION_ACTIVE, true), "\n";

        $rb = lk_run('B', '
            session_id($P["id"]);
            $t0 = microtime(true);
            $ok = session_start();
            $waited = microtime(true) - $t0;
            $seen = $_SESSION;
            session_write_close();
            lk_done(["ok" => $ok, "waited" => $waited, "seen" => $seen]);
        ', ['id' => $id], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '3000']);
        $running = sp_proc_status($a['proc'], false) === null;
        lk_signal_parent("$sig/b-done");
        $ra = lk_result('A', sp_wait($a));

        echo 'B session_start(): ', var_export($rb['ok'] ?? null, true), "\n";
        lk_print_errors('B', $rb, $dsn);
        $waited = $rb['waited'] ?? INF;
        echo 'B got the lock at once (< 0.5 s): ', lk_check($waited < 0.5, lk_s($waited)), "\n";
        echo 'A was still running: ', var_export($running, true), "\n";
        lk_print_errors('A', $ra, $dsn);
        echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";
        echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
    }
}
?>
--EXPECT--
== sqlite
-- write_close
lock held before the call (a 200 ms wait fails): lock held
A: start true, call returned true, session active after: false
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
A was still running: true
A: no errors
B saw: {"v":"A"}
stored: {"v":"A"}
-- abort
lock held before the call (a 200 ms wait fails): lock held
A: start true, call returned true, session active after: false
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
A was still running: true
A: no errors
B saw: {"v":"seed"}
stored: {"v":"seed"}
-- read_and_close
A: start true, call returned true, session active after: false
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
A was still running: true
A: no errors
B saw: {"v":"seed"}
stored: {"v":"seed"}
-- destroy
lock held before the call (a 200 ms wait fails): lock held
A: start true, call returned true, session active after: false
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
A was still running: true
A: no errors
B saw: []
stored: []
== files
-- write_close
lock held before the call (a 200 ms wait fails): lock held
A: start true, call returned true, session active after: false
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
A was still running: true
A: no errors
B saw: {"v":"A"}
stored: {"v":"A"}
-- abort
lock held before the call (a 200 ms wait fails): lock held
A: start true, call returned true, session active after: false
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
A was still running: true
A: no errors
B saw: {"v":"seed"}
stored: {"v":"seed"}
-- read_and_close
A: start true, call returned true, session active after: false
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
A was still running: true
A: no errors
B saw: {"v":"seed"}
stored: {"v":"seed"}
-- destroy
lock held before the call (a 200 ms wait fails): lock held
A: start true, call returned true, session active after: false
B session_start(): true
B: no errors
B got the lock at once (< 0.5 s): yes
A was still running: true
A: no errors
B saw: []
stored: []
