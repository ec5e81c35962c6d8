--TEST--
Redis engine, Sentinel: redis-sentinel://host:port/<master> finds the master; after SENTINEL FAILOVER the same PHP process keeps working (its pooled connection to the demoted master is replaced) and no session is lost; locking across processes works
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

[$shost, $sport] = explode(':', getenv('SP_REDIS_SENTINEL'));
$name = getenv('SP_REDIS_SENTINEL_MASTER');
$dsn = "redis-sentinel://127.0.0.1:$sport/$name?db=1&prefix=sent:";
$master = fn () => (int) rd_cmd(['SENTINEL', 'get-master-addr-by-name', $name], (int) $sport)[1];
set_error_handler(function ($no, $msg) { echo "error: $msg\n"; return true; });

$m1 = $master();
$id = 'sent' . bin2hex(random_bytes(6));
$r = sp_cycle($dsn, $id, fn () => $_SESSION['n'] = 1);
echo 'before failover: ', json_encode($r), "\n";
echo 'stored on the master, db 1: ', json_encode(rd_cmd(['GET', "sent:$id"], $m1, 1)), "\n";

// Locking between two processes through the Sentinel-found master.
$sig = sp_tmpdir('sent-sig');
$a = lk_spawn('
    session_id($P["id"]);
    $ok = session_start();
    lk_signal($P["sig"] . "/a-locked");
    lk_await($P["sig"] . "/release");
    $_SESSION["n"]++;
    session_write_close();
    lk_done(["ok" => $ok]);
', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn]);
lk_wait_signal("$sig/a-locked");
$rb = lk_run('B', '
    session_id($P["id"]);
    $ok = session_start();
    lk_done(["ok" => $ok]);
', ['id' => $id], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '300']);
echo 'B times out while A holds the lock: ', lk_lock_held($rb, $id), "\n";
lk_signal_parent("$sig/release");
$ra = lk_result('A', sp_wait($a));
echo 'A: ', json_encode($ra), "\n";

// Replication is asynchronous: a failover loses what the replica has not yet received (and a
// replica still in its initial full sync, e.g. the old master of an earlier failover, has nothing).
// WAIT for the replica to acknowledge a marker written after the session, then fail over.
// (After a failover of its own, a loaded machine's Sentinel may take ~10 s to turn the old master
// into a replica, plus 5 s of diskless-sync delay: wait up to 30 s.)
rd_cmd(['SET', 'sent:marker', $id], $m1, 1);
$end = microtime(true) + 30;
while (($acks = rd_cmd(['WAIT', '1', '3000'], $m1, 1)) < 1 && microtime(true) < $end);
echo 'replica acknowledged everything: ', $acks, "\n";
// Fail over: the replica becomes master, the old master a replica.
echo 'SENTINEL FAILOVER: ', rd_cmd(['SENTINEL', 'FAILOVER', $name], (int) $sport), "\n";
$end = microtime(true) + 30;
do {
    usleep(100000);
    $m2 = $master();
    $role = $m2 !== $m1 ? rd_cmd(['ROLE'], $m1)[0] ?? '' : '';
} while (($m2 === $m1 || $role !== 'slave') && microtime(true) < $end);
echo 'master changed and the old one is a replica: ', var_export($m2 !== $m1 && $role === 'slave', true), "\n";

// The same process (its pooled connection still points at the old master) goes on.
$r = sp_cycle($dsn, $id, fn () => $_SESSION['n']++);
echo 'after failover: ', json_encode($r), "\n";
echo 'stored on the new master: ', json_encode(rd_cmd(['GET', "sent:$id"], $m2, 1)), "\n";
$r = lk_run('C', '
    session_id($P["id"]);
    $ok = session_start();
    $seen = $_SESSION;
    session_write_close();
    lk_done(["ok" => $ok, "seen" => $seen]);
', ['id' => $id], ['session.save_path' => $dsn]);
echo 'a new process: ', json_encode($r), "\n";
?>
--EXPECT--
before failover: {"started":true,"data":{"n":1}}
stored on the master, db 1: "n|i:1;"
B times out while A holds the lock: lock held
A: {"ok":true,"errors":[]}
replica acknowledged everything: 1
SENTINEL FAILOVER: OK
master changed and the old one is a replica: true
after failover: {"started":true,"data":{"n":3}}
stored on the new master: "n|i:3;"
a new process: {"ok":true,"seen":{"n":3},"errors":[]}
