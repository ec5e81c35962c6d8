--TEST--
Redis engine: a server that is down costs one prompt warning naming host:port and the cause (no password); when it is back, the same PHP process recovers on its own (persistent connection replaced)
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$dir = sp_tmpdir('rdown');
$port = rd_port() + 10;
$start = function () use ($dir, $port) {
    exec('redis-server --bind 127.0.0.1 --port ' . $port . ' --save "" --appendonly no --daemonize yes --dir '
        . escapeshellarg($dir) . ' --pidfile ' . escapeshellarg("$dir/r.pid") . ' --logfile ' . escapeshellarg("$dir/r.log"));
    for ($i = 0; $i < 100; $i++) {
        $s = @stream_socket_client("tcp://127.0.0.1:$port", $e, $m, 0.2);
        if ($s) { fclose($s); return; }
        usleep(50000);
    }
    echo "redis-server did not start\n";
};
$stop = function () use ($port) {
    exec("redis-cli -h 127.0.0.1 -p $port shutdown nosave 2>/dev/null");
    for ($i = 0; $i < 100 && ($s = @stream_socket_client("tcp://127.0.0.1:$port", $e, $m, 0.2)); $i++) {
        fclose($s);
        usleep(50000);
    }
};
register_shutdown_function($stop);
$warnings = [];
set_error_handler(function ($no, $msg) use (&$warnings) { $warnings[] = $msg; return true; });

$start();
$dsn = "redis://user:hunter2pw@127.0.0.1:$port?timeout=0.5";
rd_cmd(['ACL', 'SETUSER', 'user', 'on', '>hunter2pw', '~*', '&*', '+@all'], $port);
$warnings = []; // (the readiness poll's refused connections while the server starts)
$r = sp_cycle($dsn, 'downid', function () { $_SESSION['n'] = 1; });
echo 'up: ', json_encode($r), ' warnings: ', json_encode($warnings), "\n";

$stop();
$warnings = [];
$t = microtime(true);
$r = sp_cycle($dsn, 'downid', function () { $_SESSION['n']++; });
$took = microtime(true) - $t;
echo 'down: started=', var_export($r['started'], true), "\n";
echo 'failed fast (< 0.6 s): ', lk_check($took < 0.6, lk_s($took)), "\n";
foreach ($warnings as $w) {
    echo '  ', str_replace((string) $port, 'PORT', $w), "\n";
}
// (PHP's own follow-up line repeats session.save_path as PHP has it; ours never shows the password.)
echo 'password in session_proxy\'s warning: ', var_export(str_contains($warnings[0] ?? '', 'hunter2pw'), true), "\n";

$start();
rd_cmd(['ACL', 'SETUSER', 'user', 'on', '>hunter2pw', '~*', '&*', '+@all'], $port);
$warnings = [];
$r = sp_cycle($dsn, 'downid', function () { $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 10; });
echo 'back up: ', json_encode($r), ' warnings: ', json_encode($warnings), "\n";
$r = sp_cycle($dsn, 'downid', function () { $_SESSION['n']++; });
echo 'again: ', json_encode($r), ' warnings: ', json_encode($warnings), "\n";
?>
--EXPECT--
up: {"started":true,"data":{"n":1}} warnings: []
down: started=false
failed fast (< 0.6 s): yes
  session_start(): session_proxy: cannot lock session downid in redis://127.0.0.1:PORT/0: 127.0.0.1:PORT: cannot connect: Connection refused (os error 111)
  session_start(): Failed to read session data: session_proxy (path: redis://user:hunter2pw@127.0.0.1:PORT?timeout=0.5)
password in session_proxy's warning: false
back up: {"started":true,"data":{"n":10}} warnings: []
again: {"started":true,"data":{"n":11}} warnings: []
