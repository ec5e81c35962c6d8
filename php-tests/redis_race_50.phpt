--TEST--
Redis engine, with a CPU burner: 50 concurrent processes each increment one session counter; with locking none of the increments is lost (every waiter asks the holder's PTTL after a busy lock, then blocks for the wake-up)
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

const RACERS = 50;
$dsn = 'redis://127.0.0.1:' . rd_port() . '?prefix=' . rd_prefix('race');
$burner = lk_burner(120.0);
$sig = sp_tmpdir('rrace-sig');
$id = 'race50';
$procs = [];
for ($i = 0; $i < RACERS; $i++) {
    $procs[$i] = lk_spawn('
        session_id($P["id"]);
        lk_signal($P["sig"] . "/ready-" . $P["i"]);
        lk_await($P["sig"] . "/go", 60.0);
        $ok = session_start();
        $before = $_SESSION["n"] ?? 0;
        $_SESSION["n"] = $before + 1;
        session_write_close();
        lk_done(["ok" => $ok, "before" => $before]);
    ', ['id' => $id, 'sig' => $sig, 'i' => $i], [
        'session.save_path' => $dsn,
        'session_proxy.lock_wait_timeout' => '60000',
    ]);
}
for ($i = 0; $i < RACERS; $i++) {
    sp_wait_for_file("$sig/ready-$i", 60.0);
}
lk_signal_parent("$sig/go");
$started = 0;
$errors = [];
$before = [];
foreach ($procs as $i => $p) {
    $r = lk_result("racer $i", sp_wait($p));
    $started += (int) (($r['ok'] ?? false) === true);
    array_push($errors, ...lk_errors($r, $dsn));
    if (isset($r['before'])) {
        $before[] = $r['before'];
    }
}
sort($before);
echo 'session_start() true: ', $started, ' of ', RACERS, "\n";
echo 'errors: ', count($errors), $errors ? "\n  " . implode("\n  ", array_unique($errors)) : '', "\n";
echo 'counts seen are exactly 0..', RACERS - 1, ': ', lk_check($before === range(0, RACERS - 1), json_encode($before)), "\n";
echo 'stored: ', json_encode(lk_stored($dsn, $id)), "\n";
lk_burner_stop($burner);
?>
--EXPECT--
session_start() true: 50 of 50
errors: 0
counts seen are exactly 0..49: yes
stored: {"n":50}
