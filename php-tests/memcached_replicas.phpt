--TEST--
Memcached engine replicas: with replicas=1 over 3 servers each session is on 2 of them; one server replaced by one that accepts and never answers loses no session, reads and writes go on, and that server is asked once, then skipped after its timeout
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

// The server stops answering (a hung host, a full accept queue behind a load balancer): a local
// server that is killed refuses at once and would never run the timeout path. Its stand-in accepts
// every connection and reads what is sent, never answering; it notes each connection that sent a
// request, and lives 60 s at most.
sp_server_kill($srv[1]);
$asked = sp_tmpdir('mc-hung') . '/asked';
$hung = sp_server_start([sp_php_binary(), '-n', '-r', '
    [, $port, $file] = $argv;
    $l = stream_socket_server("tcp://127.0.0.1:$port", $no, $err);
    $conns = []; $asked = []; $end = microtime(true) + 60;
    while (microtime(true) < $end) {
        $r = array_merge([$l], $conns); $w = $e = null;
        if (!stream_select($r, $w, $e, 0, 200000)) continue;
        foreach ($r as $s) {
            if ($s === $l) { $conns[] = stream_socket_accept($l); continue; }
            $k = array_search($s, $conns, true);
            if (fread($s, 65536) === "") { fclose($s); unset($conns[$k]); continue; }
            $asked[$k] = 1;
            file_put_contents("$file.tmp", count($asked)); rename("$file.tmp", $file);
        }
    }
', (string) $ports[1], $asked], $ports[1]);
$r = lk_run('reader', '
    $ok = 0; $t0 = microtime(true);
    foreach ($P["ids"] as $i => $id) { session_id($id); if (session_start()) { $ok += (int) (($_SESSION["i"] ?? -1) === $i); $_SESSION["again"] = 1; session_write_close(); } }
    lk_done(["ok" => $ok, "t" => microtime(true) - $t0]);
', ['ids' => $ids], ['session.save_path' => $dsn]);
lk_print_errors('reader', $r, $dsn);
echo 'sessions intact with one server not answering: ', $r['ok'], " of 30\n";
// Counted, not timed: each cycle whose replica is the hung server would ask it again on a new
// connection if it were not skipped (retry=5000 outlasts the reader's run by far).
echo 'connections that asked the hung server: ', @file_get_contents($asked), "\n";
// The one timeout (300 ms) was waited for: the reader cannot have been faster.
echo 'reader waited out the timeout: ', lk_check($r['t'] >= 0.3, lk_s($r['t'])), "\n";
$r = lk_run('reader2', '
    $ok = 0;
    foreach ($P["ids"] as $i => $id) { session_id($id); session_start(); $ok += (int) (($_SESSION["again"] ?? 0) === 1); session_write_close(); }
    lk_done(["ok" => $ok]);
', ['ids' => $ids], ['session.save_path' => $dsn]);
lk_print_errors('reader2', $r, $dsn);
echo 'writes during the outage kept: ', $r['ok'], " of 30\n";
sp_server_kill($hung);
?>
--EXPECT--
writer: no errors
copies per session: {"2":30}
reader: no errors
sessions intact with one server not answering: 30 of 30
connections that asked the hung server: 1
reader waited out the timeout: yes
reader2: no errors
writes during the outage kept: 30 of 30
