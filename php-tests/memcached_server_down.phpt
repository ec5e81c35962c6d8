--TEST--
Memcached engine: a server that goes down gives a warning naming host:port and the cause, session_start() false; when it is back the handler recovers on its own (same process, pooled connection)
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

// A free port: a fixed one may be another memcached's on a shared machine (then 'down' never happens).
$s = stream_socket_server('tcp://127.0.0.1:0');
$port = (int) substr(strrchr(stream_socket_get_name($s, false), ':'), 1);
fclose($s);
$srv = mc_server($port);
$dsn = mc_dsn([$port], 'timeout=300&retry=200');
$sig = sp_tmpdir('mc-down-sig');
// One long-lived child: three requests in one process (the pooled connection survives between them).
$c = lk_spawn('
    $out = [];
    foreach (["up", "down", "back"] as $phase) {
        lk_await($P["sig"] . "/$phase");
        usleep(300000);
        session_id("down1");
        $ok = session_start();
        if ($ok) { $_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1; session_write_close(); }
        $out[$phase] = ["ok" => $ok, "n" => $_SESSION["n"] ?? null];
        $_SESSION = [];
        lk_signal($P["sig"] . "/$phase-done");
    }
    lk_done(["out" => $out]);
', ['sig' => $sig], ['session.save_path' => $dsn]);
lk_signal_parent("$sig/up");
lk_wait_signal("$sig/up-done");
sp_server_kill($srv);
lk_signal_parent("$sig/down");
lk_wait_signal("$sig/down-done");
$srv = mc_server($port);
lk_signal_parent("$sig/back");
$r = lk_result('child', sp_wait($c));
foreach ($r['out'] as $phase => $o) {
    echo "$phase: session_start ", var_export($o['ok'], true), ', n=', json_encode($o['n']), "\n";
}
foreach (lk_errors($r, $dsn) as $e) {
    echo str_replace((string) $port, 'PORT', $e), "\n";
}
?>
--EXPECTF--
up: session_start true, n=1
down: session_start false, n=null
back: session_start true, n=1
Warning: session_start(): session_proxy: cannot lock session down1 in memcached://127.0.0.1:PORT: memcached server 127.0.0.1:PORT: %s
Warning: session_start(): Failed to read session data: session_proxy (path: <DSN>)
