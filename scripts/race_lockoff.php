<?php
// Lost updates with locking OFF, measured (never asserted: the loss is random): RUNS times per engine,
// N parallel requests of one session cookie through nginx + php-fpm, each incrementing the session's
// counter once with session_proxy.locking=0; prints how many increments the session kept.
//   php -n scripts/race_lockoff.php RUNS N   (env: SP_WEB_URL, PS_REDIS_PORT, PS_MEMCACHED_PORT;
//   scripts/race-lockoff.sh sets them up)
require __DIR__ . '/../php-tests/inc/web.inc';
ob_end_flush();

$runs = (int) ($argv[1] ?? 5);
$n = (int) ($argv[2] ?? 200);
web_url();
$dirs = sp_engines('lockoff');
$engines = $dirs + [
    'redis' => 'redis://127.0.0.1:' . getenv('PS_REDIS_PORT') . '?prefix=sp-lockoff-' . bin2hex(random_bytes(3)) . ':',
    'memcached' => 'memcached://127.0.0.1:' . getenv('PS_MEMCACHED_PORT') . '?prefix=sp-lockoff-' . bin2hex(random_bytes(3)) . '.',
];
$status = 0;
foreach ($engines as $engine => $dsn) {
    $kept = [];
    foreach (range(1, $runs) as $run) {
        $opt = ['opt' => ['locking' => 0]];
        $r = web_ok('first request', 'incr', 'native', $dsn, null, $opt);
        $sid = $r['cookie'];
        $res = web_parallel(array_fill(0, $n, web_app_url('incr', 'native', $dsn, $opt)), $sid);
        $ok = count(array_filter($res, fn ($x) => $x['status'] === 200 && ($x['json']['ok'] ?? false) === true
            && ($x['json']['errors'] ?? []) === [] && ($x['json']['id'] ?? '') === $sid));
        $r = web_ok('read back', 'whoami', 'native', $dsn, $sid);
        $kept[] = ($r['json']['data']['n'] ?? 0) - 1;
        if ($ok !== $n) {
            echo "$engine run $run: only $ok of $n requests succeeded\n";
            $status = 1;
        }
    }
    sort($kept);
    printf("%-9s locking off, %d parallel increments, %d runs: kept %s (median %d, %.0f%%)\n", $engine, $n, $runs,
        implode(', ', $kept), $kept[intdiv(count($kept), 2)], 100 * $kept[intdiv(count($kept), 2)] / $n);
}
exit($status);
