--TEST--
SessionProxy\stats() and stats_prometheus() under the CLI: the array's shape, a session cycle counted (reads, writes, touches, destroys, bytes, locks), a forked child's requests seen by the parent, a storage error by kind and path, and the Prometheus text (every sample parsed back, label values escaped)
--INI--
session.save_handler=session_proxy
session.use_cookies=0
session.cache_limiter=
session.lazy_write=1
session.use_strict_mode=0
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

$dir = sp_tmpdir('statscli');
$s0 = SessionProxy\stats();
echo 'engines: ', implode(', ', array_keys($s0)), "\n";
echo 'keys: ', implode(', ', array_keys($s0['sqlite'])), "\n";
echo 'lock_wait_ms: ', implode(', ', array_keys($s0['sqlite']['lock_wait_ms'])), '; buckets: ',
    implode(', ', array_keys($s0['sqlite']['lock_wait_ms']['buckets'])), "\n";
echo 'writes_refused: ', implode(', ', array_keys($s0['sqlite']['writes_refused'])), "\n";
$zero = true;
array_walk_recursive($s0, function ($v) use (&$zero) { $zero = $zero && $v == 0; });
echo 'all zero at start: ', var_export($zero, true), "\n";

// One session written, read unchanged (lazy write: a touch), then destroyed: three requests.
ini_set('session.save_path', "sqlite://$dir/s.sqlite");
$data = str_repeat('x', 100);
session_id('statscli1');
session_start();
$_SESSION['a'] = $data;
session_write_close();
session_start();
session_write_close();
session_start();
session_destroy();
$s = SessionProxy\stats()['sqlite'];
$stored = strlen(serialize($data)) + strlen('a|');
foreach (['requests', 'reads', 'writes', 'touches', 'destroys', 'lock_acquisitions', 'lock_timeouts'] as $k) {
    echo "$k: {$s[$k]}\n";
}
echo 'written_bytes = the stored session: ', var_export($s['written_bytes'] === $stored, true), "\n";
echo 'read_bytes = it read twice: ', var_export($s['read_bytes'] === 2 * $stored, true), "\n";
echo 'lock waits: ', $s['lock_wait_ms']['count'], ', all within 1000 ms: ', var_export($s['lock_wait_ms']['buckets'][1000] === 3, true), "\n";
echo 'other engines untouched: ', var_export(array_sum(array_map(fn ($e) => $e['requests'], array_diff_key(SessionProxy\stats(), ['sqlite' => 1]))) === 0, true), "\n";

// A child forked after startup counts into the same block.
$pid = pcntl_fork();
if ($pid === 0) {
    // The parent's output still buffered is not the child's to print.
    while (ob_get_level()) {
        ob_end_clean();
    }
    ini_set('session.save_path', "sqlite://$dir/child.sqlite");
    session_id('statschild');
    session_start();
    $_SESSION['c'] = 1;
    session_write_close();
    exit(0);
}
pcntl_waitpid($pid, $status);
echo 'child exited 0: ', var_export(pcntl_wexitstatus($status) === 0, true), "\n";
$c = SessionProxy\stats()['sqlite'];
echo "the child's request seen by the parent: requests ", $c['requests'], ', writes ', $c['writes'], "\n";

// A lock wait that times out (files engine: a child holds the lock 2 s, this process waits 200 ms).
$files = "$dir/files";
mkdir($files);
$sig = "$dir/locked";
$pid = pcntl_fork();
if ($pid === 0) {
    while (ob_get_level()) {
        ob_end_clean();
    }
    ini_set('session.save_path', "files://$files");
    session_id('statslock');
    session_start();
    touch($sig);
    usleep(2000000);
    session_write_close();
    exit(0);
}
sp_wait_for_file($sig, 10);
ini_set('session.save_path', "files://$files");
ini_set('session_proxy.lock_wait_timeout', '200');
session_id('statslock');
echo 'session_start() beside the holder: ', var_export(@session_start(), true), "\n";
pcntl_waitpid($pid, $status);
$f = SessionProxy\stats()['files'];
echo 'files: lock_timeouts ', $f['lock_timeouts'], ', lock_acquisitions ', $f['lock_acquisitions'], ' (the child\'s), requests ', $f['requests'], "\n";

// A storage error: kind and path (the engine's `at`: here the missing directory of the database).
$bad = "$dir/a\"b\\c/missing/s.sqlite";
ini_set('session.save_path', "sqlite://$bad");
echo 'session_start() on a missing directory: ', var_export(@session_start(), true), "\n";
$e = SessionProxy\stats()['sqlite']['storage_errors'];
echo 'storage errors: ', count($e), "\n";
echo 'kind: ', $e[0]['kind'], ', count: ', $e[0]['count'], ', at the path: ', var_export($e[0]['at'] === dirname($bad), true), "\n";

// The Prometheus text: every line a # HELP, a # TYPE or a sample; every sample parsed back.
$text = SessionProxy\stats_prometheus();
$samples = [];
$types = [];
$bad_lines = [];
foreach (explode("\n", rtrim($text, "\n")) as $line) {
    if (preg_match('/^# (HELP|TYPE) (session_proxy_[a-z_]+) (.+)$/', $line, $m)) {
        if ($m[1] === 'TYPE') {
            $types[$m[2]] = $m[3];
        }
        continue;
    }
    if (!preg_match('/^(session_proxy_[a-z_]+)\{((?:[a-z_]+="(?:[^"\\\\\n]|\\\\["\\\\n])*",?)*)\} (\S+)$/', $line, $m)) {
        $bad_lines[] = $line;
        continue;
    }
    preg_match_all('/([a-z_]+)="((?:[^"\\\\]|\\\\.)*)"/', $m[2], $lm, PREG_SET_ORDER);
    $labels = [];
    foreach ($lm as [, $k, $v]) {
        $labels[$k] = strtr($v, ['\\\\' => '\\', '\\"' => '"', '\\n' => "\n"]);
    }
    ksort($labels);
    $samples[$m[1] . json_encode($labels)] = $m[3];
}
echo 'lines that are neither: ', json_encode($bad_lines), "\n";
echo 'families: ', count($types), ', of them histograms: ', implode(', ', array_keys($types, 'histogram')), "\n";
$get = function (string $name, array $labels) use ($samples): string {
    ksort($labels);
    return $samples['session_proxy_' . $name . json_encode($labels)] ?? 'missing';
};
echo 'requests_total{engine="sqlite"}: ', $get('requests_total', ['engine' => 'sqlite']), "\n";
echo 'requests_total{engine="redis"}: ', $get('requests_total', ['engine' => 'redis']), "\n";
echo 'writes_total{engine="sqlite"}: ', $get('writes_total', ['engine' => 'sqlite']), "\n";
echo 'lock_wait_seconds_count{engine="sqlite"}: ', $get('lock_wait_seconds_count', ['engine' => 'sqlite']), "\n";
echo 'lock_wait_seconds_bucket{engine="sqlite",le="+Inf"}: ', $get('lock_wait_seconds_bucket', ['engine' => 'sqlite', 'le' => '+Inf']), "\n";
echo 'lock_wait_seconds_bucket{engine="sqlite",le="1"}: ', $get('lock_wait_seconds_bucket', ['engine' => 'sqlite', 'le' => '1']), "\n";
echo 'writes_refused_total{engine="sqlite",cause="lock_lost"}: ', $get('writes_refused_total', ['engine' => 'sqlite', 'cause' => 'lock_lost']), "\n";
echo 'storage_errors_total with the path parsed back: ',
    $get('storage_errors_total', ['engine' => 'sqlite', 'kind' => $e[0]['kind'], 'at' => dirname($bad)]), "\n";
echo 'the path escaped in the text: ', var_export(str_contains($text, 'at="' . strtr(dirname($bad), ['\\' => '\\\\', '"' => '\\"']) . '"'), true), "\n";
echo 'samples: ', count($samples), "\n";
?>
--EXPECT--
engines: sqlite, files, redis, memcached, pgsql, mysql
keys: requests, reads, writes, touches, destroys, lock_acquisitions, lock_timeouts, round_trips, read_bytes, written_bytes, merges, merge_conflicts, old_store_reads, migrated, lock_wait_ms, writes_refused, storage_errors
lock_wait_ms: buckets, sum_ms, count; buckets: 1, 5, 10, 50, 100, 500, 1000, 5000, +Inf
writes_refused: lock_lost, conflict, too_large, storage_error
all zero at start: true
requests: 3
reads: 3
writes: 1
touches: 1
destroys: 1
lock_acquisitions: 3
lock_timeouts: 0
written_bytes = the stored session: true
read_bytes = it read twice: true
lock waits: 3, all within 1000 ms: true
other engines untouched: true
child exited 0: true
the child's request seen by the parent: requests 4, writes 2
session_start() beside the holder: false
files: lock_timeouts 1, lock_acquisitions 1 (the child's), requests 2
session_start() on a missing directory: false
storage errors: 1
kind: unavailable, count: 1, at the path: true
lines that are neither: []
families: 17, of them histograms: session_proxy_lock_wait_seconds
requests_total{engine="sqlite"}: 4
requests_total{engine="redis"}: 0
writes_total{engine="sqlite"}: 2
lock_wait_seconds_count{engine="sqlite"}: 4
lock_wait_seconds_bucket{engine="sqlite",le="+Inf"}: 4
lock_wait_seconds_bucket{engine="sqlite",le="1"}: 4
writes_refused_total{engine="sqlite",cause="lock_lost"}: 0
storage_errors_total with the path parsed back: 1
the path escaped in the text: true
samples: 175
