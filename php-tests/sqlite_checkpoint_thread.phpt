--TEST--
SQLite engine: checkpoints run on a thread of the process ("sp-checkpoint"), not in the commit that fills the log; a process that ends while its thread waits in a checkpoint exits cleanly, and nothing written is lost
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

// A commit that leaves the write-ahead log past 2000 frames wakes its process's checkpointer
// thread, which copies the log into the database and syncs both; the commit itself waits for no
// sync. At MSHUTDOWN the thread is ended and waited for before PHP unloads the extension.
const BYTES = 3000; // per session: one page, 3.5 log frames for a new session
const ONE = 800;    // sessions of part 1: 2800 frames
const TWO = 600;    // sessions of each writer of part 2: 2100 frames
const LIMIT = 32 << 20; // journal_size_limit

$d = sp_tmpdir('ckpt');
$db = "$d/sessions.sqlite";
$dsn = "sqlite://$db";
$sig = sp_tmpdir('ckpt-sig');
$ini = ['session.save_path' => $dsn];
$write = '
    for ($k = 0; $k < $P["n"]; $k++) {
        session_id($P["tag"] . "-" . $k);
        if (!session_start()) {
            break;
        }
        $_SESSION["blob"] = str_repeat(chr(65 + $k % 26), $P["bytes"]);
        session_write_close();
    }
';

// 1. The log is copied into the database by a second thread of the writing process. Only a
// checkpoint puts sessions into the database file itself: ONE new sessions write 2800 frames, of
// which at least the first 2000 (570 sessions) are checkpointed.
$r = lk_run('writer', $write . '
    $end = microtime(true) + 20;
    do {
        clearstatcache();
        $size = filesize($P["db"]);
    } while ($size < 100 * $P["bytes"] && microtime(true) < $end && usleep(5000) === null);
    $names = array_map(fn($f) => trim(file_get_contents($f)), glob("/proc/self/task/*/comm"));
    ob_start();
    phpinfo(INFO_MODULES);
    preg_match("/^SQLite checkpoints => .*running in this process: (\\d+)$/m", ob_get_clean(), $m);
    lk_done(["size" => $size, "threads" => $names, "phpinfo" => $m[1] ?? null]);
', ['db' => $db, 'tag' => 'one', 'n' => ONE, 'bytes' => BYTES], $ini);
echo 'errors: ', json_encode($r['errors'] ?? $r), "\n";
echo 'the database file holds sessions: ', lk_check(($r['size'] ?? 0) >= 100 * BYTES, json_encode($r['size'] ?? null) . ' bytes'), "\n";
$threads = $r['threads'] ?? [];
echo 'the process has a checkpointer thread: ', lk_check(in_array('sp-checkpoint', $threads, true) && count($threads) === 2, json_encode($threads)), "\n";
echo 'phpinfo counts it: ', json_encode($r['phpinfo'] ?? null), "\n";

// 2. With a reader holding an old snapshot, the thread's checkpoint waits for it (200 ms) before
// giving up; each writer ends during that wait and must still exit cleanly (a signal fails sp_wait).
$reader = lk_spawn('
    $c = new SQLite3($P["db"], SQLITE3_OPEN_READONLY);
    $c->busyTimeout(10000);
    $c->exec("BEGIN");
    $n = $c->querySingle("SELECT count(*) FROM sessions");
    lk_signal($P["sig"] . "/reading");
    lk_await($P["sig"] . "/stop", 120.0);
    $c->exec("COMMIT");
    lk_done(["saw" => $n]);
', ['db' => $db, 'sig' => $sig], ['extension' => 'sqlite3']);
sp_wait_for_file("$sig/reading", 30.0);
$ended = [];
for ($w = 0; $w < 8; $w++) {
    $r = lk_run("writer $w", $write . 'lk_done([]);', ['tag' => "two$w", 'n' => TWO, 'bytes' => BYTES], $ini);
    $ended[] = $r['errors'] ?? $r;
}
echo 'writers that ended during a checkpoint: ', count($ended), ', errors: ', json_encode(array_merge(...$ended)), "\n";
lk_signal_parent("$sig/stop");
$r = lk_result('reader', sp_wait($reader));
echo 'the reader kept its snapshot: ', lk_check(($r['saw'] ?? null) === ONE, json_encode($r)), "\n";

// 3. Once the reader is gone, a writer's first commit has its thread copy the whole log (tens of
// MB); the writer ends while that copy runs. It exits cleanly, and only once the copy is done (the
// thread is waited for at MSHUTDOWN): the database file then holds every session.
$r = lk_run('writer', $write . 'lk_done([]);', ['tag' => 'three', 'n' => 20, 'bytes' => BYTES], $ini);
echo 'a writer that ended during a long checkpoint: errors: ', json_encode($r['errors'] ?? $r), "\n";
clearstatcache();
echo 'its checkpoint was finished: ', lk_check(filesize($db) >= (ONE + 8 * TWO + 20) * BYTES, filesize($db) . ' bytes'), "\n";

// 4. Once the reader is gone the log is checkpointed again; the first commit after the restart cuts
// the file back to 32 MiB (journal_size_limit), and every session stands.
$r = lk_run('writer', $write . '
    $end = microtime(true) + 20;
    for ($k = 0; microtime(true) < $end; $k++) {
        clearstatcache();
        if (filesize($P["db"] . "-wal") <= $P["limit"]) {
            break;
        }
        usleep(10000);
        session_id("three-" . ($k % $P["n"]));
        session_start();
        $_SESSION["blob"] = str_repeat(chr(65 + ($k % $P["n"]) % 26), $P["bytes"]);
        session_write_close();
    }
    lk_done(["wal" => filesize($P["db"] . "-wal")]);
', ['db' => $db, 'tag' => 'three', 'n' => 300, 'bytes' => BYTES, 'limit' => LIMIT], $ini);
echo 'errors: ', json_encode($r['errors'] ?? $r), "\n";
echo 'log cut back to 32 MiB: ', lk_check(($r['wal'] ?? PHP_INT_MAX) <= LIMIT, json_encode($r['wal'] ?? null) . ' bytes'), "\n";
$r = lk_run('count', '$c = new SQLite3($P["db"], SQLITE3_OPEN_READONLY); lk_done(["n" => $c->querySingle("SELECT count(*) FROM sessions")]);', ['db' => $db], ['extension' => 'sqlite3']);
echo 'sessions stored: ', json_encode($r['n'] ?? $r), ' of ', ONE + 8 * TWO + 300, "\n";
$bad = [];
foreach (['one-0', 'one-' . (ONE - 1), 'two0-0', 'two7-' . (TWO - 1), 'three-299'] as $id) {
    $got = lk_stored($dsn, $id);
    $k = (int) substr($id, strrpos($id, '-') + 1);
    if (($got['blob'] ?? '') !== str_repeat(chr(65 + $k % 26), BYTES)) {
        $bad[] = $id;
    }
}
echo 'sessions intact: ', lk_check(!$bad, implode(', ', $bad)), "\n";
?>
--EXPECT--
errors: []
the database file holds sessions: yes
the process has a checkpointer thread: yes
phpinfo counts it: "1"
writers that ended during a checkpoint: 8, errors: []
the reader kept its snapshot: yes
a writer that ended during a long checkpoint: errors: []
its checkpoint was finished: yes
errors: []
log cut back to 32 MiB: yes
sessions stored: 5900 of 5900
sessions intact: yes
