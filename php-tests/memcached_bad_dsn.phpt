--TEST--
Memcached engine: a malformed DSN or a bad option gives a warning naming it, and session_start() returns false
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

$p = mc_port(1);
$cases = [
    'memcached://',
    "memcached://127.0.0.1:0",
    "memcached://127.0.0.1:$p?replicas=1",
    "memcached://127.0.0.1:$p?timeout=abc",
    "memcached://127.0.0.1:$p?prefix=a%20b",
    "memcached://127.0.0.1:$p?weights=1,2",
    "memcached://127.0.0.1:$p?foo=1",
    "memcached://127.0.0.1:$p,127.0.0.1:$p",
];
foreach ($cases as $dsn) {
    $r = lk_run('bad', '$ok = session_start(); lk_done(["ok" => $ok]);', [], ['session.save_path' => $dsn]);
    echo $dsn === "memcached://" ? $dsn : str_replace((string) $p, 'PORT', $dsn), ' => ', var_export($r['ok'] ?? null, true), "\n";
    foreach ($r['errors'] as [$lvl, $msg]) {
        // The reason, without the accepted-forms list.
        if (preg_match('/invalid session.save_path "[^"]*": (.*?); accepted forms/', $msg, $m)) {
            echo "  $lvl: ", str_replace((string) $p, 'PORT', $m[1]), "\n";
        }
    }
}
?>
--EXPECT--
memcached:// => false
  Warning: no server given (memcached://host:port)
memcached://127.0.0.1:0 => false
  Warning: server "127.0.0.1:0": port "0" must be an integer from 1 to 65535
memcached://127.0.0.1:PORT?replicas=1 => false
  Warning: option replicas="1" needs more than one server (copies go to the next servers)
memcached://127.0.0.1:PORT?timeout=abc => false
  Warning: option timeout="abc" must be an integer from 1 to 60000
memcached://127.0.0.1:PORT?prefix=a%20b => false
  Warning: option prefix="a b" must be 1 to 128 printable ASCII characters without spaces
memcached://127.0.0.1:PORT?weights=1,2 => false
  Warning: option weights="1,2" must give one weight per server (1 servers)
memcached://127.0.0.1:PORT?foo=1 => false
  Warning: unknown option "foo" for memcached:// (known: prefix, replicas, timeout, retry, weights, lock_placement, busy_poll)
memcached://127.0.0.1:PORT,127.0.0.1:PORT => false
  Warning: server 127.0.0.1:PORT is listed twice
