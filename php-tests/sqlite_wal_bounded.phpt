--TEST--
SQLite engine: under steady load from several processes, with some reader always inside the write-ahead log and a CPU kept busy, the log still restarts and stays bounded; no write is lost
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

// SQLite's own (PASSIVE) checkpoint never restarts the log while a reader is in it, and under load
// one always is: the -wal file then grew by every commit (43 MB in this test, 722 MB in 15 s of
// php-fpm load). session_proxy checkpoints with RESTART at 2000 frames (8 MB), so the log stays within three
// checkpoints' worth; without a restart these writes (over 10 000 frames) grow it past 40 MB.
const WRITERS = 5;
const CYCLES = 2000; // per writer
const IDS = 30;      // sessions per writer
const BYTES = 3000;  // of data per session, changed at every cycle
const LIMIT = 24 << 20;

$d = sp_tmpdir('wal');
$db = "$d/sessions.sqlite";
$dsn = "sqlite://$db";
$sig = sp_tmpdir('wal-sig');
lk_seed($dsn, 'wal-seed', ['n' => 0]); // creates the database, in WAL mode

lk_burner(120.0);

// Two connections whose read transactions overlap, so one is always open; it also samples the log's size.
$reader = lk_spawn('
    $c = [new SQLite3($P["db"], SQLITE3_OPEN_READONLY), new SQLite3($P["db"], SQLITE3_OPEN_READONLY)];
    $begin = function (SQLite3 $c): void {
        $c->busyTimeout(10000);
        $c->exec("BEGIN");
        $c->querySingle("SELECT count(*) FROM sessions");
    };
    $begin($c[0]);
    lk_signal($P["sig"] . "/reading");
    $reads = 0;
    $largest = 0;
    for ($i = 0; !file_exists($P["sig"] . "/stop"); $i++) {
        $begin($c[($i + 1) % 2]);
        usleep(500);
        $c[$i % 2]->exec("COMMIT");
        $reads++;
        clearstatcache();
        $largest = max($largest, @filesize($P["db"] . "-wal") ?: 0);
    }
    lk_done(["reads" => $reads, "largest" => $largest]);
', ['db' => $db, 'sig' => $sig], ['extension' => 'sqlite3']);
sp_wait_for_file("$sig/reading", 30.0);

$writers = [];
for ($w = 0; $w < WRITERS; $w++) {
    $writers[$w] = lk_spawn('
        $ok = 0;
        for ($k = 0; $k < $P["cycles"]; $k++) {
            session_id("wal" . $P["w"] . "-" . ($k % $P["ids"]));
            if (session_start()) {
                $_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1;
                $_SESSION["blob"] = str_repeat(chr(65 + $k % 26), $P["bytes"]);
                $ok += (int) session_write_close();
            }
        }
        lk_done(["ok" => $ok]);
    ', ['w' => $w, 'cycles' => CYCLES, 'ids' => IDS, 'bytes' => BYTES], ['session.save_path' => $dsn]);
}
$ok = 0;
$errors = [];
foreach ($writers as $w => $p) {
    $r = lk_result("writer $w", sp_wait($p));
    $ok += $r['ok'] ?? 0;
    array_push($errors, ...lk_errors($r, $dsn));
}
lk_signal_parent("$sig/stop");
$r = lk_result('reader', sp_wait($reader));

echo 'cycles written: ', $ok, ' of ', WRITERS * CYCLES, "\n";
echo 'errors: ', count($errors), $errors ? "\n  " . implode("\n  ", array_unique($errors)) : '', "\n";
echo 'reader errors: ', json_encode($r['errors'] ?? $r), "\n";
echo 'the reader was always inside the log: ', lk_check(($r['reads'] ?? 0) > 100, json_encode($r['reads'] ?? null) . ' reads'), "\n";
echo 'largest log under 24 MiB: ', lk_check(isset($r['largest']) && $r['largest'] < LIMIT, json_encode($r['largest'] ?? null) . ' bytes'), "\n";
clearstatcache();
echo 'log now under 24 MiB: ', lk_check(filesize("$db-wal") < LIMIT, filesize("$db-wal") . ' bytes'), "\n";

// Every writer's every increment stands: session k of writer w was written ceil or floor of CYCLES/IDS times.
$lost = [];
foreach ([0, WRITERS - 1] as $w) {
    foreach ([0, IDS - 1] as $j) {
        $want = intdiv(CYCLES, IDS) + (int) ($j < CYCLES % IDS);
        $got = lk_stored($dsn, "wal$w-$j");
        if (($got['n'] ?? null) !== $want || strlen($got['blob'] ?? '') !== BYTES) {
            $lost[] = "wal$w-$j: n " . json_encode($got['n'] ?? null) . " of $want";
        }
    }
}
echo 'sessions intact: ', lk_check(!$lost, implode(', ', $lost)), "\n";
?>
--EXPECT--
cycles written: 10000 of 10000
errors: 0
reader errors: []
the reader was always inside the log: yes
largest log under 24 MiB: yes
log now under 24 MiB: yes
sessions intact: yes
