--TEST--
Memcached engine: a server that stops answering (SIGSTOP) costs at most the timeout= option, with a warning naming host:port and the timeout; it works again once it answers
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

$port = 21235;
$srv = mc_server($port);
$dsn = mc_dsn([$port], 'timeout=300&retry=100');
lk_seed($dsn, 'stall1', ['v' => 1]);
$pid = proc_get_status($srv['proc'])['pid'];
posix_kill_or_exec($pid, 'STOP');
$r = lk_run('stalled', '
    session_id("stall1");
    $t0 = microtime(true);
    $ok = session_start();
    lk_done(["ok" => $ok, "t" => microtime(true) - $t0]);
', [], ['session.save_path' => $dsn]);
posix_kill_or_exec($pid, 'CONT');
echo 'session_start: ', var_export($r['ok'], true), "\n";
echo 'gave up after 0.3 s, within 1.5 s: ', lk_check($r['t'] >= 0.28 && $r['t'] < 1.5, lk_s($r['t'])), "\n";
foreach (lk_errors($r, $dsn) as $e) {
    echo str_replace((string) $port, 'PORT', $e), "\n";
}
echo 'after SIGCONT: ', json_encode(lk_stored($dsn, 'stall1')), "\n";

function posix_kill_or_exec(int $pid, string $sig): void
{
    exec("kill -$sig $pid");
}
?>
--EXPECT--
session_start: false
gave up after 0.3 s, within 1.5 s: yes
Warning: session_start(): session_proxy: cannot lock session stall1 in memcached://127.0.0.1:PORT: memcached server 127.0.0.1:PORT: read failed: no answer within 300 ms (timeout)
Warning: session_start(): Failed to read session data: session_proxy (path: <DSN>)
after SIGCONT: {"v":1}
