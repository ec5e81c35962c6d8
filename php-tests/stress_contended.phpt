--TEST--
Stress: rounds of 50 concurrent increments of one session with a CPU kept busy alongside, on 3 Memcached servers, Redis and SQLite at default settings; no increment lost, no write refused
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';
require_once __DIR__ . '/inc/redis.inc';

// Enough rounds and increments to meet the cross-server ordering race of issue 18 (about one round in
// six lost an increment with one increment per process); each process increments INCS times so that
// the lock changes hands ROUNDS * RACERS * INCS times per engine.
const ROUNDS = 5;
const RACERS = 50;
const INCS = 3;

// One CPU kept busy by a bounded burner (it stops by itself after 120 s, and is killed at the end).
$burner = sp_spawn('$end = microtime(true) + 120; $x = 0; while (microtime(true) < $end) { $x++; }');
register_shutdown_function(function () use ($burner) {
    if (is_resource($burner['proc'])) {
        proc_terminate($burner['proc'], 9);
        sp_wait($burner, SP_ANY_EXIT); // killed here, or ended by itself after 120 s
    }
});

$d = sp_tmpdir('stress');
$engines = [
    'memcached x3' => mc_dsn([mc_port(1), mc_port(2), mc_port(3)]),
    'redis' => 'redis://127.0.0.1:' . rd_port() . '?prefix=' . rd_prefix('stress'),
    'sqlite' => "sqlite://$d/sessions.sqlite",
];
foreach ($engines as $engine => $dsn) {
    echo "== $engine\n";
    $bad = [];
    for ($round = 1; $round <= ROUNDS; $round++) {
        $sig = sp_tmpdir('stress-sig');
        $id = "stress$round";
        $procs = [];
        for ($i = 0; $i < RACERS; $i++) {
            $procs[$i] = lk_spawn('
                session_id($P["id"]);
                lk_signal($P["sig"] . "/ready-" . $P["i"]);
                lk_await($P["sig"] . "/go", 60.0);
                $ok = 0;
                for ($k = 0; $k < $P["incs"]; $k++) {
                    if (session_start()) {
                        $_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1;
                        $ok += (int) session_write_close();
                    }
                }
                lk_done(["ok" => $ok]);
            ', ['id' => $id, 'sig' => $sig, 'i' => $i, 'incs' => INCS], [
                'session.save_path' => $dsn,
                'session_proxy.lock_wait_timeout' => '60000',
            ]);
        }
        for ($i = 0; $i < RACERS; $i++) {
            sp_wait_for_file("$sig/ready-$i", 60.0);
        }
        lk_signal_parent("$sig/go");
        $ok = 0;
        $errors = [];
        foreach ($procs as $i => $p) {
            $r = lk_result("round $round racer $i", sp_wait($p));
            $ok += (int) ($r['ok'] ?? 0);
            array_push($errors, ...lk_errors($r, $dsn));
        }
        $n = lk_stored($dsn, $id)['n'] ?? 0;
        if ($n !== RACERS * INCS || $ok !== RACERS * INCS || $errors) {
            $bad[] = "round $round: stored $n, cycles that succeeded $ok of " . RACERS * INCS
                . ($errors ? "\n    " . implode("\n    ", array_unique($errors)) : '');
        }
    }
    echo 'rounds with every one of ', RACERS * INCS, ' increments stored and no warning: ',
        lk_check(!$bad, "\n  " . implode("\n  ", $bad)), "\n";
}
?>
--EXPECT--
== memcached x3
rounds with every one of 150 increments stored and no warning: yes
== redis
rounds with every one of 150 increments stored and no warning: yes
== sqlite
rounds with every one of 150 increments stored and no warning: yes
