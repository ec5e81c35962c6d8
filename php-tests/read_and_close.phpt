--TEST--
session_start(['read_and_close' => true]) takes no lock and never waits, also with locking On: while another request holds the session's lock for 2 s it returns at once with the last committed data, on every engine; the holder's write then lands; through SessionProxy\Handler too
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';
require_once __DIR__ . '/inc/redis.inc';

$d = sp_tmpdir('rac');
mkdir("$d/files");
$engines = [
    'sqlite' => "sqlite://$d/sessions.sqlite",
    'files' => "files://$d/files",
    'redis' => 'redis://127.0.0.1:' . rd_port() . '?prefix=' . rd_prefix('rac'),
    'memcached' => mc_dsn([mc_port(1)]),
];
foreach ($engines as $engine => $dsn) {
    echo "== $engine\n";
    foreach (['save handler' => false, 'class' => true] as $how => $class) {
        $id = 'rac' . ($class ? 'c' : 'h');
        $use = $class
            ? 'session_set_save_handler(new SessionProxy\Handler($P["dsn"]), true);'
            : 'ini_set("session.save_handler", "session_proxy"); ini_set("session.save_path", $P["dsn"]);';
        lk_seed($dsn, $id, ['v' => 'committed']);
        $sig = sp_tmpdir('rac-sig');
        // The holder: locks the session, changes it, holds the lock for 2 s, then writes.
        $holder = lk_spawn($use . '
            session_id($P["id"]);
            session_start();
            $_SESSION["v"] = "holder";
            lk_signal($P["sig"] . "/locked");
            usleep(2000000);
            session_write_close();
            lk_done([]);
        ', ['id' => $id, 'sig' => $sig, 'dsn' => $dsn], ['session.save_path' => $dsn]);
        lk_wait_signal("$sig/locked");
        $r = lk_run('reader', $use . '
            session_id($P["id"]);
            $t0 = microtime(true);
            $ok = session_start(["read_and_close" => true]);
            $took = microtime(true) - $t0;
            lk_done(["ok" => $ok, "took" => $took, "data" => $_SESSION, "active" => session_status() === PHP_SESSION_ACTIVE]);
        ', ['id' => $id, 'dsn' => $dsn], ['session.save_path' => $dsn, 'session_proxy.locking' => '1', 'session_proxy.lock_wait_timeout' => '10000']);
        lk_result('holder', sp_wait($holder));
        echo "-- $how\n";
        echo 'read_and_close returned true: ', var_export($r['ok'] ?? null, true), "\n";
        // The holder holds the lock for 2 s; waiting for it would take about 2 s.
        echo 'did not wait for the lock (< 0.5 s): ', lk_check(($r['took'] ?? INF) < 0.5, lk_s($r['took'] ?? INF)), "\n";
        echo 'read the committed data: ', json_encode($r['data'] ?? null), "\n";
        echo 'session closed after the read: ', var_export(!($r['active'] ?? true), true), "\n";
        lk_print_errors('reader', $r, $dsn);
        echo 'the holder\'s write landed: ', json_encode(lk_stored($dsn, $id)), "\n";
    }
}
// Without read_and_close the same read waits for the holder (what the option avoids).
$dsn = $engines['sqlite'];
$sig = sp_tmpdir('rac-sig');
$holder = lk_spawn('session_id("racw"); session_start(); lk_signal($P["sig"] . "/locked"); usleep(1000000); session_write_close(); lk_done([]);',
    ['sig' => $sig], ['session.save_path' => $dsn]);
lk_wait_signal("$sig/locked");
$r = lk_run('waiter', '$t0 = microtime(true); session_id("racw"); session_start(); lk_done(["took" => microtime(true) - $t0]);', [], ['session.save_path' => $dsn]);
lk_result('holder', sp_wait($holder));
echo "== a plain session_start() waits for the holder (> 0.5 s): ", lk_check(($r['took'] ?? 0) > 0.5, lk_s($r['took'] ?? 0)), "\n";
?>
--EXPECT--
== sqlite
-- save handler
read_and_close returned true: true
did not wait for the lock (< 0.5 s): yes
read the committed data: {"v":"committed"}
session closed after the read: true
reader: no errors
the holder's write landed: {"v":"holder"}
-- class
read_and_close returned true: true
did not wait for the lock (< 0.5 s): yes
read the committed data: {"v":"committed"}
session closed after the read: true
reader: no errors
the holder's write landed: {"v":"holder"}
== files
-- save handler
read_and_close returned true: true
did not wait for the lock (< 0.5 s): yes
read the committed data: {"v":"committed"}
session closed after the read: true
reader: no errors
the holder's write landed: {"v":"holder"}
-- class
read_and_close returned true: true
did not wait for the lock (< 0.5 s): yes
read the committed data: {"v":"committed"}
session closed after the read: true
reader: no errors
the holder's write landed: {"v":"holder"}
== redis
-- save handler
read_and_close returned true: true
did not wait for the lock (< 0.5 s): yes
read the committed data: {"v":"committed"}
session closed after the read: true
reader: no errors
the holder's write landed: {"v":"holder"}
-- class
read_and_close returned true: true
did not wait for the lock (< 0.5 s): yes
read the committed data: {"v":"committed"}
session closed after the read: true
reader: no errors
the holder's write landed: {"v":"holder"}
== memcached
-- save handler
read_and_close returned true: true
did not wait for the lock (< 0.5 s): yes
read the committed data: {"v":"committed"}
session closed after the read: true
reader: no errors
the holder's write landed: {"v":"holder"}
-- class
read_and_close returned true: true
did not wait for the lock (< 0.5 s): yes
read the committed data: {"v":"committed"}
session closed after the read: true
reader: no errors
the holder's write landed: {"v":"holder"}
== a plain session_start() waits for the holder (> 0.5 s): yes
