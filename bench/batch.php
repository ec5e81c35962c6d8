<?php
// bench/optimistic.sh, part 2: php bench/batch.php DSN REPEAT with SP_WEB_URL set. For locking On and
// optimistic: REPEAT batches of 16 parallel setkey requests (50 ms of work each) on a fresh cookie.
// Prints "<median ms On> <median ms optimistic> <keys kept in the last optimistic batch>/16".
require __DIR__ . '/../php-tests/inc/web.inc';
[, $dsn, $repeat] = $argv + [null, '', 5];
$median = function (array $v) {
    sort($v);
    $n = count($v);
    return $n % 2 ? $v[intdiv($n, 2)] : ($v[$n / 2 - 1] + $v[$n / 2]) / 2;
};
$out = [];
$kept = 0;
foreach (['1', 'optimistic'] as $locking) {
    // The first batch also opens every worker's connection; it is not counted.
    $times = [];
    for ($r = 0; $r <= $repeat; $r++) {
        $sid = web_ok('first request', 'hit', 'native', $dsn, null)['json']['id'];
        $urls = [];
        for ($i = 0; $i < 16; $i++) {
            $urls[] = web_app_url('setkey', 'native', $dsn, ['k' => $i, 'work' => 50, 'opt' => ['locking' => $locking]]);
        }
        $t = microtime(true);
        web_parallel($urls, $sid);
        if ($r > 0) {
            $times[] = (microtime(true) - $t) * 1000;
        }
        $data = web_ok('reader', 'whoami', 'native', $dsn, $sid)['json']['data'] ?? [];
        $kept = count(array_filter(array_keys($data), fn ($k) => str_starts_with((string) $k, 'k')));
    }
    $out[] = sprintf('%.0f', $median($times));
}
echo implode(' ', $out), " $kept/16\n";
