--TEST--
nginx + php-fpm, SQLite default: workers recycled every 25 requests (pm.max_requests) while their checkpointer threads copy the log; every worker exits cleanly, the master starts no thread, every request's session is stored and the log stays bounded
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require_once __DIR__ . '/inc/locking.inc';

// A worker's checkpointer thread starts at the first commit that finds the log past 2000 frames;
// a worker that reaches pm.max_requests ends (MSHUTDOWN waits for its thread). php-fpm's master
// loads the extension before it forks the workers, and must stay single-threaded.
const REQUESTS = 900;
const BATCH = 30;

putenv('SP_FPM_MAX_REQUESTS=25');
$state = web_private('fpmckpt', 4);
putenv('SP_FPM_MAX_REQUESTS');
$d = sp_tmpdir('fpmckpt');
$dsn = "sqlite://$d/sessions.sqlite";

$blob = str_repeat('x', 3000); // one page a session: 3.5 log frames for a new one
$ok = 0;
$bad = [];
$ids = [];
for ($i = 0; $i < REQUESTS; $i += BATCH) {
    $urls = [];
    for ($j = $i; $j < $i + BATCH; $j++) {
        $urls[$j] = web_app_url('setkey', 'native', $dsn, ['k' => 'b', 'v' => $blob]);
    }
    foreach (web_parallel($urls, null) as $j => $r) {
        if ($r['status'] === 200 && isset($r['json']['id'])) {
            $ok++;
            $ids[] = $r['json']['id'];
        } else {
            $bad[] = "request $j: {$r['status']} " . substr($r['body'], 0, 200);
        }
    }
}
echo 'answered: ', $ok, ' of ', REQUESTS, $bad ? "\n  " . implode("\n  ", array_slice($bad, 0, 5)) : '', "\n";

$log = (string) @file_get_contents("$state/web/php-fpm.log");
$exited = preg_match_all('/child \d+ exited with code 0/', $log);
$signals = preg_match_all('/exited on signal|SIGSEGV|SIGBUS|SIGABRT/', $log, $m);
echo 'workers recycled cleanly: ', lk_check($exited >= 25, "$exited exits with code 0"), ', on a signal: ', $signals, "\n";

$master = (int) @file_get_contents("$state/web/php-fpm.pid");
$threads = $master > 0 ? count(glob("/proc/$master/task/*")) : 0;
echo 'the master runs one thread: ', lk_check($threads === 1, "$threads threads"), "\n";

$r = lk_run('count', '
    $c = new SQLite3($P["db"], SQLITE3_OPEN_READONLY);
    $n = 0;
    foreach ($P["ids"] as $id) {
        $st = $c->prepare("SELECT length(data) FROM sessions WHERE id = :id");
        $st->bindValue(":id", $id);
        $n += (int) ($st->execute()->fetchArray()[0] ?? 0) > 3000;
    }
    clearstatcache();
    lk_done(["stored" => $n, "wal" => filesize($P["db"] . "-wal"), "db" => filesize($P["db"])]);
', ['db' => "$d/sessions.sqlite", 'ids' => $ids], ['extension' => 'sqlite3']);
echo 'sessions stored: ', json_encode($r['stored'] ?? $r), ' of ', $ok, "\n";
// 3150 frames were written: at least the first 2000 were copied into the database by a checkpoint.
echo 'the log was checkpointed: ', lk_check(($r['db'] ?? 0) >= 400 * 3000, json_encode($r['db'] ?? null) . ' bytes in the database'), "\n";
echo 'log under 32 MiB: ', lk_check(($r['wal'] ?? PHP_INT_MAX) < (32 << 20), json_encode($r['wal'] ?? null) . ' bytes'), "\n";
?>
--EXPECT--
answered: 900 of 900
workers recycled cleanly: yes, on a signal: 0
the master runs one thread: yes
sessions stored: 900 of 900
the log was checkpointed: yes
log under 32 MiB: yes
