--TEST--
files engine and PHP's own files handler on one directory exclude each other: each waits for the other's lock, both directions, and under load (a CPU burner alongside) no increment is lost
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

$dir = sp_tmpdir('mixed');
$sig = sp_tmpdir('mixed-sig');
$ini = [
    'php' => ['session.save_handler' => 'files', 'session.save_path' => $dir],
    'ours' => ['session.save_path' => "files://$dir", 'session_proxy.lock_wait_timeout' => '60000'],
];

// One increment of $_SESSION["n"] per cycle, $P["cycles"] times; with $P["hold"], the session is held
// that long (after signalling "<sig>/held") before it is written.
const INCR = '
    $seen = [];
    for ($i = 0; $i < $P["cycles"]; $i++) {
        session_id($P["id"]);
        if (!session_start()) {
            lk_done(["error" => "session_start() failed", "seen" => $seen]);
            exit(1);
        }
        $seen[] = $_SESSION["n"] ?? 0;
        $_SESSION["n"] = end($seen) + 1;
        if ($P["hold"] ?? 0) {
            lk_signal($P["sig"] . "/held");
            usleep($P["hold"]);
        }
        session_write_close();
    }
    lk_done(["seen" => $seen]);
';

function incr(string $who, string $h, string $id, int $cycles = 1, int $hold = 0): array
{
    global $ini, $sig;
    return lk_spawn(INCR, ['id' => $id, 'cycles' => $cycles, 'hold' => $hold, 'sig' => $sig], $ini[$h]);
}

function stored_n(string $id): string
{
    global $dir;
    clearstatcache();
    return (string) @file_get_contents("$dir/sess_$id");
}

// The repro of the lost update, in both directions: one handler holds the session for 1 s, the other
// asks for it 0.3 s in and must wait, then see the holder's increment.
foreach ([['ours', 'php'], ['php', 'ours']] as [$holder, $waiter]) {
    echo "== $holder holds, $waiter waits\n";
    $id = "mixed{$holder}";
    @unlink("$sig/held");
    lk_result('first', sp_wait(incr('first', $waiter, $id)));
    $h = incr('holder', $holder, $id, 1, 1000000);
    lk_wait_signal("$sig/held");
    usleep(300000);
    $w = incr('waiter', $waiter, $id);
    $rh = lk_result('holder', sp_wait($h));
    $rw = lk_result('waiter', sp_wait($w));
    lk_result('last', sp_wait(incr('last', $holder, $id)));
    echo "holder saw ", json_encode($rh['seen'] ?? null), ", waiter saw ", json_encode($rw['seen'] ?? null), "\n";
    echo "stored: ", stored_n($id), "\n";
    lk_print_errors('holder', $rh, $ini['ours']['session.save_path']);
    lk_print_errors('waiter', $rw, $ini['ours']['session.save_path']);
}

// Under load: both handlers, many processes at once, each incrementing the one session many times.
echo "== race under load\n";
const PROCS = 10;  // per handler
const CYCLES = 30; // increments per process
$burner = lk_burner(120);
$id = 'mixedrace';
$procs = [];
for ($i = 0; $i < PROCS; $i++) {
    foreach (['ours', 'php'] as $h) {
        $procs["$h $i"] = incr("$h $i", $h, $id, CYCLES);
    }
}
$seen = [];
$errors = [];
foreach ($procs as $who => $p) {
    $r = lk_result($who, sp_wait($p));
    array_push($seen, ...($r['seen'] ?? []));
    array_push($errors, ...lk_errors($r, $ini['ours']['session.save_path']));
}
lk_burner_stop($burner);
sort($seen);
$n = 2 * PROCS * CYCLES;
echo 'errors: ', json_encode(array_values(array_unique($errors))), "\n";
echo 'each increment saw a different count, 0 to the number of increments - 1: ', lk_check($seen === range(0, $n - 1),
    count($seen) . ' increments, ' . count(array_unique($seen)) . ' distinct'), "\n";
$want = 'n|i:' . $n . ';';
echo 'stored: the number of increments: ', lk_check(stored_n($id) === $want, stored_n($id) . " != $want"), "\n";
echo 'left in the directory: ', json_encode(array_values(array_diff(scandir($dir), ['.', '..']))), "\n";
?>
--EXPECT--
== ours holds, php waits
holder saw [1], waiter saw [2]
stored: n|i:4;
holder: no errors
waiter: no errors
== php holds, ours waits
holder saw [1], waiter saw [2]
stored: n|i:4;
holder: no errors
waiter: no errors
== race under load
errors: []
each increment saw a different count, 0 to the number of increments - 1: yes
stored: the number of increments: yes
left in the directory: ["sess_mixedours","sess_mixedphp","sess_mixedrace"]
