--TEST--
files engine: session_destroy() from a request that does not hold the lock (locking off) while another request holds it is refused with a warning, and the holder's lock and write stand (deleting the file would free its flock)
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

$dir = sp_tmpdir('files-destroy-held');
$dsn = "files://$dir";
$sig = sp_tmpdir('files-destroy-sig');
lk_seed($dsn, 'heldfile1', ['v' => 'before']);
$a = lk_spawn('
    session_id("heldfile1");
    session_start();
    lk_signal($P["sig"] . "/locked");
    lk_await($P["sig"] . "/destroyed");
    $_SESSION["v"] = "holder";
    session_write_close();
    lk_done([]);
', ['sig' => $sig], ['session.save_path' => $dsn]);
lk_wait_signal("$sig/locked");
$b = lk_run('B', '
    session_id("heldfile1");
    session_start();
    lk_done(["destroyed" => session_destroy()]);
', [], ['session.save_path' => $dsn, 'session_proxy.locking' => '0']);
echo 'B (locking off) destroy: ', var_export($b['destroyed'] ?? null, true), "\n";
lk_print_errors('B', $b, $dsn);
// The holder's lock survived: a third request still cannot get in.
$c = lk_run('C', 'session_id("heldfile1"); lk_done(["ok" => session_start()]);', [],
    ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '200']);
echo 'C while A holds the lock: ', lk_lock_held($c, 'heldfile1'), "\n";
lk_signal_parent("$sig/destroyed");
$ra = lk_result('A', sp_wait($a));
lk_print_errors('A', $ra, $dsn);
echo 'stored: ', json_encode(lk_stored($dsn, 'heldfile1')), "\n";
?>
--EXPECT--
B (locking off) destroy: false
B: Warning: session_destroy(): session_proxy: cannot destroy session heldfi… in <DSN>: <DSN>/sess_heldfile1 is locked by another request
B: Warning: session_destroy(): Session object destruction failed
C while A holds the lock: lock held
A: no errors
stored: {"v":"holder"}
