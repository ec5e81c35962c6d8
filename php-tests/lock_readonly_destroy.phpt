--TEST--
Locking: a session opened read-only after a lock wait timeout cannot destroy or regenerate away the holder's session
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

foreach (sp_engines('rodestroy') as $engine => $dsn) {
    echo "== $engine\n";
    $sig = sp_tmpdir('rodestroy-sig');
    $id = 'rodestroy42';
    lk_seed($dsn, $id, ['user' => 'alice']);

    // A holds the lock until told to finish, then writes.
    $a = lk_spawn('
        session_id($P["id"]);
        $ok = session_start();
        lk_signal($P["sig"] . "/a-locked");
        lk_await($P["sig"] . "/release");
        $_SESSION["by"] = "A";
        session_write_close();
        lk_done(["ok" => $ok]);
    ', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn]);
    lk_wait_signal("$sig/a-locked");

    $ro = [
        'session.save_path' => $dsn,
        'session_proxy.lock_wait_timeout' => '200',
        'session_proxy.lock_timeout_action' => 'readonly',
    ];
    // B: read-only, tries to log the user out.
    $rb = lk_run('B', '
        session_id($P["id"]);
        session_start();
        $GLOBALS["lk_errors"] = [];
        $destroyed = session_destroy();
        lk_done(["destroyed" => $destroyed]);
    ', ['id' => $id], $ro);
    // C: read-only, regenerates with delete of the old id.
    $rc = lk_run('C', '
        session_id($P["id"]);
        session_start();
        $GLOBALS["lk_errors"] = [];
        $regenerated = session_regenerate_id(true);
        lk_done(["regenerated" => $regenerated]);
    ', ['id' => $id], $ro);

    echo 'stored while A holds the lock: ', json_encode(lk_stored($dsn, $id)), "\n";
    lk_signal_parent("$sig/release");
    $ra = lk_result('A', sp_wait($a));

    echo 'B session_destroy(): ', var_export($rb['destroyed'] ?? null, true), "\n";
    lk_print_errors('B', $rb, $dsn);
    echo 'C session_regenerate_id(true): ', var_export($rc['regenerated'] ?? null, true), "\n";
    lk_print_errors('C', $rc, $dsn);
    echo 'A: ', var_export($ra['ok'] ?? null, true), "\n";
    echo 'stored after A: ', json_encode(lk_stored($dsn, $id)), "\n";
}
?>
--EXPECTF--
== sqlite
stored while A holds the lock: {"user":"alice"}
B session_destroy(): false
B: Warning: session_destroy(): session_proxy: session rodest… was opened read-only after a lock wait timeout; it was not destroyed
B: Warning: session_destroy(): Session object destruction failed
C session_regenerate_id(true): false
C: Warning: session_regenerate_id(): session_proxy: session rodest… was opened read-only after a lock wait timeout; it was not destroyed
C: Warning: session_regenerate_id(): Session object destruction failed. ID: session_proxy (path: <DSN>)
A: true
stored after A: {"user":"alice","by":"A"}
== files
stored while A holds the lock: {"user":"alice"}
B session_destroy(): false
B: Warning: session_destroy(): session_proxy: session rodest… was opened read-only after a lock wait timeout; it was not destroyed
B: Warning: session_destroy(): Session object destruction failed
C session_regenerate_id(true): false
C: Warning: session_regenerate_id(): session_proxy: session rodest… was opened read-only after a lock wait timeout; it was not destroyed
C: Warning: session_regenerate_id(): Session object destruction failed. ID: session_proxy (path: <DSN>)
A: true
stored after A: {"user":"alice","by":"A"}
