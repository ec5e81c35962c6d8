--TEST--
Redis engine timeouts: a server that accepts but never answers costs read_timeout, one that never accepts costs the connect timeout; each a warning naming host:port and the cause
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$sig = sp_tmpdir('rto-sig');
$port = rd_port() + 14;
// A fake server in a child: listens with a backlog of 0, accepts only when told, never answers.
$srv = sp_spawn('
    $s = stream_socket_server("tcp://127.0.0.1:' . $port . '", $e, $m, STREAM_SERVER_BIND | STREAM_SERVER_LISTEN,
        stream_context_create(["socket" => ["backlog" => 0]]));
    touch("' . $sig . '/listening");
    $held = [];
    $end = microtime(true) + 30;
    while (!file_exists("' . $sig . '/stop") && microtime(true) < $end) {
        if (file_exists("' . $sig . '/accept") && ($c = @stream_socket_accept($s, 0.05))) {
            $held[] = $c;
        }
        usleep(10000);
    }
');
sp_wait_for_file("$sig/listening");
$warnings = [];
set_error_handler(function ($no, $msg) use (&$warnings) { $warnings[] = $msg; return true; });
$show = fn ($w) => str_replace((string) $port, 'PORT', $w);

// Never accepted: fill the accept queue first, then connecting hangs until the timeout.
$fill = [];
for ($i = 0; $i < 4; $i++) {
    $fill[] = @stream_socket_client("tcp://127.0.0.1:$port", $e, $m, 0.2);
}
$warnings = [];
$t = microtime(true);
$r = sp_cycle("redis://127.0.0.1:$port?timeout=0.3", 'timeoutid');
$took = microtime(true) - $t;
echo 'never accepted: started=', var_export($r['started'], true), "\n";
echo '  took about the connect timeout (0.25-1.0 s): ', lk_check($took > 0.25 && $took < 1.0, lk_s($took)), "\n";
echo '  ', $show($warnings[0] ?? ''), "\n";

// Accepted but silent: the first command waits read_timeout.
foreach ($fill as $f) if ($f) fclose($f);
touch("$sig/accept");
usleep(200000);
$warnings = [];
$t = microtime(true);
$r = sp_cycle("redis://127.0.0.1:$port?read_timeout=0.3", 'timeoutid');
$took = microtime(true) - $t;
echo 'never answers: started=', var_export($r['started'], true), "\n";
echo '  took about the read timeout (0.25-1.0 s): ', lk_check($took > 0.25 && $took < 1.0, lk_s($took)), "\n";
echo '  ', $show($warnings[0] ?? ''), "\n";
touch("$sig/stop");
sp_wait($srv);
?>
--EXPECT--
never accepted: started=false
  took about the connect timeout (0.25-1.0 s): yes
  session_start(): session_proxy: cannot open 127.0.0.1:PORT: cannot connect within 0.300 s (timeout)
never answers: started=false
  took about the read timeout (0.25-1.0 s): yes
  session_start(): session_proxy: cannot lock session timeou… in redis://127.0.0.1:PORT/0: 127.0.0.1:PORT: no answer within 0.300 s (read_timeout)
