--TEST--
session_proxy.locking=optimistic, two processes interleaved on one session: neither waits; changes to different keys are both kept (php, php_serialize and php_binary); a key changed by both follows session_proxy.merge_conflict (last, or first with a notice); a request that read the session before a logout does not bring it back, also when the id comes back as a new session (no strict mode); with a CPU burner alongside
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

/**
 * A opens the session, then waits while B opens, changes and writes it; then A writes. $a and $b are
 * PHP code run on $_SESSION after session_start(). Returns [A's result, B's result].
 */
function interleave(string $dsn, string $id, string $a, string $b, array $ini): array
{
    $sig = sp_tmpdir('optimistic-sig');
    $ini = ['session.save_path' => $dsn, 'session_proxy.locking' => 'optimistic'] + $ini;
    $ha = lk_spawn('
        session_id($P["id"]);
        $ok = session_start();
        lk_signal($P["sig"] . "/a-open");
        lk_await($P["sig"] . "/b-done");
        ' . $a . '
        session_write_close();
        lk_done(["ok" => $ok]);
    ', ['id' => $id, 'sig' => $sig], $ini);
    lk_wait_signal("$sig/a-open");
    $rb = lk_run('B', '
        session_id($P["id"]);
        $t0 = microtime(true);
        $ok = session_start();
        $waited = microtime(true) - $t0;
        ' . $b . '
        session_write_close();
        lk_done(["ok" => $ok, "waited" => $waited]);
    ', ['id' => $id], $ini);
    lk_signal_parent("$sig/b-done");
    $ra = lk_result('A', sp_wait($ha));
    return [$ra, $rb];
}

// One CPU kept busy alongside (bounded; stopped at the end): the interleavings must hold on a busy machine.
$burner = lk_burner(120);
foreach (sp_engines('optimistic') as $engine => $dsn) {
    echo "== $engine\n";
    foreach (['php', 'php_serialize', 'php_binary'] as $format) {
        $id = "opt" . str_replace("_", "", $format);
        $ini = ['session.serialize_handler' => $format];
        lk_run('seed', 'session_id($P["id"]); session_start(); $_SESSION = ["a" => 0, "b" => 0, "gone" => 1]; session_write_close(); lk_done([]);',
            ['id' => $id], ['session.save_path' => $dsn] + $ini);
        [$ra, $rb] = interleave($dsn, $id, '$_SESSION["a"] = "A"; unset($_SESSION["gone"]);', '$_SESSION["b"] = "B"; $_SESSION["new"] = [1, 2];', $ini);
        echo "-- $format\n";
        echo 'B did not wait for A (< 1 s): ', lk_check(($rb['waited'] ?? INF) < 1.0, lk_s($rb['waited'] ?? INF)), "\n";
        lk_print_errors('A', $ra, $dsn);
        lk_print_errors('B', $rb, $dsn);
        $stored = lk_run('reader', 'session_id($P["id"]); session_start(["read_and_close" => true]); lk_done(["data" => $_SESSION]);',
            ['id' => $id], ['session.save_path' => $dsn, 'session_proxy.locking' => '0'] + $ini)['data'] ?? null;
        ksort($stored);
        echo 'stored: ', json_encode($stored), "\n";
    }
    foreach (['last', 'first'] as $policy) {
        $id = "optconflict$policy";
        lk_seed($dsn, $id, ['k' => 0]);
        [$ra, $rb] = interleave($dsn, $id, '$_SESSION["k"] = "A";', '$_SESSION["k"] = "B";', ['session_proxy.merge_conflict' => $policy]);
        echo "-- both change k, merge_conflict=$policy\n";
        lk_print_errors('A', $ra, $dsn);
        echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
    }
    // References between keys: the session is one unit, so the two requests' changes conflict and
    // merge_conflict=last keeps A's whole session (B's change to another key is lost: the README says so).
    $id = 'optrefs';
    lk_run('seed', 'session_id($P["id"]); session_start(); $x = [1]; $_SESSION["a"] = &$x; $_SESSION["b"] = &$x; session_write_close(); lk_done([]);',
        ['id' => $id], ['session.save_path' => $dsn]);
    [$ra, $rb] = interleave($dsn, $id, '$_SESSION["c"] = "A";', '$_SESSION["d"] = "B";', []);
    echo "-- references between keys: one unit\n";
    lk_print_errors('A', $ra, $dsn);
    $stored = lk_stored($dsn, $id);
    ksort($stored);
    echo 'stored: ', json_encode($stored), "\n";
    $id = 'optlogout';
    lk_seed($dsn, $id, ['uid' => 7]);
    [$ra, $rb] = interleave($dsn, $id, '$_SESSION["cart"] = 1;', 'session_destroy(); $_SESSION = [];', []);
    echo "-- B logs out while A is open\n";
    lk_print_errors('A', $ra, $dsn);
    lk_print_errors('B', $rb, $dsn);
    echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
    // Without strict mode the same id comes back as a new session (B logs out, then starts again with
    // the old cookie): A's late write must not carry its change into that new session (the tombstone).
    $id = 'optagain';
    lk_seed($dsn, $id, ['uid' => 7]);
    [$ra, $rb] = interleave($dsn, $id, '$_SESSION["admin"] = 1;',
        'session_destroy(); session_id($P["id"]); session_start(); $_SESSION["visits"] = 1;', ['session.use_strict_mode' => '0']);
    echo "-- B logs out and starts again under the same id while A is open\n";
    lk_print_errors('A', $ra, $dsn);
    lk_print_errors('B', $rb, $dsn);
    echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
}
lk_burner_stop($burner);
?>
--EXPECTF--
== sqlite
-- php
B did not wait for A (< 1 s): yes
A: no errors
B: no errors
stored: {"a":"A","b":"B","new":[1,2]}
-- php_serialize
B did not wait for A (< 1 s): yes
A: no errors
B: no errors
stored: {"a":"A","b":"B","new":[1,2]}
-- php_binary
B did not wait for A (< 1 s): yes
A: no errors
B: no errors
stored: {"a":"A","b":"B","new":[1,2]}
-- both change k, merge_conflict=last
A: no errors
stored: {"k":"A"}
-- both change k, merge_conflict=first
A: Notice: session_write_close(): session_proxy: session optcon…: 1 key(s) changed by this request were changed by another request too; the stored values were kept (session_proxy.merge_conflict=first)
stored: {"k":"B"}
-- references between keys: one unit
A: no errors
stored: {"a":[1],"b":[1],"c":"A"}
-- B logs out while A is open
A: Notice: session_write_close(): session_proxy: session optlog… was destroyed by another request after this request read it; its changes were not saved, so that a logout stays a logout
B: no errors
stored: []
-- B logs out and starts again under the same id while A is open
A: Notice: session_write_close(): session_proxy: session optaga… was destroyed by another request after this request read it; its changes were not saved, so that a logout stays a logout
B: no errors
stored: {"visits":1}
== files
-- php
B did not wait for A (< 1 s): yes
A: no errors
B: no errors
stored: {"a":"A","b":"B","new":[1,2]}
-- php_serialize
B did not wait for A (< 1 s): yes
A: no errors
B: no errors
stored: {"a":"A","b":"B","new":[1,2]}
-- php_binary
B did not wait for A (< 1 s): yes
A: no errors
B: no errors
stored: {"a":"A","b":"B","new":[1,2]}
-- both change k, merge_conflict=last
A: no errors
stored: {"k":"A"}
-- both change k, merge_conflict=first
A: Notice: session_write_close(): session_proxy: session optcon…: 1 key(s) changed by this request were changed by another request too; the stored values were kept (session_proxy.merge_conflict=first)
stored: {"k":"B"}
-- references between keys: one unit
A: no errors
stored: {"a":[1],"b":[1],"c":"A"}
-- B logs out while A is open
A: Notice: session_write_close(): session_proxy: session optlog… was destroyed by another request after this request read it; its changes were not saved, so that a logout stays a logout
B: no errors
stored: []
-- B logs out and starts again under the same id while A is open
A: Notice: session_write_close(): session_proxy: session optaga… was destroyed by another request after this request read it; its changes were not saved, so that a logout stays a logout
B: no errors
stored: {"visits":1}
