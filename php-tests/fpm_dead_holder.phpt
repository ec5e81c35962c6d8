--TEST--
nginx + php-fpm: a worker that dies holding a session (kill -9 mid-request, or cut by a reload: kill -USR2 of the master) frees its lock at once on every engine (sqlite, files, redis, memcached): the next request gets the session within a bound far below lock_expire, its data intact
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require __DIR__ . '/inc/redis.inc';
require __DIR__ . '/inc/memcached.inc';
require_once __DIR__ . '/inc/locking.inc';

// The lock wait (session_start()) of the request after the holder died, in ms. Measured: 20 runs of
// this test with its CPU burner (SP_MEASURE=1 prints the 8 waits of a run): mostly 0.2–9 ms, worst
// 41.9 ms — when the first look finds the killed worker not yet gone, the next look is 40 ms later
// (session.rs HOLDER_CHECK). The bound is 2.4x that worst, and the 100 ms the design promises;
// without the fix the wait is lock_expire (30 s here), so lock_wait_timeout (5 s) runs out first.
const BOUND_MS = 100;
const OPT = ['opt' => ['lock_expire' => 30, 'lock_wait_timeout' => 5000]];

// A private nginx + php-fpm: a reload of the shared one would cut other tests' requests.
$state = web_private('deadweb', 4);
$lk = lk_burner(120);

/** Starts the "hold" request (not read: its worker is killed) and returns its socket. */
function hold(string $dsn, string $sid, string $sig)
{
    $p = parse_url(web_url());
    $s = stream_socket_client("tcp://{$p['host']}:{$p['port']}", $no, $err, 10);
    if (!$s) {
        echo "FAILED: cannot connect: $err\n";
        exit(1);
    }
    $url = substr(web_app_url('hold', 'native', $dsn, OPT + ['sig' => $sig]), strlen(web_url()));
    fwrite($s, "GET $url HTTP/1.0\r\nHost: {$p['host']}\r\nCookie: PHPSESSID=$sid\r\nConnection: close\r\n\r\n");
    return $s;
}

/** Waits (at most 20 s) until php-fpm serves requests again after a reload. */
function fpm_back(): void
{
    $ctx = stream_context_create(['http' => ['timeout' => 5, 'ignore_errors' => true]]);
    $end = microtime(true) + 20;
    do {
        usleep(20000);
        $body = @file_get_contents(web_url() . '/ping.php', false, $ctx);
    } while ($body !== 'pong session_proxy' && microtime(true) < $end);
    if ($body !== 'pong session_proxy') {
        echo "FAILED: php-fpm did not come back after the reload\n";
    }
}

$engines = sp_engines('deadholder') + [
    'redis' => 'redis://127.0.0.1:' . rd_port() . '?prefix=' . rd_prefix('deadholder'),
    'memcached' => mc_dsn([mc_port(1)]),
];
$sigs = sp_tmpdir('deadholder-sig');
$waits = [];
foreach ($engines as $engine => $dsn) {
    foreach (['kill -9 of the worker', 'kill -USR2 of the master'] as $how) {
        echo "== $engine, $how\n";
        $r = web_ok('first request', 'incr', 'native', $dsn, null, OPT);
        $sid = $r['cookie'];
        $sig = "$sigs/" . bin2hex(random_bytes(6));
        $s = hold($dsn, $sid, $sig);
        sp_wait_for_file($sig, 30);
        $pid = (int) (json_decode((string) file_get_contents($sig), true)['pid'] ?? 0);
        $target = str_starts_with($how, 'kill -9') ? "-9 $pid" : '-USR2 ' . (int) trim((string) file_get_contents("$state/web/php-fpm.pid"));
        exec("kill $target", $_, $krc);
        if (!str_starts_with($how, 'kill -9')) {
            // Requests that reach php-fpm while it re-executes are answered 502 by nginx (php-fpm's own
            // behaviour): the next request is the first one PHP serves again.
            fpm_back();
        }
        $r = web_get('incr', 'native', $dsn, $sid, OPT);
        $j = $r['json'] ?? [];
        $ms = $j['start_ms'] ?? null;
        $waits[] = $ms;
        echo 'killed: ', web_yes($krc === 0), "\n";
        echo 'the next request answered 200 with no PHP errors: ', web_yes($r['status'] === 200 && ($j['ok'] ?? false) === true && ($j['errors'] ?? null) === [],
            "HTTP {$r['status']}: " . substr($r['body'], 0, 600)), "\n";
        echo 'it got the session within the bound: ', web_yes(is_numeric($ms) && $ms < BOUND_MS, json_encode($ms) . ' ms'), "\n";
        echo 'data intact (the first request\'s n=1, not the dead request\'s change): ', web_yes(($j['before'] ?? null) === 1, json_encode($j['before'] ?? null)), "\n";
        fclose($s);
    }
}
lk_burner_stop($lk);
if (getenv('SP_MEASURE')) {
    fprintf(STDERR, "waits ms: %s\n", json_encode($waits));
}
?>
--EXPECT--
== sqlite, kill -9 of the worker
killed: yes
the next request answered 200 with no PHP errors: yes
it got the session within the bound: yes
data intact (the first request's n=1, not the dead request's change): yes
== sqlite, kill -USR2 of the master
killed: yes
the next request answered 200 with no PHP errors: yes
it got the session within the bound: yes
data intact (the first request's n=1, not the dead request's change): yes
== files, kill -9 of the worker
killed: yes
the next request answered 200 with no PHP errors: yes
it got the session within the bound: yes
data intact (the first request's n=1, not the dead request's change): yes
== files, kill -USR2 of the master
killed: yes
the next request answered 200 with no PHP errors: yes
it got the session within the bound: yes
data intact (the first request's n=1, not the dead request's change): yes
== redis, kill -9 of the worker
killed: yes
the next request answered 200 with no PHP errors: yes
it got the session within the bound: yes
data intact (the first request's n=1, not the dead request's change): yes
== redis, kill -USR2 of the master
killed: yes
the next request answered 200 with no PHP errors: yes
it got the session within the bound: yes
data intact (the first request's n=1, not the dead request's change): yes
== memcached, kill -9 of the worker
killed: yes
the next request answered 200 with no PHP errors: yes
it got the session within the bound: yes
data intact (the first request's n=1, not the dead request's change): yes
== memcached, kill -USR2 of the master
killed: yes
the next request answered 200 with no PHP errors: yes
it got the session within the bound: yes
data intact (the first request's n=1, not the dead request's change): yes
