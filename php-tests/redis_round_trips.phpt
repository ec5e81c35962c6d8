--TEST--
Redis engine round trips, with the commands counted by the server (INFO commandstats on a private redis-server): with locking, a cycle is 2 round trips and runs no script (GETEX of the per-user index's user key + SET NX GET of the lock, WATCH of it, GET of it + PEXPIRETIME, GET version, GET data — the data and its version — in one write, no PTTL of a lock taken at once; MULTI SET SET DEL LMOVE PEXPIRE PEXPIRETIME EXEC, or MULTI PEXPIRE PEXPIRE DEL LMOVE PEXPIRE EXEC for lazy_write: no wake-up pushed, nobody waits, and no PEXPIRE of a user key the read found absent), without locking 2 (the same read, with the GETEX; PEXPIRE of the user key + MULTI SET SET PEXPIRETIME EXEC, or PEXPIRE of the user key + MULTI PEXPIRE PEXPIRE EXEC for lazy_write), optimistic 2 (the read with a WATCH of the data and version keys first; the write as without locking; lazy_write as without locking, after an UNWATCH in the same write); a new session (create_sid, strict mode) also 2, with no EXISTS, and a strict-mode regenerate sends none for its new id
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$dir = sp_tmpdir('rtrips');
$port = rd_port() + 12;
exec('redis-server --bind 127.0.0.1 --port ' . $port . ' --save "" --appendonly no --daemonize yes --dir '
    . escapeshellarg($dir) . ' --logfile ' . escapeshellarg("$dir/r.log"));
for ($i = 0; $i < 100 && !($s = @stream_socket_client("tcp://127.0.0.1:$port", $e, $m, 0.2)); $i++) usleep(50000);
register_shutdown_function(fn () => exec("redis-cli -h 127.0.0.1 -p $port shutdown nosave 2>/dev/null"));
set_error_handler(function ($no, $msg) { echo "error: $msg\n"; return true; });

$dsn = "redis://127.0.0.1:$port";
const CYCLES = 10;
foreach (['locking on' => '1', 'locking off' => '0', 'optimistic' => 'optimistic'] as $label => $locking) {
    foreach (['write' => fn () => $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1, 'unchanged (lazy_write)' => null] as $kind => $change) {
        // Warm up: the first cycles of a worker connect and load the scripts (write, then unchanged).
        sp_cycle($dsn, 'rtid', fn () => $_SESSION['n'] = 0, ['session_proxy.locking' => $locking]);
        sp_cycle($dsn, 'rtid', null, ['session_proxy.locking' => $locking]);
        rd_cmd(['CONFIG', 'RESETSTAT'], $port);
        for ($i = 0; $i < CYCLES; $i++) {
            sp_cycle($dsn, 'rtid', $change, ['session_proxy.locking' => $locking]);
        }
        $stats = rd_commandstats($port);
        unset($stats['config|resetstat'], $stats['info']);
        ksort($stats);
        // Commands a script or a transaction ran count too; the client sent them in these writes.
        // With locking, or optimistic, each read carries one WATCH and each write or touch is one
        // MULTI … EXEC (a script call, were there one, would be a round trip of its own). Without
        // locking a read is one write of PEXPIRETIME and two GETs (the version, the data: so GETs / 2
        // count the reads) and a write or touch is one MULTI … EXEC.
        $trips = $locking === '0'
            ? intdiv($stats['get'] ?? 0, 2) + ($stats['exec'] ?? 0)
            : ($stats['watch'] ?? 0) + ($stats['exec'] ?? 0) + ($stats['evalsha'] ?? 0) + ($stats['eval'] ?? 0);
        echo "$label, $kind: ", json_encode($stats), "\n";
        echo "  round trips per cycle: ", $trips / CYCLES, "\n";
    }
}
// A new session (no id: create_sid draws one, strict mode on) costs the same 2 round trips: the
// drawn id is not looked up (no EXISTS); its lock+read finds it free. A regenerate under strict mode
// asks validate_sid about the new id, which answers without the store too.
foreach (['locking on' => '1', 'locking off' => '0', 'optimistic' => 'optimistic'] as $label => $locking) {
    $ini = ['session_proxy.locking' => $locking, 'session.use_strict_mode' => '1'];
    sp_cycle($dsn, '', fn () => $_SESSION['n'] = 1, $ini);
    rd_cmd(['CONFIG', 'RESETSTAT'], $port);
    $ids = [];
    for ($i = 0; $i < CYCLES; $i++) {
        sp_cycle($dsn, '', function () use (&$ids) { $_SESSION['n'] = 1; $ids[session_id()] = 1; }, $ini);
    }
    $stats = rd_commandstats($port);
    echo "$label, new session: EXISTS sent ", $stats['exists'] ?? 0, ", ", count($ids), " distinct ids, round trips per cycle: ",
        (($stats['watch'] ?? 0) + ($stats['exec'] ?? 0) + ($locking === '0' ? intdiv($stats['get'] ?? 0, 2) : 0) + ($stats['exists'] ?? 0)) / CYCLES, "\n";
    rd_cmd(['CONFIG', 'RESETSTAT'], $port);
    sp_use($dsn, $ini);
    session_id(array_key_first($ids));
    session_start();
    session_regenerate_id(true);
    $_SESSION['n']++;
    session_write_close();
    // One EXISTS: strict mode's check of the id the request came with, at session_start.
    echo "$label, session_start + session_regenerate_id(true): EXISTS sent ", rd_commandstats($port)['exists'] ?? 0, "\n";
}
?>
--EXPECT--
locking on, write: {"del":10,"exec":10,"get":30,"getex":10,"lmove":10,"multi":10,"pexpire":10,"pexpiretime":20,"set":30,"watch":10}
  round trips per cycle: 2
locking on, unchanged (lazy_write): {"del":10,"exec":10,"get":30,"getex":10,"lmove":10,"multi":10,"pexpire":30,"pexpiretime":10,"set":10,"watch":10}
  round trips per cycle: 2
locking off, write: {"exec":10,"get":20,"getex":10,"multi":10,"pexpire":10,"pexpiretime":20,"set":20}
  round trips per cycle: 2
locking off, unchanged (lazy_write): {"exec":10,"get":20,"getex":10,"multi":10,"pexpire":30,"pexpiretime":10}
  round trips per cycle: 2
optimistic, write: {"exec":10,"get":20,"getex":10,"multi":10,"pexpire":10,"pexpiretime":20,"set":20,"watch":10}
  round trips per cycle: 2
optimistic, unchanged (lazy_write): {"exec":10,"get":20,"getex":10,"multi":10,"pexpire":30,"pexpiretime":10,"unwatch":10,"watch":10}
  round trips per cycle: 2
locking on, new session: EXISTS sent 0, 10 distinct ids, round trips per cycle: 2
locking on, session_start + session_regenerate_id(true): EXISTS sent 1
locking off, new session: EXISTS sent 0, 10 distinct ids, round trips per cycle: 2
locking off, session_start + session_regenerate_id(true): EXISTS sent 1
optimistic, new session: EXISTS sent 0, 10 distinct ids, round trips per cycle: 2
optimistic, session_start + session_regenerate_id(true): EXISTS sent 1
