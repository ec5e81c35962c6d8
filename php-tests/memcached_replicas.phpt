--TEST--
Memcached engine replicas: with replicas=1 over 3 servers each session is on 2 of them; killing one server loses no session, reads and writes go on (the dead server is skipped after the timeout)
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

$ports = [21241, 21242, 21243];
$srv = array_map(fn ($p) => mc_server($p), $ports);
$dsn = mc_dsn($ports, 'replicas=1&timeout=300&retry=5000', $prefix);
$ids = array_map(fn ($i) => "repl$i", range(1, 30));
$w = lk_run('writer', '
    foreach ($P["ids"] as $i => $id) { session_id($id); session_start(); $_SESSION["i"] = $i; session_write_close(); }
    lk_done([]);
', ['ids' => $ids], ['session.save_path' => $dsn]);
lk_print_errors('writer', $w, $dsn);
$copies = array_map(fn ($id) => count(array_filter($ports, fn ($p) => mc_get($p, $prefix . $id) !== null)), $ids);
echo 'copies per session: ', json_encode(array_count_values($copies)), "\n";

sp_server_kill($srv[1]);
$r = lk_run('reader', '
    $ok = 0; $t0 = microtime(true);
    foreach ($P["ids"] as $i => $id) { session_id($id); if (session_start()) { $ok += (int) (($_SESSION["i"] ?? -1) === $i); $_SESSION["again"] = 1; session_write_close(); } }
    lk_done(["ok" => $ok, "t" => microtime(true) - $t0]);
', ['ids' => $ids], ['session.save_path' => $dsn]);
lk_print_errors('reader', $r, $dsn);
echo 'sessions intact with one server killed: ', $r['ok'], " of 30\n";
echo 'all 30 cycles in < 5 s: ', lk_check($r['t'] < 5, lk_s($r['t'])), "\n";
$r = lk_run('reader2', '
    $ok = 0;
    foreach ($P["ids"] as $i => $id) { session_id($id); session_start(); $ok += (int) (($_SESSION["again"] ?? 0) === 1); session_write_close(); }
    lk_done(["ok" => $ok]);
', ['ids' => $ids], ['session.save_path' => $dsn]);
lk_print_errors('reader2', $r, $dsn);
echo 'writes during the outage kept: ', $r['ok'], " of 30\n";
?>
--EXPECT--
writer: no errors
copies per session: {"2":30}
reader: no errors
sessions intact with one server killed: 30 of 30
all 30 cycles in < 5 s: yes
reader2: no errors
writes during the outage kept: 30 of 30
