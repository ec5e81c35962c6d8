--TEST--
Memcached engine: a session too large for the server's item size limit gets a warning naming the server and the limit; the old data stays
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

$p = (int) mc_env('SP_MEMCACHED_SMALL_PORT');
$dsn = mc_dsn([$p], '', $prefix);
lk_seed($dsn, 'big1', ['n' => 1]);
$r = lk_run('big', '
    session_id("big1");
    $ok = session_start();
    $_SESSION["blob"] = str_repeat("z", 2 << 20);
    session_write_close();
    lk_done(["ok" => $ok]);
', [], ['session.save_path' => $dsn, 'memory_limit' => '-1']);
foreach (lk_errors($r, $dsn) as $e) {
    echo str_replace((string) $p, 'PORT', preg_replace('/\(\d+ bytes\) to \S+:/', '(N bytes) to DSN:', $e)), "\n";
}
echo 'stored: ', json_encode(lk_stored($dsn, 'big1')), "\n";
echo 'lock released: ', trim(mc_raw($p, "mg {$prefix}lock.big1 v")), "\n";
?>
--EXPECTF--
Warning: session_write_close(): session_proxy: cannot write session big1 (N bytes) to DSN: the session (%d bytes) is too large for memcached server 127.0.0.1:PORT: its item size limit is 1048576 bytes (memcached -I); nothing was sent; the stored session is unchanged
Warning: session_write_close(): Failed to write session data %s
stored: {"n":1}
lock released: EN
