--TEST--
SQLite engine: a PHP process that pcntl_forks again and again while its checkpointer thread copies the log; every child uses the same database and exits cleanly, none hangs, and nothing either side wrote is lost
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

// The parent writes new sessions of one page each (3.5 log frames), so its thread checkpoints the
// log every ~570 of them (2000 frames); it forks after every EVERY sessions, so many forks land
// while the thread is inside SQLite. Such a fork waits for that checkpoint to end: a child made
// while the thread held one of SQLite's mutexes would wait on it forever. Each child writes
// sessions of its own on a connection of its own, with checkpoints of its own (its parent's thread
// did not follow it), and exits through PHP's shutdown. With the thread checkpointing outside that
// guard, 8 of the 200 children hung (every run of 5).
const BYTES = 3000;
const PARENT = 4000; // ~14 000 frames: about 7 checkpoints by the parent's thread
const EVERY = 20;    // 200 children
const CHILD = 40;    // sessions each child writes
const RUNNING = 4;   // children at once at most
const HANG = 60.0;   // seconds after which a child counts as hung (and is killed)

$d = sp_tmpdir('fork-ckpt');
$db = "$d/sessions.sqlite";
$dsn = "sqlite://$db";
$out = sp_tmpdir('fork-ckpt-out');
$blob = fn(string $id) => str_repeat(chr(65 + crc32($id) % 26), BYTES);
$write = function (string $id) use ($dsn, $blob): bool {
    return sp_cycle($dsn, $id, fn() => $_SESSION['blob'] = $blob($id))['started'];
};

$children = []; // pid => [k, forked at]
$ends = ['exited 0' => 0];
$reap = function (bool $block) use (&$children, &$ends) {
    foreach ($children as $pid => [$k, $at]) {
        $r = pcntl_waitpid($pid, $status, $block ? 0 : WNOHANG);
        if ($r === 0 && microtime(true) - $at > HANG) {
            exec('kill -9 ' . (int) $pid);
            pcntl_waitpid($pid, $status);
            $r = -2;
        }
        if ($r === 0) {
            continue;
        }
        $end = $r === -2 ? 'hung' : (pcntl_wifexited($status) ? 'exited ' . pcntl_wexitstatus($status) : 'signal ' . pcntl_wtermsig($status));
        $ends[$end] = ($ends[$end] ?? 0) + 1;
        unset($children[$pid]);
    }
};
$burner = lk_burner(120); // a CPU kept busy alongside (bounded)
$lost = [];
for ($i = 0; $i < PARENT; $i++) {
    if (!$write("p-$i")) {
        $lost[] = "p-$i";
    }
    if ($i % EVERY !== EVERY - 1) {
        continue;
    }
    while (count($children) >= RUNNING) {
        $reap(false);
        usleep(1000);
    }
    $k = intdiv($i, EVERY);
    $pid = pcntl_fork();
    if ($pid === 0) {
        $failed = [];
        for ($j = 0; $j < CHILD; $j++) {
            if (!$write("c$k-$j")) {
                $failed[] = "c$k-$j";
            }
        }
        file_put_contents("$out/child-$k", json_encode($failed));
        while (ob_get_level()) {
            ob_end_clean(); // the parent's buffered output is the parent's to print
        }
        exit($failed ? 3 : 0);
    }
    if ($pid < 0) {
        $lost[] = "fork $k";
        continue;
    }
    $children[$pid] = [$k, microtime(true)];
    $reap(false);
}
while ($children) {
    $reap(false);
    usleep(2000);
}
lk_burner_stop($burner);
$forks = intdiv(PARENT, EVERY);
echo "children: ", json_encode($ends), " of $forks\n";
echo 'every parent write and fork worked: ', $lost ? 'NO (' . implode(', ', array_slice($lost, 0, 5)) . ')' : 'yes', "\n";
$reported = count(glob("$out/child-*"));
echo "children that finished their writes: ", $reported === $forks ? 'all' : "$reported of $forks", "\n";

// What is stored, read back by a process of its own.
$sample = ['p-0', 'p-' . (PARENT - 1), 'p-' . intdiv(PARENT, 2), 'c0-0', 'c' . ($forks - 1) . '-' . (CHILD - 1), 'c' . intdiv($forks, 2) . '-7'];
$check = sp_child('
    $c = new SQLite3($argv[1], SQLITE3_OPEN_READONLY);
    $n = $c->querySingle("SELECT count(*) FROM sessions");
    $ok = $c->querySingle("PRAGMA integrity_check");
    echo json_encode(["n" => $n, "integrity" => $ok]);
', ['extension' => 'sqlite3'], [$db]);
$r = json_decode($check, true) ?? ['raw' => $check];
echo 'sessions stored: ', json_encode($r['n'] ?? $r), ' of ', PARENT + $forks * CHILD, "\n";
echo 'integrity: ', json_encode($r['integrity'] ?? $r), "\n";
$bad = [];
foreach ($sample as $id) {
    $got = sp_cycle($dsn, $id, null, ['session_proxy.locking' => '0']);
    if (($got['data']['blob'] ?? '') !== $blob($id)) {
        $bad[] = $id;
    }
}
echo 'sessions intact: ', $bad ? 'NO (' . implode(', ', $bad) . ')' : 'yes', "\n";
clearstatcache();
echo 'the log was checkpointed into the database: ', filesize($db) >= PARENT * BYTES ? 'yes' : 'NO (' . filesize($db) . ' bytes)', "\n";
?>
--EXPECT--
children: {"exited 0":200} of 200
every parent write and fork worked: yes
children that finished their writes: all
sessions stored: 12000 of 12000
integrity: "ok"
sessions intact: yes
the log was checkpointed into the database: yes
