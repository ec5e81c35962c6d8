--TEST--
Memcached engine locking: wait and hand-over within milliseconds, timeout (fail and readonly), killed holder's lock free at once, one on another host taken over after lock_expire, a taken-over lock is never deleted or written under
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

$dsn = mc_dsn([mc_port(1), mc_port(2), mc_port(3)], '', $prefix);
$sig = sp_tmpdir('mc-lock-sig');

echo "== wait and hand-over\n";
lk_seed($dsn, 'hand1', ['n' => 1]);
$a = lk_spawn('
    session_id("hand1");
    session_start();
    lk_signal($P["sig"] . "/a-locked");
    lk_await($P["sig"] . "/b-ready");
    usleep(500000);
    $_SESSION["n"]++;
    $release = microtime(true);
    session_write_close();
    lk_done(["release" => $release]);
', ['sig' => $sig], ['session.save_path' => $dsn]);
lk_wait_signal("$sig/a-locked");
$b = lk_spawn('
    session_id("hand1");
    lk_signal($P["sig"] . "/b-ready");
    $t0 = microtime(true);
    $ok = session_start();
    $t1 = microtime(true);
    $seen = $_SESSION;
    session_write_close();
    lk_done(["ok" => $ok, "waited" => $t1 - $t0, "acquired" => $t1, "seen" => $seen]);
', ['sig' => $sig], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '10000']);
$rb = lk_result('B', sp_wait($b));
$ra = lk_result('A', sp_wait($a));
lk_print_errors('A', $ra, $dsn);
lk_print_errors('B', $rb, $dsn);
$gap = ($rb['acquired'] ?? 0) - ($ra['release'] ?? INF);
echo 'B waited >= 0.4 s: ', lk_check(($rb['waited'] ?? 0) >= 0.4, lk_s($rb['waited'] ?? 0)), "\n";
echo 'B got the lock after A released it, within 100 ms: ', lk_check($gap >= 0 && $gap < 0.1, lk_s($gap)), "\n";
echo 'B saw: ', json_encode($rb['seen'] ?? null), "\n";

echo "== timeout: fail and readonly\n";
lk_seed($dsn, 'tmo1', ['v' => 'holder']);
$a = lk_spawn('
    session_id("tmo1");
    session_start();
    lk_signal($P["sig"] . "/t-locked");
    lk_await($P["sig"] . "/t-done");
    $_SESSION["v"] = "holder-wrote";
    session_write_close();
    lk_done([]);
', ['sig' => $sig], ['session.save_path' => $dsn]);
lk_wait_signal("$sig/t-locked");
$rf = lk_run('fail', '
    session_id("tmo1");
    $t0 = microtime(true);
    $ok = session_start();
    lk_done(["ok" => $ok, "waited" => microtime(true) - $t0]);
', [], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '300']);
echo 'fail: session_start ', var_export($rf['ok'], true), ', waited 0.3-2 s: ', lk_check($rf['waited'] >= 0.29 && $rf['waited'] < 2, lk_s($rf['waited'])), "\n";
lk_print_errors('fail', $rf, $dsn);
$rr = lk_run('readonly', '
    session_id("tmo1");
    $ok = session_start();
    $seen = $_SESSION;
    $_SESSION["v"] = "readonly-wrote";
    session_write_close();
    lk_done(["ok" => $ok, "seen" => $seen]);
', [], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '300', 'session_proxy.lock_timeout_action' => 'readonly']);
echo 'readonly: session_start ', var_export($rr['ok'], true), ', saw ', json_encode($rr['seen']), "\n";
lk_print_errors('readonly', $rr, $dsn);
lk_signal_parent("$sig/t-done");
lk_result('holder', sp_wait($a));
echo 'stored: ', json_encode(lk_stored($dsn, 'tmo1')), "\n";

echo "== killed holder\n";
lk_seed($dsn, 'kill1', ['v' => 'before']);
$ini = ['session.save_path' => $dsn, 'session_proxy.lock_expire' => '1'];
$a = lk_spawn('
    session_id("kill1");
    $t = microtime(true);
    session_start();
    $_SESSION["v"] = "never-written";
    lk_signal($P["sig"] . "/k-locked", ["t" => $t]);
    lk_await($P["sig"] . "/never", 15.0);
', ['sig' => $sig], $ini);
$k = lk_wait_signal("$sig/k-locked");
exec('kill -9 ' . (int) $a['pid']);
sp_wait($a, SP_KILLED);
$rb = lk_run('B', '
    session_id("kill1");
    $ok = session_start();
    $t1 = microtime(true);
    $seen = $_SESSION;
    session_write_close();
    lk_done(["ok" => $ok, "acquired" => $t1, "seen" => $seen]);
', [], $ini + ['session_proxy.lock_wait_timeout' => '10000']);
// A was a process of this host and is gone: B breaks its lock at once, not after lock_expire (1 s).
$since = $rb['acquired'] - $k['t'];
echo 'B started: ', var_export($rb['ok'], true), ', at once (< 0.9 s): ', lk_check($since < 0.9, lk_s($since)), "\n";
lk_print_errors('B', $rb, $dsn);
echo 'B saw: ', json_encode($rb['seen']), "\n";
// A holder on another host (its token names another host) keeps the lock until it expires. One
// server, so the lock item's place is known.
$one = mc_dsn([mc_port(1)], '', $pre1);
lk_seed($one, 'kill2', ['v' => 'kept']);
$t = microtime(true);
$v = 'sp1 ' . str_repeat('ab', 16) . '-0123456789abcdef-4242-1 ' . (int) (($t + 1.5) * 1000);
echo 'foreign lock planted: ', trim(mc_raw(mc_port(1), "set {$pre1}lock.kill2 0 5 " . strlen($v) . "\r\n$v")), "\n";
$rc = lk_run('C', '
    session_id("kill2");
    $ok = session_start();
    $t1 = microtime(true);
    $seen = $_SESSION;
    session_write_close();
    lk_done(["ok" => $ok, "acquired" => $t1, "seen" => $seen]);
', [], ['session.save_path' => $one, 'session_proxy.lock_expire' => '1', 'session_proxy.lock_wait_timeout' => '10000']);
$since = ($rc['acquired'] ?? 0) - $t;
echo 'C started: ', var_export($rc['ok'] ?? null, true), ', when the lock of the holder on another host expired (1.5-3.5 s): ',
    lk_check($since >= 1.45 && $since < 3.5, lk_s($since)), "\n";
lk_print_errors('C', $rc, $one);
echo 'C saw: ', json_encode($rc['seen'] ?? null), "\n";

echo "== taken-over lock is not deleted\n";
lk_seed($dsn, 'over1', ['v' => 'base']);
$a = lk_spawn('
    session_id("over1");
    session_start();
    lk_signal($P["sig"] . "/o-locked");
    lk_await($P["sig"] . "/o-taken");
    $_SESSION["v"] = "stale-A";
    session_write_close();
    lk_done([]);
', ['sig' => $sig], ['session.save_path' => $dsn, 'session_proxy.lock_expire' => '1']);
lk_wait_signal("$sig/o-locked");
$b = lk_spawn('
    session_id("over1");
    $ok = session_start();
    lk_signal($P["sig"] . "/o-taken");
    lk_await($P["sig"] . "/o-a-done");
    $_SESSION["v"] = "B";
    session_write_close();
    lk_done(["ok" => $ok]);
', ['sig' => $sig], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '10000']);
lk_wait_signal("$sig/o-taken");
$ra = lk_result('A', sp_wait($a));
// A is done: B's lock must still be there, so C cannot take the session.
$rc = lk_run('C', 'session_id("over1"); $ok = session_start(); lk_done(["ok" => $ok]);', [],
    ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '200']);
lk_signal_parent("$sig/o-a-done");
$rb = lk_result('B', sp_wait($b));
lk_print_errors('A', $ra, $dsn);
echo 'C (while B holds the lock): ', lk_lock_held($rc, 'over1'), "\n";
echo 'B: ', var_export($rb['ok'], true), "\n";
lk_print_errors('B', $rb, $dsn);
echo 'stored: ', json_encode(lk_stored($dsn, 'over1')), "\n";
?>
--EXPECTF--
== wait and hand-over
A: no errors
B: no errors
B waited >= 0.4 s: yes
B got the lock after A released it, within 100 ms: yes
B saw: {"n":2}
== timeout: fail and readonly
fail: session_start false, waited 0.3-2 s: yes
fail: Warning: session_start(): session_proxy: timed out after 300 ms (session_proxy.lock_wait_timeout) waiting for the lock on session tmo1 held by another request in memcached://%s
fail: Warning: session_start(): Failed to read session data: session_proxy (path: <DSN>)
readonly: session_start true, saw {"v":"holder"}
readonly: Notice: session_start(): session_proxy: timed out after 300 ms (session_proxy.lock_wait_timeout) waiting for the lock on session tmo1 held by another request in memcached://%s; opened read-only, its changes will not be saved
readonly: Notice: session_write_close(): session_proxy: session tmo1 was opened read-only after a lock wait timeout; its changes were not saved
stored: {"v":"holder-wrote"}
== killed holder
B started: true, at once (< 0.9 s): yes
B: no errors
B saw: {"v":"before"}
foreign lock planted: STORED
C started: true, when the lock of the holder on another host expired (1.5-3.5 s): yes
C: no errors
C saw: {"v":"kept"}
== taken-over lock is not deleted
A: Warning: session_write_close(): session_proxy: the lock on session over1 expired after 1 s (session_proxy.lock_expire) and another request took it over; this request's changes were not saved
A: Warning: session_write_close(): Failed to write session data %s
C (while B holds the lock): lock held
B: true
B: no errors
stored: {"v":"B"}
