--TEST--
Memcached engine: every DSN form round-trips; hooks (write, lazy_write touch, strict mode validate_sid, create_sid, destroy, regenerate) with php-memcached's key layout
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

$p1 = mc_port(1); $p2 = mc_port(2); $p3 = mc_port(3);
$sock = mc_env('SP_MEMCACHED_SOCKET');
$pfx = 'hk' . bin2hex(random_bytes(3)) . '.';
$forms = [
    'one server' => "memcached://127.0.0.1:$p1?prefix={$pfx}a.",
    'three servers' => "memcached://127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3?prefix={$pfx}b.",
    'unix socket' => "memcached://$sock?prefix={$pfx}c.",
    'mixed + options' => "memcached://127.0.0.1:$p1,$sock?prefix={$pfx}d.&replicas=1&timeout=500&retry=1000&weights=2,1",
];
foreach ($forms as $name => $dsn) {
    $r = lk_run('w', '
        session_id("form1");
        $ok = session_start();
        $_SESSION["v"] = "bytes\0\xff" . str_repeat("x", 1000);
        session_write_close();
        session_id("form1");
        session_start();
        $back = $_SESSION["v"] ?? null;
        session_write_close();
        lk_done(["ok" => $ok, "same" => $back === "bytes\0\xff" . str_repeat("x", 1000)]);
    ', [], ['session.save_path' => $dsn]);
    echo "$name: started ", var_export($r['ok'] ?? null, true), ', round trip ', var_export($r['same'] ?? null, true), "\n";
    lk_print_errors($name, $r, $dsn);
}

// Key layout: <prefix><id>, raw bytes, TTL = gc_maxlifetime, no lock item left behind.
$dsn = "memcached://127.0.0.1:$p1?prefix={$pfx}k.";
lk_run('w', 'session_id("layout1"); session_start(); $_SESSION["a"] = 1; session_write_close(); lk_done([]);', [],
    ['session.save_path' => $dsn, 'session.gc_maxlifetime' => '777']);
echo 'stored bytes: ', mc_get($p1, "{$pfx}k.layout1"), "\n";
$t = (int) substr(trim(mc_raw($p1, "mg {$pfx}k.layout1 t")), 4);
echo 'ttl is gc_maxlifetime (777): ', lk_check($t > 770 && $t <= 777, (string) $t), "\n";
echo 'lock item after close: ', trim(mc_raw($p1, "mg {$pfx}k.lock.layout1 v")), "\n";

// lazy_write: unchanged data is touched (update_timestamp), not rewritten.
lk_run('t', 'session_id("layout1"); session_start(); session_write_close(); lk_done([]);', [],
    ['session.save_path' => $dsn, 'session.gc_maxlifetime' => '5000', 'session.lazy_write' => '1']);
$t = (int) substr(trim(mc_raw($p1, "mg {$pfx}k.layout1 t")), 4);
echo 'ttl after touch (5000): ', lk_check($t > 4990 && $t <= 5000, (string) $t), "\n";

// Strict mode: an unknown id is replaced; a known one is kept.
$r = lk_run('s', '
    session_id("unknownid1");
    session_start();
    $new = session_id();
    $_SESSION["x"] = 1;
    session_write_close();
    session_id("layout1");
    session_start();
    $kept = session_id();
    session_write_close();
    lk_done(["replaced" => $new !== "unknownid1", "kept" => $kept === "layout1", "new" => $new]);
', [], ['session.save_path' => $dsn, 'session.use_strict_mode' => '1']);
echo 'strict: unknown replaced ', var_export($r['replaced'], true), ', known kept ', var_export($r['kept'], true), "\n";
lk_print_errors('strict', $r, $dsn);
echo 'unknown id not created: ', var_export(mc_get($p1, "{$pfx}k.unknownid1") === null, true), "\n";

// create_sid does not pre-create the item (php-memcached adds an empty one): an aborted new session
// leaves nothing.
$r = lk_run('c', 'session_start(); $id = session_id(); session_abort(); lk_done(["id" => $id]);', [], ['session.save_path' => $dsn]);
echo 'new id pre-created: ', var_export(mc_get($p1, "{$pfx}k." . $r['id']) !== null, true), "\n";

// destroy removes the item; regenerate(true) moves the data.
$r = lk_run('d', '
    session_id("regen1");
    session_start();
    $_SESSION["r"] = 7;
    session_regenerate_id(true);
    $new = session_id();
    session_write_close();
    session_id("layout1");
    session_start();
    session_destroy();
    lk_done(["new" => $new]);
', [], ['session.save_path' => $dsn]);
lk_print_errors('destroy', $r, $dsn);
echo 'destroyed: ', var_export(mc_get($p1, "{$pfx}k.layout1"), true), "\n";
echo 'old id after regenerate: ', var_export(mc_get($p1, "{$pfx}k.regen1"), true), "\n";
echo 'new id after regenerate: ', mc_get($p1, "{$pfx}k." . $r['new']), "\n";
?>
--EXPECT--
one server: started true, round trip true
one server: no errors
three servers: started true, round trip true
three servers: no errors
unix socket: started true, round trip true
unix socket: no errors
mixed + options: started true, round trip true
mixed + options: no errors
stored bytes: a|i:1;
ttl is gc_maxlifetime (777): yes
lock item after close: EN
ttl after touch (5000): yes
strict: unknown replaced true, known kept true
strict: no errors
unknown id not created: true
new id pre-created: false
destroy: no errors
destroyed: NULL
old id after regenerate: NULL
new id after regenerate: r|i:7;
