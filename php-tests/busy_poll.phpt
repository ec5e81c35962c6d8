--TEST--
busy_poll (Redis and Memcached DSN option): sessions work with polling off (0), at the default and at the maximum (1000 µs), over TCP and unix sockets, with locking and a lock wait; counted with strace, reads poll only when busy_poll is set (off by default), never over TLS or Cluster, and never in a Redis lock wait; a bad value gives a warning naming the option
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';
require __DIR__ . '/inc/memcached.inc';
require __DIR__ . '/inc/strace.inc';

$rp = rd_port();
$rsock = rd_socket();
$mp = mc_port(1);
$msock = mc_env('SP_MEMCACHED_SOCKET');
$rpre = rd_prefix('bp');

$engines = [
    'redis tcp' => fn (string $q) => "redis://127.0.0.1:$rp?prefix={$rpre}t:" . ($q ? "&$q" : ''),
    'redis unix' => fn (string $q) => "unix://$rsock?prefix={$rpre}u:" . ($q ? "&$q" : ''),
    'phpredis tcp' => fn (string $q) => "tcp://127.0.0.1:$rp?prefix={$rpre}p:" . ($q ? "&$q" : ''),
    'memcached tcp' => fn (string $q) => mc_dsn([$mp], $q),
    'memcached unix' => fn (string $q) => str_replace("127.0.0.1:$mp", $msock, mc_dsn([$mp], $q)),
];
foreach ($engines as $label => $dsn) {
    foreach (['busy_poll=0', '', 'busy_poll=1000'] as $q) {
        $path = $dsn($q);
        $id = 'bp' . bin2hex(random_bytes(6));
        $ok = 0;
        for ($i = 0; $i < 30; $i++) {
            $r = sp_cycle($path, $id, function () { $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; $_SESSION['blob'] = str_repeat('b', 70000); });
            $ok += (int) $r['started'];
        }
        $last = sp_cycle($path, $id);
        printf("%s %s: %d/30 started, n=%s, blob intact: %s\n", $label, $q === '' ? 'default' : $q, $ok,
            json_encode($last['data']['n'] ?? null), var_export(strlen($last['data']['blob'] ?? '') === 70000, true));
    }
    // A lock wait with polling at its maximum: the waiter gets the session once the holder lets go,
    // with the holder's write in it.
    $path = $dsn('busy_poll=1000');
    $id = 'bpw' . bin2hex(random_bytes(6));
    $sig = sp_tmpdir('bp-sig');
    $ini = ['session.save_path' => $path];
    $holder = lk_spawn('session_id($P["id"]); session_start(); lk_signal($P["sig"] . "/locked");
        usleep(300000); $_SESSION["by"] = "holder"; session_write_close(); lk_done([]);', ['id' => $id, 'sig' => $sig], $ini);
    lk_wait_signal("$sig/locked");
    $w = lk_run('waiter', 'session_id($P["id"]); session_start(); lk_done(["seen" => $_SESSION["by"] ?? null]);', ['id' => $id], $ini);
    lk_result('holder', sp_wait($holder));
    echo "$label lock wait: waiter saw ", json_encode($w['seen'] ?? null), "\n";
}

echo "== polled reads, counted with strace (recv with MSG_DONTWAIT)\n";
// Ten locked cycles in one child. Its first read is polled whenever polling is on (the adaptive
// pause needs misses first), so 'polls' does not depend on how fast the server answers.
$cycles = 'for ($i = 0; $i < 10; $i++) { session_id($P["id"]); session_start(); $_SESSION["n"] = $i; session_write_close(); } lk_done([]);';
$traced = function (string $label, string $path) use ($cycles) {
    $r = st_run($label, $cycles, ['id' => 'bps' . bin2hex(random_bytes(6))], ['session.save_path' => $path]);
    lk_print_errors($label, $r, $path);
    echo $label, ': ', $r['polled'] > 0 ? 'polls' : 'never polls', "\n";
};
foreach ($engines as $label => $dsn) {
    foreach (['busy_poll=0', '', 'busy_poll=1000'] as $q) {
        $traced("$label " . ($q === '' ? 'default' : $q), $dsn($q));
    }
}
// TLS and Cluster connections are redis-rs' own (blocking reads): the option changes nothing there.
$ca = getenv('SP_REDIS_TLS_CA');
$traced('redis tls busy_poll=1000', 'rediss://127.0.0.1:' . getenv('SP_REDIS_TLS_PORT') . "/0?ca=$ca&prefix={$rpre}s:&busy_poll=1000");
$traced('redis cluster busy_poll=1000', 'redis-cluster://' . getenv('SP_REDIS_CLUSTER') . "?prefix={$rpre}c:&busy_poll=1000");
// A lock wait blocks on the wake-up list (BLPOP) in the kernel: its read must not poll, even at the
// maximum budget (the wait lasts as long as the holder keeps the lock).
$path = "redis://127.0.0.1:$rp?prefix={$rpre}w:&busy_poll=1000";
$id = 'bpl' . bin2hex(random_bytes(6));
$sig = sp_tmpdir('bp-strace');
$holder = lk_spawn('session_id($P["id"]); session_start(); lk_signal($P["sig"] . "/locked");
    usleep(300000); $_SESSION["by"] = "holder"; session_write_close(); lk_done([]);', ['id' => $id, 'sig' => $sig], ['session.save_path' => $path]);
lk_wait_signal("$sig/locked");
$w = st_run('waiter', 'session_id($P["id"]); session_start(); lk_done(["seen" => $_SESSION["by"] ?? null]);', ['id' => $id], ['session.save_path' => $path]);
lk_result('holder', sp_wait($holder));
lk_print_errors('waiter', $w, $path);
echo 'redis lock wait: waiter saw ', json_encode($w['seen'] ?? null), ', its reads after BLPOP: ',
    json_encode(array_values(array_unique($w['after_blpop']))), "\n";

echo "== bad values\n";
foreach ([
    "redis://127.0.0.1:$rp?busy_poll=1001",
    "redis://127.0.0.1:$rp?busy_poll=-1",
    "tcp://127.0.0.1:$rp?busy_poll=fast",
    "memcached://127.0.0.1:$mp?busy_poll=5000",
] as $path) {
    $r = lk_run('bad', '$ok = session_start(); lk_done(["ok" => $ok]);', [], ['session.save_path' => $path]);
    echo str_replace([(string) $rp, (string) $mp], 'PORT', $path), ' => ', var_export($r['ok'] ?? null, true), "\n";
    foreach ($r['errors'] as [$lvl, $msg]) {
        if (preg_match('/invalid session.save_path "[^"]*": (.*?); accepted forms/', $msg, $m)) {
            echo "  $lvl: $m[1]\n";
        }
    }
}
?>
--EXPECT--
redis tcp busy_poll=0: 30/30 started, n=30, blob intact: true
redis tcp default: 30/30 started, n=30, blob intact: true
redis tcp busy_poll=1000: 30/30 started, n=30, blob intact: true
redis tcp lock wait: waiter saw "holder"
redis unix busy_poll=0: 30/30 started, n=30, blob intact: true
redis unix default: 30/30 started, n=30, blob intact: true
redis unix busy_poll=1000: 30/30 started, n=30, blob intact: true
redis unix lock wait: waiter saw "holder"
phpredis tcp busy_poll=0: 30/30 started, n=30, blob intact: true
phpredis tcp default: 30/30 started, n=30, blob intact: true
phpredis tcp busy_poll=1000: 30/30 started, n=30, blob intact: true
phpredis tcp lock wait: waiter saw "holder"
memcached tcp busy_poll=0: 30/30 started, n=30, blob intact: true
memcached tcp default: 30/30 started, n=30, blob intact: true
memcached tcp busy_poll=1000: 30/30 started, n=30, blob intact: true
memcached tcp lock wait: waiter saw "holder"
memcached unix busy_poll=0: 30/30 started, n=30, blob intact: true
memcached unix default: 30/30 started, n=30, blob intact: true
memcached unix busy_poll=1000: 30/30 started, n=30, blob intact: true
memcached unix lock wait: waiter saw "holder"
== polled reads, counted with strace (recv with MSG_DONTWAIT)
redis tcp busy_poll=0: no errors
redis tcp busy_poll=0: never polls
redis tcp default: no errors
redis tcp default: never polls
redis tcp busy_poll=1000: no errors
redis tcp busy_poll=1000: polls
redis unix busy_poll=0: no errors
redis unix busy_poll=0: never polls
redis unix default: no errors
redis unix default: never polls
redis unix busy_poll=1000: no errors
redis unix busy_poll=1000: polls
phpredis tcp busy_poll=0: no errors
phpredis tcp busy_poll=0: never polls
phpredis tcp default: no errors
phpredis tcp default: never polls
phpredis tcp busy_poll=1000: no errors
phpredis tcp busy_poll=1000: polls
memcached tcp busy_poll=0: no errors
memcached tcp busy_poll=0: never polls
memcached tcp default: no errors
memcached tcp default: never polls
memcached tcp busy_poll=1000: no errors
memcached tcp busy_poll=1000: polls
memcached unix busy_poll=0: no errors
memcached unix busy_poll=0: never polls
memcached unix default: no errors
memcached unix default: never polls
memcached unix busy_poll=1000: no errors
memcached unix busy_poll=1000: polls
redis tls busy_poll=1000: no errors
redis tls busy_poll=1000: never polls
redis cluster busy_poll=1000: no errors
redis cluster busy_poll=1000: never polls
waiter: no errors
redis lock wait: waiter saw "holder", its reads after BLPOP: ["blocking"]
== bad values
redis://127.0.0.1:PORT?busy_poll=1001 => false
  Warning: option busy_poll="1001" must be an integer from 0 to 1000
redis://127.0.0.1:PORT?busy_poll=-1 => false
  Warning: option busy_poll="-1" must be an integer from 0 to 1000
tcp://127.0.0.1:PORT?busy_poll=fast => false
  Warning: option busy_poll="fast" must be an integer from 0 to 1000
memcached://127.0.0.1:PORT?busy_poll=5000 => false
  Warning: option busy_poll="5000" must be an integer from 0 to 1000
