--TEST--
nginx + php-fpm: SessionProxy\stats() counts over all workers of the pool (N requests over several workers, seen exactly from any worker), a lock wait in the histogram, a write refused as lock_lost after a takeover; with a CPU burner alongside
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require_once __DIR__ . '/inc/locking.inc';

// A private nginx + php-fpm (4 workers): the counters are the pool's, so no other test may use it.
web_private('metricsweb', 4);
$lk = lk_burner(120);

$dsn = sp_engines('fpmmetrics')['sqlite'];
$sigs = sp_tmpdir('fpmmetrics-sig');

/** SessionProxy\stats() from $n workers at once (each request sleeps, so each is a worker of its own). */
function pool_stats(int $n = 1): array
{
    $r = web_parallel(array_fill(0, $n, web_url() . '/app.php?a=stats&ms=' . ($n > 1 ? 300 : 0)), null);
    $stats = array_map(fn ($x) => $x['json']['stats'] ?? null, $r);
    $pids = array_unique(array_map(fn ($x) => $x['json']['pid'] ?? 0, $r));
    foreach ($stats as $i => $s) {
        if (!is_array($s)) {
            echo "stats request $i: FAILED: HTTP {$r[$i]['status']}: ", substr($r[$i]['body'], 0, 600), "\n";
            exit(1);
        }
    }
    return ['stats' => $stats, 'pids' => $pids];
}

/** The SQLite counters now, from one worker. */
function sqlite_now(): array
{
    return pool_stats()['stats'][0]['sqlite'];
}

/** A request sent without waiting for its answer; recv() reads it. */
function send(string $action, string $sid, array $params)
{
    $p = parse_url(web_url());
    $s = stream_socket_client("tcp://{$p['host']}:{$p['port']}", $no, $err, 10);
    if (!$s) {
        echo "FAILED: cannot connect: $err\n";
        exit(1);
    }
    $url = substr(web_app_url($action, 'native', $GLOBALS['dsn'], $params), strlen(web_url()));
    fwrite($s, "GET $url HTTP/1.0\r\nHost: {$p['host']}\r\nCookie: PHPSESSID=$sid\r\nConnection: close\r\n\r\n");
    return $s;
}

function recv($s): array
{
    stream_set_timeout($s, 60);
    $resp = stream_get_contents($s);
    fclose($s);
    return json_decode(explode("\r\n\r\n", (string) $resp, 2)[1] ?? '', true) ?: ['body' => $resp];
}

function delta(array $after, array $before, string $key): int
{
    return $after[$key] - $before[$key];
}

echo "== N requests over several workers\n";
const N = 40;
$before = sqlite_now();
$pids = [];
for ($batch = 0; $batch < N / 4; $batch++) {
    // 4 new sessions at once, each held 150 ms: 4 requests in flight, so several workers serve them.
    $r = web_parallel(array_fill(0, 4, web_app_url('nap', 'native', $dsn, ['ms' => 150])), null);
    foreach ($r as $i => $x) {
        if ($x['status'] !== 200 || ($x['json']['errors'] ?? null) !== []) {
            echo "request $batch/$i: FAILED: HTTP {$x['status']}: ", substr($x['body'], 0, 600), "\n";
            exit(1);
        }
        $pids[$x['json']['pid']] = true;
    }
}
echo 'served by several workers: ', web_yes(count($pids) >= 2, count($pids) . ' workers'), "\n";
$all = pool_stats(4);
echo 'stats asked of several workers at once: ', web_yes(count($all['pids']) >= 2, count($all['pids']) . ' workers'), "\n";
echo 'every one of them reports the same counters: ', web_yes(count(array_unique(array_map('serialize', $all['stats']))) === 1), "\n";
$after = $all['stats'][0]['sqlite'];
foreach (['requests', 'reads', 'writes', 'lock_acquisitions'] as $k) {
    echo "$k: ", delta($after, $before, $k), ' (', N, " requests sent)\n";
}
echo 'written bytes counted: ', web_yes(delta($after, $before, 'written_bytes') === N * strlen('n|i:1;')), "\n";
echo 'other engines: ', json_encode(array_map(fn ($e) => $e['requests'], array_diff_key($all['stats'][0], ['sqlite' => 1]))), "\n";

echo "== a lock wait\n";
$sid = web_ok('a new session', 'hit', 'native', $dsn, null)['cookie'];
$before = sqlite_now();
// The holder keeps the session's lock 400 ms after it signals; the waiter asks at once, so it waits
// for most of those 400 ms: far above the 100 ms bucket bound (and far below 5 s) even under load.
$sig = "$sigs/" . bin2hex(random_bytes(6));
$holder = send('nap', $sid, ['ms' => 400, 'sig' => $sig]);
sp_wait_for_file($sig, 30);
$waiter = web_ok('the waiter', 'hit', 'native', $dsn, $sid);
$h = recv($holder);
echo 'holder done without errors: ', web_yes(($h['errors'] ?? null) === [], json_encode($h)), "\n";
echo 'the waiter waited (start_ms > 100): ', web_yes($waiter['json']['start_ms'] > 100, json_encode($waiter['json']['start_ms'])), "\n";
$after = sqlite_now();
$b = fn (array $s, $le) => $s['lock_wait_ms']['buckets'][$le];
echo 'locks taken: ', delta($after, $before, 'lock_acquisitions'), "\n";
echo 'waits counted: ', $after['lock_wait_ms']['count'] - $before['lock_wait_ms']['count'], "\n";
echo 'waits above 100 ms: ', ($b($after, '+Inf') - $b($after, 100)) - ($b($before, '+Inf') - $b($before, 100)), "\n";
echo 'of them within 5000 ms: ', ($b($after, 5000) - $b($after, 100)) - ($b($before, 5000) - $b($before, 100)), "\n";
echo 'wait time summed (> 100 ms): ', web_yes($after['lock_wait_ms']['sum_ms'] - $before['lock_wait_ms']['sum_ms'] > 100), "\n";

echo "== a write refused: lock lost to a takeover\n";
$opt = ['opt' => ['lock_expire' => 1]];
$sid = web_ok('a new session', 'hit', 'native', $dsn, null, $opt)['cookie'];
$before = sqlite_now();
// The holder keeps the lock 2.5 s with lock_expire=1: the taker gets it after about 1 s, writes and
// is done well before the holder's write, which is then refused.
$sig = "$sigs/" . bin2hex(random_bytes(6));
$holder = send('nap', $sid, $opt + ['ms' => 2500, 'sig' => $sig]);
sp_wait_for_file($sig, 30);
$taker = web_ok('the taker', 'hit', 'native', $dsn, $sid, $opt);
$h = recv($holder);
$took = array_filter($h['errors'] ?? [], fn ($e) => str_contains($e, 'another request took it over'));
echo "the holder's write refused with a warning: ", web_yes($took !== [], json_encode($h)), "\n";
$after = sqlite_now();
foreach (['lock_lost', 'conflict', 'too_large', 'storage_error'] as $k) {
    echo "writes_refused $k: ", $after['writes_refused'][$k] - $before['writes_refused'][$k], "\n";
}
echo 'writes: ', delta($after, $before, 'writes'), " (the taker's)\n";
$w = web_ok('whoami', 'whoami', 'native', $dsn, $sid, $opt);
echo 'stored: ', json_encode($w['json']['data']), "\n";
lk_burner_stop($lk);
?>
--EXPECT--
== N requests over several workers
served by several workers: yes
stats asked of several workers at once: yes
every one of them reports the same counters: yes
requests: 40 (40 requests sent)
reads: 40 (40 requests sent)
writes: 40 (40 requests sent)
lock_acquisitions: 40 (40 requests sent)
written bytes counted: yes
other engines: {"files":0,"redis":0,"memcached":0,"pgsql":0,"mysql":0}
== a lock wait
holder done without errors: yes
the waiter waited (start_ms > 100): yes
locks taken: 2
waits counted: 2
waits above 100 ms: 1
of them within 5000 ms: 1
wait time summed (> 100 ms): yes
== a write refused: lock lost to a takeover
the holder's write refused with a warning: yes
writes_refused lock_lost: 1
writes_refused conflict: 0
writes_refused too_large: 0
writes_refused storage_error: 0
writes: 1 (the taker's)
stored: {"count":2}
