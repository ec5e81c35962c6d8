--TEST--
Redis engine over TLS (rediss://, a test CA made by the service script): sessions with ca=…, an untrusted certificate refused with a warning naming host:port, verify=none
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$port = (int) getenv('SP_REDIS_TLS_PORT');
$ca = getenv('SP_REDIS_TLS_CA');
$warnings = [];
set_error_handler(function ($no, $msg) use (&$warnings) { $warnings[] = $msg; return true; });
$pre = rd_prefix('tls');
$id = 'tls' . bin2hex(random_bytes(6));

$dsn = "rediss://127.0.0.1:$port/0?ca=$ca&prefix=$pre";
sp_cycle($dsn, $id, fn () => $_SESSION['n'] = 1);
$r = sp_cycle($dsn, $id, fn () => $_SESSION['n']++);
echo 'with the CA: ', json_encode($r), ' warnings: ', json_encode($warnings), "\n";

$warnings = [];
$r = lk_run('child', '
    session_id($P["id"]);
    $ok = session_start();
    $seen = $_SESSION;
    session_write_close();
    lk_done(["ok" => $ok, "seen" => $seen]);
', ['id' => $id], ['session.save_path' => $dsn]);
echo 'another process: ', json_encode($r), "\n";

$r = sp_cycle("rediss://:hunter2@127.0.0.1:$port/0?prefix=$pre", $id);
echo 'without the CA: ', json_encode($r), "\n";
$w = str_replace((string) $port, 'PORT', $warnings[0] ?? '');
echo '  names host:port: ', var_export(str_contains($w, '127.0.0.1:PORT'), true), "\n";
echo '  says it is the certificate: ', var_export(stripos($w, 'certificate') !== false, true), "\n";
echo '  password shown: ', var_export(str_contains($w, 'hunter2'), true), "\n";

$warnings = [];
$r = sp_cycle("rediss://127.0.0.1:$port/0?verify=none&prefix=$pre", $id);
echo 'verify=none: ', json_encode($r), ' warnings: ', json_encode($warnings), "\n";
?>
--EXPECT--
with the CA: {"started":true,"data":{"n":2}} warnings: []
another process: {"ok":true,"seen":{"n":2},"errors":[]}
without the CA: {"started":false}
  names host:port: true
  says it is the certificate: true
  password shown: false
verify=none: {"started":true,"data":{"n":2}} warnings: []
