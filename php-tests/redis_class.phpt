--TEST--
Redis engine through the SessionProxy\Handler class: a session cycle, the lock excludes a second process, the data is phpredis' key
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$p = rd_port();
$pre = rd_prefix('class');
$dsn = "redis://127.0.0.1:$p?prefix=$pre";
$id = 'cls' . bin2hex(random_bytes(6));
set_error_handler(function ($no, $msg) { echo "error: $msg\n"; return true; });
foreach (SP_CLI_INI as $k => $v) {
    if ($k !== 'session.save_handler') ini_set($k, $v);
}
session_set_save_handler(new SessionProxy\Handler($dsn), true);
session_id($id);
var_dump(session_start());
$_SESSION['n'] = 1;
echo 'lock held: ', rd_cmd(['EXISTS', "{$pre}{$id}_LOCK"]), "\n";
$r = lk_run('other', '
    session_id($P["id"]);
    $ok = session_start();
    lk_done(["ok" => $ok]);
', ['id' => $id], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '200']);
echo 'another process waits and times out: ', lk_lock_held($r, $id), "\n";
session_write_close();
echo 'stored: ', json_encode(rd_cmd(['GET', "{$pre}{$id}"])), ' lock: ', rd_cmd(['EXISTS', "{$pre}{$id}_LOCK"]), "\n";
?>
--EXPECT--
bool(true)
lock held: 1
another process waits and times out: lock held
stored: "n|i:1;" lock: 0
