--TEST--
Redis engine, Cluster (3 masters + 3 replicas on 127.0.0.1): sessions and locking across processes (wait, wake-up on release, 50-process race), data and lock keys in one slot, and compatibility with phpredis' rediscluster handler (PHPREDIS_CLUSTER_SESSION:)
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$seeds = getenv('SP_REDIS_CLUSTER');
$ports = array_map(fn ($s) => (int) explode(':', $s)[1], explode(',', $seeds));
$dsn = "redis-cluster://$seeds";

echo "== one session, locking\n";
$id = 'cl' . bin2hex(random_bytes(8));
$r = lk_run('A', '
    session_id($P["id"]);
    $ok = session_start();
    $_SESSION["n"] = 1;
    $lock = "{PHPREDIS_CLUSTER_SESSION:" . $P["id"] . "}_LOCK";
    session_write_close();
    lk_done(["ok" => $ok]);
', ['id' => $id], ['session.save_path' => $dsn]);
echo 'A: ', json_encode($r), "\n";
$key = "PHPREDIS_CLUSTER_SESSION:$id";
echo 'data key on its master: ', json_encode(rd_cmd(['GET', $key], rd_key_owner($key))), "\n";
echo 'lock key in the same slot: ', var_export(rd_cmd(['CLUSTER', 'KEYSLOT', "{{$key}}_LOCK"], $ports[0]) === rd_cmd(['CLUSTER', 'KEYSLOT', $key], $ports[0]), true), "\n";

$sig = sp_tmpdir('cl-sig');
$a = lk_spawn('
    session_id($P["id"]);
    $ok = session_start();
    lk_signal($P["sig"] . "/a-locked");
    lk_await($P["sig"] . "/release");
    $_SESSION["n"]++;
    session_write_close();
    lk_done(["ok" => $ok, "released" => microtime(true)]);
', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn]);
lk_wait_signal("$sig/a-locked");
echo 'lock held in the cluster: ', rd_cmd(['EXISTS', "{{$key}}_LOCK"], rd_key_owner($key)), "\n";
$b = lk_spawn('
    session_id($P["id"]);
    lk_signal($P["sig"] . "/b-waiting");
    $t0 = microtime(true);
    $ok = session_start();
    $got = microtime(true);
    $seen = $_SESSION;
    session_write_close();
    lk_done(["ok" => $ok, "waited" => $got - $t0, "acquired" => $got, "seen" => $seen]);
', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn]);
lk_wait_signal("$sig/b-waiting");
usleep(600000);
lk_signal_parent("$sig/release");
$ra = lk_result('A', sp_wait($a));
$rb = lk_result('B', sp_wait($b));
echo 'B waited (> 0.5 s): ', lk_check(($rb['waited'] ?? 0) > 0.5, lk_s($rb['waited'] ?? 0)), ' and saw ', json_encode($rb['seen'] ?? null), "\n";
$lat = ($rb['acquired'] ?? 0) - ($ra['released'] ?? 0);
echo 'woken within 150 ms of the release: ', lk_check($lat < 0.15, lk_s($lat)), "\n";
echo 'errors: ', json_encode(array_merge($ra['errors'] ?? [], $rb['errors'] ?? [])), "\n";

$racers = 50;
echo "== race, $racers processes\n";
$rid = 'clrace' . bin2hex(random_bytes(4));
$procs = [];
for ($i = 0; $i < $racers; $i++) {
    $procs[] = lk_spawn('
        session_id($P["id"]);
        lk_signal($P["sig"] . "/r-" . $P["i"]);
        lk_await($P["sig"] . "/go", 60.0);
        $ok = session_start();
        $_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1;
        session_write_close();
        lk_done(["ok" => $ok]);
    ', ['id' => $rid, 'sig' => $sig, 'i' => $i], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '60000']);
}
for ($i = 0; $i < $racers; $i++) sp_wait_for_file("$sig/r-$i", 60.0);
lk_signal_parent("$sig/go");
$good = 0;
foreach ($procs as $i => $p) {
    $r = lk_result("racer $i", sp_wait($p));
    $good += (int) (($r['ok'] ?? false) && !$r['errors']);
}
echo "clean runs: $good of $racers; stored: ", json_encode(lk_stored($dsn, $rid)), "\n";

echo "== phpredis rediscluster handler\n";
$cid = 'clcompat' . bin2hex(random_bytes(6));
$phpredis_path = 'seed[]=' . implode('&seed[]=', explode(',', $seeds));
$read = '
    session_id($P["id"]);
    $ok = session_start();
    $seen = $_SESSION;
    $_SESSION["by"][] = $P["who"];
    session_write_close();
    lk_done(["ok" => $ok, "seen" => $seen]);
';
$r1 = rd_run_phpredis('phpredis', $read, ['id' => $cid, 'who' => 'phpredis'], ['session.save_handler' => 'rediscluster', 'session.save_path' => $phpredis_path]);
$r2 = lk_run('session_proxy', $read, ['id' => $cid, 'who' => 'session_proxy'], ['session.save_path' => $dsn]);
$r3 = rd_run_phpredis('phpredis', $read, ['id' => $cid, 'who' => 'phpredis'], ['session.save_handler' => 'rediscluster', 'session.save_path' => $phpredis_path]);
echo 'session_proxy saw: ', json_encode($r2['seen'] ?? null), '; phpredis then saw: ', json_encode($r3['seen'] ?? null), "\n";
echo 'errors: ', json_encode(array_merge($r1['errors'], $r2['errors'], $r3['errors'])), "\n";
?>
--EXPECT--
== one session, locking
A: {"ok":true,"errors":[]}
data key on its master: "n|i:1;"
lock key in the same slot: true
lock held in the cluster: 1
B waited (> 0.5 s): yes and saw {"n":2}
woken within 150 ms of the release: yes
errors: []
== race, 50 processes
clean runs: 50 of 50; stored: {"n":50}
== phpredis rediscluster handler
session_proxy saw: {"by":["phpredis"]}; phpredis then saw: {"by":["phpredis","session_proxy"]}
errors: []
