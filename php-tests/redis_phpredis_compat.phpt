--TEST--
Redis engine vs the real phpredis (php8.2-redis), same save_path strings: sessions written by one are read by the other (default prefix PHPREDIS_SESSION:, a multi-server list), and with both locking each waits for the other's lock
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$p = rd_port();
$p2 = rd_port(2);
$sig = sp_tmpdir('compat-sig');
$paths = [
    'tcp:// with database' => "tcp://127.0.0.1:$p?database=5&timeout=2",
    'redis:// (ours) = phpredis tcp://' => ["redis://127.0.0.1:$p/5", "tcp://127.0.0.1:$p?database=5"],
    'server list' => "tcp://127.0.0.1:$p?weight=1, tcp://127.0.0.1:$p2?weight=2",
];
$read = '
    session_id($P["id"]);
    $ok = session_start();
    $seen = $_SESSION;
    $_SESSION["by"][] = $P["who"];
    session_write_close();
    lk_done(["ok" => $ok, "seen" => $seen]);
';
foreach ($paths as $label => $path) {
    [$ours, $theirs] = is_array($path) ? $path : [$path, $path];
    echo "== $label\n";
    $ok = 0;
    $ids = [];
    for ($i = 0; $i < 6; $i++) {
        // Ids whose first 4 bytes (phpredis' server choice: little-endian u32 mod total weight 3) cover 0, 1, 2.
        do {
            $id = bin2hex(random_bytes(13));
        } while (unpack('V', $id)[1] % 3 !== $i % 3);
        $ids[] = $id;
        $r1 = rd_run_phpredis('phpredis', $read, ['id' => $id, 'who' => 'phpredis'], ['session.save_path' => $theirs]);
        $r2 = lk_run('session_proxy', $read, ['id' => $id, 'who' => 'session_proxy'], ['session.save_path' => $ours]);
        $r3 = rd_run_phpredis('phpredis', $read, ['id' => $id, 'who' => 'phpredis'], ['session.save_path' => $theirs]);
        $good = ($r2['seen'] ?? null) === ['by' => ['phpredis']]
            && ($r3['seen'] ?? null) === ['by' => ['phpredis', 'session_proxy']]
            && !$r1['errors'] && !$r2['errors'] && !$r3['errors'];
        $ok += (int) $good;
        if (!$good) {
            echo json_encode([$r1, $r2, $r3]), "\n";
        }
    }
    echo "phpredis → session_proxy → phpredis, 6 sessions: $ok good\n";
    // Where the keys are: phpredis' default prefix, in database 5 (or spread over both servers).
    $where = [];
    foreach ($ids as $id) {
        $on1 = rd_cmd(['EXISTS', "PHPREDIS_SESSION:$id"], $p, str_contains($theirs, 'database=5') ? 5 : 0);
        $on2 = str_contains($theirs, ',') ? rd_cmd(['EXISTS', "PHPREDIS_SESSION:$id"], $p2) : 0;
        $where[$on1 . $on2] = ($where[$on1 . $on2] ?? 0) + 1;
    }
    ksort($where);
    echo 'keys PHPREDIS_SESSION:<id> found once each: ', lk_check(!isset($where['00']) && !isset($where['11']), json_encode($where)), "\n";
    if (str_contains($theirs, ',')) {
        echo 'both servers used: ', lk_check(isset($where['10'], $where['01']), json_encode($where)), "\n";
    }
}

echo "== locking: each waits for the other\n";
$path = "tcp://127.0.0.1:$p";
$phpredis_lock = ['redis.session.locking_enabled' => '1', 'redis.session.lock_retries' => '2000',
    'redis.session.lock_wait_time' => '5000', 'session.save_path' => $path];
$hold = '
    session_id($P["id"]);
    $ok = session_start();
    $_SESSION["by"][] = $P["who"];
    lk_signal($P["sig"] . "/" . $P["who"] . "-locked");
    lk_await($P["sig"] . "/" . $P["who"] . "-release");
    session_write_close();
    lk_done(["ok" => $ok, "released" => microtime(true)]);
';
$wait = '
    session_id($P["id"]);
    lk_signal($P["sig"] . "/" . $P["who"] . "-waiting");
    $t0 = microtime(true);
    $ok = session_start();
    $got = microtime(true);
    $seen = $_SESSION;
    $_SESSION["by"][] = $P["who"];
    session_write_close();
    lk_done(["ok" => $ok, "waited" => $got - $t0, "acquired" => $got, "seen" => $seen]);
';
foreach ([['phpredis', 'session_proxy'], ['session_proxy', 'phpredis']] as [$holder, $waiter]) {
    $id = bin2hex(random_bytes(13));
    $spawn = fn ($who, $code) => $who === 'phpredis'
        ? rd_spawn_phpredis($code, ['id' => $id, 'who' => $who, 'sig' => $sig], $phpredis_lock)
        : lk_spawn($code, ['id' => $id, 'who' => $who, 'sig' => $sig], ['session.save_path' => $path]);
    $h = $spawn($holder, $hold);
    lk_wait_signal("$sig/$holder-locked");
    $w = $spawn($waiter, $wait);
    lk_wait_signal("$sig/$waiter-waiting");
    usleep(800000);
    lk_signal_parent("$sig/$holder-release");
    $rh = lk_result($holder, sp_wait($h));
    $rw = lk_result($waiter, sp_wait($w));
    echo "$holder holds, $waiter waits: ", json_encode([$rh['ok'] ?? null, $rw['ok'] ?? null]),
        ' errors: ', json_encode(array_merge($rh['errors'], $rw['errors'])), "\n";
    echo "  $waiter waited for the release (> 0.7 s): ", lk_check(($rw['waited'] ?? 0) > 0.7, lk_s($rw['waited'] ?? 0)), "\n";
    echo "  $waiter saw $holder's write: ", lk_check(($rw['seen'] ?? null) === ['by' => [$holder]], json_encode($rw['seen'] ?? null)), "\n";
    echo '  lock released: ', var_export(rd_cmd(['EXISTS', "PHPREDIS_SESSION:{$id}_LOCK"]) === 0, true), "\n";
}
?>
--EXPECT--
== tcp:// with database
phpredis → session_proxy → phpredis, 6 sessions: 6 good
keys PHPREDIS_SESSION:<id> found once each: yes
== redis:// (ours) = phpredis tcp://
phpredis → session_proxy → phpredis, 6 sessions: 6 good
keys PHPREDIS_SESSION:<id> found once each: yes
== server list
phpredis → session_proxy → phpredis, 6 sessions: 6 good
keys PHPREDIS_SESSION:<id> found once each: yes
both servers used: yes
== locking: each waits for the other
phpredis holds, session_proxy waits: [true,true] errors: []
  session_proxy waited for the release (> 0.7 s): yes
  session_proxy saw phpredis's write: yes
  lock released: true
session_proxy holds, phpredis waits: [true,true] errors: []
  phpredis waited for the release (> 0.7 s): yes
  phpredis saw session_proxy's write: yes
  lock released: true
