--TEST--
MySQL/MariaDB engine: every DSN form round-trips (TCP, unix socket, TLS verify-full, require, prefer); hooks (write, lazy_write touch, strict mode validate_sid, create_sid without a row, destroy, regenerate, gc, 16 MiB) in the native table
--FILE--
<?php
require __DIR__ . '/inc/mysql.inc';

$port = my_env('SP_MYSQL_PORT');
$sock = my_env('SP_MYSQL_SOCKET');
$ca = my_env('SP_MYSQL_CA');
$t = my_table('hooks');
$user = my_env('SP_MYSQL_USER'); $pw = my_env('SP_MYSQL_PASSWORD'); $db = my_env('SP_MYSQL_DB');
$forms = [
    'tcp' => my_dsn($t),
    'unix socket' => "mysql://$user:$pw@/$db?socket=$sock&table=$t",
    'tls verify-full with the test CA' => str_replace('sslmode=disable', "sslmode=verify-full&sslrootcert=$ca", my_dsn($t, '', "localhost:$port")),
    'tls require, options' => str_replace('sslmode=disable', 'sslmode=require&connect_timeout=2.5&lock=advisory&schema=native&create=auto', my_dsn($t)),
    'percent-encoded password, upper-case scheme, prefer' => 'MYSQL://' . $user . ':' . rawurlencode($pw) . "@127.0.0.1:$port/$db?table=$t&sslmode=prefer",
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

// The row: data as PHP encoded it, updated/expiry from gc_maxlifetime, a version.
$dsn = my_dsn($t);
lk_run('w', 'session_id("layout1"); session_start(); $_SESSION["a"] = 1; session_write_close(); lk_done([]);', [],
    ['session.save_path' => $dsn, 'session.gc_maxlifetime' => '777']);
[$data, $life, $v1, $user_id] = my_sql("SELECT data, ROUND(expiry - updated), version, COALESCE(user_id, 'NULL') FROM $t WHERE id = 'layout1'")[0];
echo "stored: $data, expiry - updated = $life, user_id $user_id\n";

// lazy_write: unchanged data is touched (updated moves, version stays), not rewritten.
$u1 = my_value("SELECT updated FROM $t WHERE id = 'layout1'");
usleep(20000);
lk_run('t', 'session_id("layout1"); session_start(); session_write_close(); lk_done([]);', [],
    ['session.save_path' => $dsn, 'session.gc_maxlifetime' => '5000', 'session.lazy_write' => '1']);
[$u2, $v2, $life] = my_sql("SELECT updated, version, ROUND(expiry - updated) FROM $t WHERE id = 'layout1'")[0];
echo 'touched: updated moved ', lk_check((float) $u2 > (float) $u1, "$u1 -> $u2"), ', version kept ', lk_check($v1 === $v2, "$v1 -> $v2"), ", expiry - updated = $life\n";
lk_run('c', 'session_id("layout1"); session_start(); $_SESSION["a"] = 2; session_write_close(); lk_done([]);', [], ['session.save_path' => $dsn]);
echo 'changed: version moved ', lk_check(my_value("SELECT version FROM $t WHERE id = 'layout1'") !== $v2), "\n";

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
    lk_done(["replaced" => $new !== "unknownid1", "kept" => $kept === "layout1"]);
', [], ['session.save_path' => $dsn, 'session.use_strict_mode' => '1']);
echo 'strict: unknown replaced ', var_export($r['replaced'], true), ', known kept ', var_export($r['kept'], true), "\n";
lk_print_errors('strict', $r, $dsn);
echo 'unknown id not created: ', my_value("SELECT COUNT(*) FROM $t WHERE id = 'unknownid1'"), " rows\n";
// Ids differing only in case are two sessions (the id column is binary).
lk_run('k', 'session_id("CaseId1"); session_start(); $_SESSION["c"] = 1; session_write_close(); lk_done([]);', [], ['session.save_path' => $dsn]);
$r = lk_run('k', 'session_id("caseid1"); session_start(); $s = $_SESSION; session_abort(); lk_done(["s" => $s]);', [], ['session.save_path' => $dsn]);
echo 'caseid1 reads ', json_encode($r['s']), "\n";

// create_sid does not pre-create a row: an aborted new session leaves nothing.
$r = lk_run('c', 'session_start(); $id = session_id(); session_abort(); lk_done(["id" => $id]);', [], ['session.save_path' => $dsn]);
echo 'new id pre-created: ', my_value("SELECT COUNT(*) FROM $t WHERE id = '" . $r['id'] . "'"), " rows\n";

// destroy removes the row; regenerate(true) moves the data.
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
$new = $r['new'];
echo 'destroyed: ', my_value("SELECT COUNT(*) FROM $t WHERE id = 'layout1'"), " rows\n";
echo 'old id after regenerate: ', my_value("SELECT COUNT(*) FROM $t WHERE id = 'regen1'"), " rows\n";
echo 'new id after regenerate: ', my_value("SELECT data FROM $t WHERE id = '" . $r['new'] . "'"), "\n";

// Expiry: older than gc_maxlifetime reads as absent; session_gc() deletes it and nothing fresh.
my_sql("UPDATE $t SET updated = updated - 100 WHERE id = 'form1'");
$r = lk_run('g', '
    session_id("form1");
    session_start();
    $seen = $_SESSION;
    $n = session_gc();
    session_abort();
    lk_done(["seen" => $seen, "gc" => $n]);
', [], ['session.save_path' => $dsn, 'session.gc_maxlifetime' => '50']);
echo 'expired reads as ', json_encode($r['seen']), ', session_gc() removed ', $r['gc'], "\n";
echo 'rows left: form1 ', my_value("SELECT COUNT(*) FROM $t WHERE id = 'form1'"), ', the regenerated one ', my_value("SELECT COUNT(*) FROM $t WHERE id = '$new'"), "\n";

// 16 MiB of session data.
$r = lk_run('big', '
    session_id("big1");
    session_start();
    $_SESSION["b"] = str_repeat("\xa5", 16 << 20);
    session_write_close();
    session_id("big1");
    session_start();
    $n = strlen($_SESSION["b"] ?? "");
    session_abort();
    lk_done(["n" => $n]);
', [], ['session.save_path' => $dsn, 'memory_limit' => '512M']);
echo '16 MiB back: ', $r['n'], ' bytes, stored ', my_value("SELECT LENGTH(data) FROM $t WHERE id = 'big1'"), "\n";
lk_print_errors('big', $r, $dsn);
?>
--EXPECT--
tcp: started true, round trip true
tcp: no errors
unix socket: started true, round trip true
unix socket: no errors
tls verify-full with the test CA: started true, round trip true
tls verify-full with the test CA: no errors
tls require, options: started true, round trip true
tls require, options: no errors
percent-encoded password, upper-case scheme, prefer: started true, round trip true
percent-encoded password, upper-case scheme, prefer: no errors
stored: a|i:1;, expiry - updated = 777, user_id NULL
touched: updated moved yes, version kept yes, expiry - updated = 5000
changed: version moved yes
strict: unknown replaced true, known kept true
strict: no errors
unknown id not created: 0 rows
caseid1 reads []
new id pre-created: 0 rows
destroy: no errors
destroyed: 0 rows
old id after regenerate: 0 rows
new id after regenerate: r|i:7;
expired reads as [], session_gc() removed 1
rows left: form1 0, the regenerated one 1
16 MiB back: 16777216 bytes, stored 16777232
big: no errors
