--TEST--
Redis engine: every DSN form (redis://, ACL user, db, unix://, phpredis tcp:// and list) and every hook: read/write, TTL = gc_maxlifetime, lazy_write refreshes the TTL, strict mode, create_sid never pre-creates, destroy, gc
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$p = rd_port();
$p2 = rd_port(2);
$sock = rd_socket();
$pre = rd_prefix('hooks');
rd_cmd(['ACL', 'SETUSER', 'sp_phpt', 'on', '>s3cret', '~*', '&*', '+@all']);

// label => [save_path, port, db, prefix]
$forms = [
    'redis://' => ["redis://127.0.0.1:$p?prefix={$pre}a:", $p, 0, "{$pre}a:"],
    'redis:// db 3' => ["redis://127.0.0.1:$p/3?prefix={$pre}b:&timeout=0.5&read_timeout=1", $p, 3, "{$pre}b:"],
    'redis:// ACL user' => ["redis://sp_phpt:s3cret@127.0.0.1:$p/0?prefix={$pre}c:", $p, 0, "{$pre}c:"],
    'unix://' => ["unix://$sock?db=2&prefix={$pre}d:", $p, 2, "{$pre}d:"],
    'phpredis tcp://' => ["tcp://127.0.0.1:$p?database=1&prefix={$pre}e:&timeout=2&persistent=1", $p, 1, "{$pre}e:"],
    'phpredis tcp:// with user+auth' => ["tcp://127.0.0.1:$p?user=sp_phpt&auth=s3cret&prefix={$pre}f:", $p, 0, "{$pre}f:"],
    'phpredis unix://' => ["unix://$sock?database=4&prefix={$pre}g:", $p, 4, "{$pre}g:"],
];
set_error_handler(function ($no, $msg) { echo "  error: $msg\n"; return true; });
foreach ($forms as $label => [$dsn, $port, $db, $prefix]) {
    $id = 'hooks' . bin2hex(random_bytes(4));
    $r1 = sp_cycle($dsn, $id, function () { $_SESSION['n'] = 1; }, ['session.gc_maxlifetime' => '100']);
    $r2 = sp_cycle($dsn, $id, function () { $_SESSION['n']++; });
    $raw = rd_cmd(['GET', $prefix . $id], $port, $db);
    echo "$label: started=", json_encode([$r1['started'], $r2['started']]), ' seen=', json_encode($r2['data'] ?? null),
        ' stored=', json_encode($raw), ' ttl=gc_maxlifetime(100): ', var_export(rd_cmd(['TTL', $prefix . $id], $port, $db) > 95, true), "\n";
    ini_set('session.gc_maxlifetime', '1440');
}

$dsn = "redis://127.0.0.1:$p?prefix={$pre}";
echo "== TTL is session.gc_maxlifetime\n";
sp_cycle($dsn, 'ttl1', function () { $_SESSION['x'] = 1; }, ['session.gc_maxlifetime' => '100', 'session.lazy_write' => '1']);
$ttl = rd_cmd(['TTL', "{$pre}ttl1"]);
echo 'after write with gc_maxlifetime=100: ', var_export($ttl > 95 && $ttl <= 100, true), "\n";
// Unchanged data with lazy_write: update_timestamp refreshes the TTL to the new gc_maxlifetime.
sp_cycle($dsn, 'ttl1', null, ['session.gc_maxlifetime' => '500']);
$ttl = rd_cmd(['TTL', "{$pre}ttl1"]);
echo 'after an unchanged cycle with gc_maxlifetime=500: ', var_export($ttl > 495 && $ttl <= 500, true), "\n";
echo 'lock released: ', var_export(rd_cmd(['EXISTS', "{$pre}ttl1_LOCK"]) === 0, true), "\n";
ini_set('session.gc_maxlifetime', '1440');

echo "== create_sid and strict mode\n";
sp_use($dsn, ['session.use_strict_mode' => '1']);
session_id('unknownid123');
session_start();
$new = session_id();
echo 'unknown id replaced: ', var_export($new !== 'unknownid123' && strlen($new) >= 22, true), "\n";
echo 'new session not created before write: ', var_export(rd_cmd(['EXISTS', "{$pre}$new"]) === 0, true), "\n";
echo 'but locked: ', var_export(rd_cmd(['EXISTS', "{$pre}{$new}_LOCK"]) === 1, true), "\n";
$_SESSION['k'] = 'v';
session_write_close();
echo 'written at close: ', json_encode(rd_cmd(['GET', "{$pre}$new"])), "\n";
session_id($new);
session_start();
echo 'known id kept in strict mode: ', var_export(session_id() === $new, true), ' data: ', json_encode($_SESSION), "\n";

echo "== destroy\n";
echo 'session_destroy(): ', var_export(session_destroy(), true), "\n";
echo 'data and lock gone: ', json_encode([rd_cmd(['EXISTS', "{$pre}$new"]), rd_cmd(['EXISTS', "{$pre}{$new}_LOCK"])]), "\n";

echo "== gc\n";
sp_use($dsn, ['session.use_strict_mode' => '0']);
session_id('gcid');
session_start();
echo 'session_gc(): ', var_export(session_gc(), true), "\n";
session_abort();
echo 'abort released the lock: ', var_export(rd_cmd(['EXISTS', "{$pre}gcid_LOCK"]) === 0, true), "\n";

echo "== read_and_close\n";
sp_cycle($dsn, 'rac', function () { $_SESSION['r'] = 'yes'; });
session_id('rac');
session_start(['read_and_close' => true]);
echo 'read: ', json_encode($_SESSION), ' lock left: ', rd_cmd(['EXISTS', "{$pre}rac_LOCK"]), "\n";

echo "== binary data\n";
ini_set('session.serialize_handler', 'php_serialize');
$bin = random_bytes(70000) . "\0\xff";
sp_cycle($dsn, 'bin', function () use ($bin) { $_SESSION['b'] = $bin; });
$r = sp_cycle($dsn, 'bin');
echo 'binary 70 kB intact: ', var_export(($r['data']['b'] ?? null) === $bin, true), "\n";
?>
--EXPECT--
redis://: started=[true,true] seen={"n":2} stored="n|i:2;" ttl=gc_maxlifetime(100): true
redis:// db 3: started=[true,true] seen={"n":2} stored="n|i:2;" ttl=gc_maxlifetime(100): true
redis:// ACL user: started=[true,true] seen={"n":2} stored="n|i:2;" ttl=gc_maxlifetime(100): true
unix://: started=[true,true] seen={"n":2} stored="n|i:2;" ttl=gc_maxlifetime(100): true
phpredis tcp://: started=[true,true] seen={"n":2} stored="n|i:2;" ttl=gc_maxlifetime(100): true
phpredis tcp:// with user+auth: started=[true,true] seen={"n":2} stored="n|i:2;" ttl=gc_maxlifetime(100): true
phpredis unix://: started=[true,true] seen={"n":2} stored="n|i:2;" ttl=gc_maxlifetime(100): true
== TTL is session.gc_maxlifetime
after write with gc_maxlifetime=100: true
after an unchanged cycle with gc_maxlifetime=500: true
lock released: true
== create_sid and strict mode
unknown id replaced: true
new session not created before write: true
but locked: true
written at close: "k|s:1:\"v\";"
known id kept in strict mode: true data: {"k":"v"}
== destroy
session_destroy(): true
data and lock gone: [0,0]
== gc
session_gc(): 0
abort released the lock: true
== read_and_close
read: {"r":"yes"} lock left: 0
== binary data
binary 70 kB intact: true
