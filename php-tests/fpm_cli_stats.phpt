--TEST--
session-proxy stats against a running nginx + php-fpm pool: N requests over several workers, a lock wait and a write refused after a takeover are reported exactly by `stats --json --pid <master>` (from /dev/shm, outside the pool), equal to a worker's own SessionProxy\stats() and to the table; once the pool is stopped, the same command fails clearly (exit 1); with a CPU burner alongside
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require_once __DIR__ . '/inc/locking.inc';

// A private nginx + php-fpm (4 workers): its counters are the pool's own, so no other test may use it.
$state = web_private('clistatsfpm', 4);
$lk = lk_burner(120);
$bin = dirname(sp_so()) . '/session-proxy';
$master = (int) trim((string) file_get_contents("$state/web/php-fpm.pid"));
$dsn = sp_engines('fpmclistats')['sqlite'];
$sigs = sp_tmpdir('fpmclistats-sig');

/** `session-proxy stats` with $args, run outside the pool: [exit status, stdout + stderr]. */
function cli(string $args): array
{
    exec(escapeshellarg($GLOBALS['bin']) . " stats $args 2>&1", $out, $rc);
    return [$rc, implode("\n", $out)];
}

/** The pool's counters as the tool reads them (the JSON's engines), or the test stops. */
function cli_json(): array
{
    [$rc, $out] = cli('--json --pid ' . $GLOBALS['master']);
    $j = json_decode($out, true);
    if ($rc !== 0 || !is_array($j) || ($j['pid'] ?? null) !== $GLOBALS['master']) {
        echo "stats --json: FAILED: exit $rc: $out\n";
        exit(1);
    }
    return $j['engines'];
}

/** A worker's own SessionProxy\stats(). */
function worker_stats(): array
{
    $r = web_parallel([web_url() . '/app.php?a=stats'], null)[0];
    if (!is_array($r['json']['stats'] ?? null)) {
        echo "stats request: FAILED: HTTP {$r['status']}: ", substr($r['body'], 0, 600), "\n";
        exit(1);
    }
    return $r['json']['stats'];
}

/** A request sent without waiting for its answer; recv() reads it. */
function send(string $sid, array $params)
{
    $p = parse_url(web_url());
    $s = stream_socket_client("tcp://{$p['host']}:{$p['port']}", $no, $err, 10);
    if (!$s) {
        echo "FAILED: cannot connect: $err\n";
        exit(1);
    }
    $url = substr(web_app_url('nap', 'native', $GLOBALS['dsn'], $params), strlen(web_url()));
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

/** Whether process $pid runs (a zombie, ended but not yet reaped by its new parent, does not). */
function running(int $pid): bool
{
    $st = @file_get_contents("/proc/$pid/stat");
    return is_string($st) && !preg_match('/^\d+ \(.*\) Z /s', $st);
}

/** Above-100-ms lock waits in a snapshot's histogram. */
function slow_waits(array $e): int
{
    return $e['lock_wait_ms']['buckets']['+Inf'] - $e['lock_wait_ms']['buckets']['100'];
}

echo "master: ", web_yes($master > 0 && running($master), "pid file gives $master"), "\n";
$before = cli_json()['sqlite'];

// N new sessions, 4 at once, each held 150 ms: several workers serve them.
const N = 24;
$pids = [];
for ($batch = 0; $batch < N / 4; $batch++) {
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

// A lock wait: the holder keeps the lock 400 ms after it signals, the waiter asks at once (so it
// waits far above the 100 ms bucket bound, even under load).
$sid = web_ok('a new session', 'hit', 'native', $dsn, null)['cookie'];
$sig = "$sigs/" . bin2hex(random_bytes(6));
$holder = send($sid, ['ms' => 400, 'sig' => $sig]);
sp_wait_for_file($sig, 30);
$waiter = web_ok('the waiter', 'hit', 'native', $dsn, $sid);
echo 'holder done without errors: ', web_yes((recv($holder)['errors'] ?? null) === []), "\n";

// A write refused: with lock_expire=1 a taker gets the lock of a holder that keeps it 2.5 s.
$opt = ['opt' => ['lock_expire' => 1]];
$sid2 = web_ok('another session', 'hit', 'native', $dsn, null, $opt)['cookie'];
$sig = "$sigs/" . bin2hex(random_bytes(6));
$holder = send($sid2, $opt + ['ms' => 2500, 'sig' => $sig]);
sp_wait_for_file($sig, 30);
web_ok('the taker', 'hit', 'native', $dsn, $sid2, $opt);
$h = recv($holder);
echo "the holder's write refused: ", web_yes(array_filter($h['errors'] ?? [], fn ($e) => str_contains($e, 'another request took it over')) !== [], json_encode($h)), "\n";

$all = cli_json();
$after = $all['sqlite'];
// N naps, 2 + 2 hits, the waiter's holder and the taker's holder: N + 6 requests, each taking the
// lock once (a wait of its own in the histogram, zero or not); all write but the holder the taker
// took the lock from.
echo "the tool's counts since the first read (", N, " + 6 requests sent):\n";
foreach (['requests', 'reads', 'writes', 'lock_acquisitions'] as $k) {
    echo "  $k: ", $after[$k] - $before[$k], "\n";
}
echo '  lock waits counted: ', $after['lock_wait_ms']['count'] - $before['lock_wait_ms']['count'], "\n";
echo '  waits above 100 ms: ', slow_waits($after) - slow_waits($before), "\n";
foreach (['lock_lost', 'conflict', 'too_large', 'storage_error'] as $k) {
    echo "  writes_refused $k: ", $after['writes_refused'][$k] - $before['writes_refused'][$k], "\n";
}
echo '  other engines: ', json_encode(array_map(fn ($e) => $e['requests'], array_diff_key($all, ['sqlite' => 1]))), "\n";

// The same counters as the pool's own view, and as the table (nothing ran in between).
$own = worker_stats();
$same = true;
foreach ($own as $engine => $counters) {
    foreach ($counters as $k => $v) {
        if (!is_array($v) && ($all[$engine][$k] ?? null) !== $v) {
            $same = false;
            echo "differs: $engine $k: ", json_encode($all[$engine][$k] ?? null), " vs $v\n";
        }
    }
}
echo "equal to a worker's SessionProxy\\stats(): ", web_yes($same), "\n";
[$rc, $table] = cli("--pid $master");
echo 'table: exit ', $rc, ', requests row: ', web_yes(preg_match('/^requests\s+(\d+)\s/m', $table, $m) === 1 && (int) $m[1] === $after['requests'], $table), "\n";

// The pool stopped: the same command fails clearly.
exec('bash ' . escapeshellarg(dirname(__DIR__) . '/scripts/services/web.sh') . ' stop ' . escapeshellarg($state) . ' 2>&1', $o, $src);
clearstatcache();
echo 'pool stopped: ', web_yes($src === 0 && !running($master), implode("\n", $o)), ', its counters removed: ', web_yes(!file_exists('/dev/shm/session_proxy-' . trim((string) shell_exec('id -u')) . "-$master.stats")), "\n";
[$rc, $out] = cli("--json --pid $master");
echo "stats with no pool running: exit $rc, ", str_contains($out, "cannot read the counters of pid $master: no process $master is running") ? 'says that no such process is running' : $out, "\n";
lk_burner_stop($lk);
?>
--EXPECT--
master: yes
served by several workers: yes
holder done without errors: yes
the holder's write refused: yes
the tool's counts since the first read (24 + 6 requests sent):
  requests: 30
  reads: 30
  writes: 29
  lock_acquisitions: 30
  lock waits counted: 30
  waits above 100 ms: 2
  writes_refused lock_lost: 1
  writes_refused conflict: 0
  writes_refused too_large: 0
  writes_refused storage_error: 0
  other engines: {"files":0,"memcached":0,"mysql":0,"pgsql":0,"redis":0}
equal to a worker's SessionProxy\stats(): yes
table: exit 0, requests row: yes
pool stopped: yes, its counters removed: yes
stats with no pool running: exit 1, says that no such process is running
