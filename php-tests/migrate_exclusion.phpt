--TEST--
session_proxy.migrate_from, locking during the switch: the old handler still running elsewhere (PHP's files handler, phpredis with locking on, php-memcached) and our migrating handler (new store SQLite) exclude each other in both directions, with a CPU burner alongside: the waiter gets the session only after the holder wrote it, and sees its write
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';
require __DIR__ . '/inc/memcached.inc';

$d = sp_tmpdir('migexcl');
$sig = sp_tmpdir('migexcl-sig');
mkdir("$d/files");
$rp = rd_port();
$rpre = rd_prefix('migexcl');
$mpre = 'mx' . bin2hex(random_bytes(3)) . '.';
$mport = mc_port(1);
// The old handler's INI, and the same store as our DSN.
$old = [
    'files' => [['session.save_handler' => 'files', 'session.save_path' => "$d/files"], "files://$d/files"],
    'phpredis' => [['session.save_path' => "tcp://127.0.0.1:$rp?prefix=$rpre", 'redis.session.locking_enabled' => '1',
        'redis.session.lock_retries' => '500', 'redis.session.lock_wait_time' => '20000'],
        "redis://127.0.0.1:$rp/0?prefix=$rpre"],
    'php-memcached' => [pm_ini([$mport], $mpre) + ['memcached.sess_lock_retries' => '50'], "memcached://127.0.0.1:$mport?prefix=$mpre"],
];

// One increment of $_SESSION["n"]; with $P["hold"], held that long after signalling "<sig>/held".
const INCR = '
    session_id($P["id"]);
    $t0 = microtime(true);
    if (!session_start()) {
        lk_done(["error" => "session_start() failed"]);
        exit(1);
    }
    $got = microtime(true);
    $seen = $_SESSION["n"] ?? 0;
    $_SESSION["n"] = $seen + 1;
    if ($P["hold"]) {
        lk_signal($P["sig"] . "/held");
        usleep($P["hold"]);
    }
    $writing = microtime(true);
    session_write_close();
    lk_done(["seen" => $seen, "acquired" => $got, "writing" => $writing]);
';

function run(string $who, string $kind, string $id, int $hold = 0): array
{
    global $old, $sig, $d;
    $p = ['id' => $id, 'hold' => $hold, 'sig' => $sig];
    if ($who === 'ours') {
        return lk_spawn(INCR, $p, ['session.save_path' => "sqlite://$d/new.sqlite", 'session_proxy.migrate_from' => $old[$kind][1],
            'session_proxy.lock_wait_timeout' => '20000']);
    }
    return match ($kind) {
        'files' => lk_spawn(INCR, $p, $old[$kind][0]),
        'phpredis' => rd_spawn_phpredis(INCR, $p, $old[$kind][0]),
        'php-memcached' => pm_spawn(INCR, $p, $old[$kind][0]),
    };
}

$burner = lk_burner(90);
foreach (array_keys($old) as $kind) {
    foreach ([['old', 'ours'], ['ours', 'old']] as [$holder, $waiter]) {
        $id = 'mx' . str_replace('-', '', $kind) . $holder;
        @unlink("$sig/held");
        // Logged in under the old handler: n = 1.
        lk_result('seed', sp_wait(run('old', $kind, $id)));
        $h = run($holder, $kind, $id, 1000000);
        lk_wait_signal("$sig/held");
        usleep(200000);
        $w = run($waiter, $kind, $id);
        $rh = lk_result("$kind holder", sp_wait($h));
        $rw = lk_result("$kind waiter", sp_wait($w));
        $after = ($rw['acquired'] ?? 0) >= ($rh['writing'] ?? INF);
        echo "$kind: $holder holds, $waiter waits: waited for the write ", lk_check($after, json_encode([$rh, $rw])),
            ', holder saw ', $rh['seen'] ?? '?', ', waiter saw ', $rw['seen'] ?? '?', "\n";
        foreach ([$rh, $rw] as $r) {
            foreach ($r['errors'] ?? [] as $e) {
                echo "  $e[0]: $e[1]\n";
            }
        }
    }
}
lk_burner_stop($burner);
?>
--EXPECT--
files: old holds, ours waits: waited for the write yes, holder saw 1, waiter saw 2
files: ours holds, old waits: waited for the write yes, holder saw 1, waiter saw 1
phpredis: old holds, ours waits: waited for the write yes, holder saw 1, waiter saw 2
phpredis: ours holds, old waits: waited for the write yes, holder saw 1, waiter saw 0
php-memcached: old holds, ours waits: waited for the write yes, holder saw 1, waiter saw 2
php-memcached: ours holds, old waits: waited for the write yes, holder saw 1, waiter saw 0
