--TEST--
PostgreSQL engine: a malformed DSN or a bad option gives a warning naming it; an unreachable server, a wrong password, a missing database or table (create=never) a warning naming host:port and the cause; session_start() returns false; no password in any message (PHP's own session.save_path row of php --ri session is PHP's)
--FILE--
<?php
require __DIR__ . '/inc/pgsql.inc';

$port = pg_env('SP_PG_PORT');
$cases = [
    'pgsql://',
    'pgsql://127.0.0.1',
    'pgsql://127.0.0.1/',
    'pgsql:///sp',
    'pgsql://127.0.0.1:0/sp',
    'pgsql://127.0.0.1:99999/sp',
    'pgsql://127.0.0.1,/sp',
    'pgsql://u:hunter2@127.0.0.1/sp?bogus=1',
    'pgsql://127.0.0.1/sp?table=a-b',
    'pgsql://127.0.0.1/sp?sslmode=maybe',
    'pgsql://127.0.0.1/sp?sslrootcert=ca.pem',
    'pgsql://127.0.0.1/sp?sslmode=disable&sslrootcert=/ca.pem',
    'pgsql://127.0.0.1/sp?connect_timeout=0',
    'pgsql://127.0.0.1/sp?lock=file',
    'pgsql://127.0.0.1/sp?schema=drupal',
    'pgsql://127.0.0.1/sp?create=yes',
    'pgsql://127.0.0.1/sp?table=x&table=y',
];
foreach ($cases as $dsn) {
    $r = lk_run('bad', '$ok = session_start(); lk_done(["ok" => $ok]);', [], ['session.save_path' => $dsn]);
    echo $dsn, ' => ', var_export($r['ok'] ?? null, true), "\n";
    foreach ($r['errors'] as [$lvl, $msg]) {
        if (preg_match('/invalid session.save_path "([^"]*)": (.*?); accepted forms/', $msg, $m)) {
            echo "  $lvl: {$m[2]}", str_contains($m[1], 'hunter2') ? ' (PASSWORD SHOWN)' : '', "\n";
        }
    }
}

// Reachable forms that fail at connect: each warning names the server and the cause, never the password.
$t = pg_table('bad');
$user = pg_env('SP_PG_USER');
$connect = [
    'nothing listens' => "pgsql://$user:hunter2@127.0.0.1:1/sp?connect_timeout=1",
    'wrong password' => "pgsql://$user:hunter2@127.0.0.1:$port/sp?sslmode=disable",
    'no such database' => str_replace('/' . pg_env('SP_PG_DB') . '?', '/nosuchdb?', pg_dsn($t)),
    'create=never, no table' => pg_dsn($t, 'create=never'),
    'verify-full without the CA' => str_replace('sslmode=disable', 'sslmode=verify-full', pg_dsn($t)),
];
foreach ($connect as $name => $dsn) {
    $t0 = microtime(true);
    $r = lk_run('connect', '$ok = session_start(); lk_done(["ok" => $ok]);', [], ['session.save_path' => $dsn]);
    $took = microtime(true) - $t0;
    $w = $r['errors'][0][1] ?? '(no warning)';
    $w = str_replace([$port, $t], ['PORT', 'TABLE'], $w);
    echo "$name: ", var_export($r['ok'] ?? null, true), ', password shown: ', var_export(str_contains($w, 'hunter2') || str_contains($w, pg_env('SP_PG_PASSWORD')), true), "\n  $w\n";
}

?>
--EXPECTF--
pgsql:// => false
  Warning: no database name given; write pgsql://host/dbname
pgsql://127.0.0.1 => false
  Warning: no database name given; write pgsql://host/dbname
pgsql://127.0.0.1/ => false
  Warning: no database name given; write pgsql://host/dbname
pgsql:///sp => false
  Warning: no server given; write pgsql://host[:port]/dbname
pgsql://127.0.0.1:0/sp => false
  Warning: port "0" of server "127.0.0.1:0" must be an integer from 1 to 65535
pgsql://127.0.0.1:99999/sp => false
  Warning: port "99999" of server "127.0.0.1:99999" must be an integer from 1 to 65535
pgsql://127.0.0.1,/sp => false
  Warning: server "" is not host[:port]; write pgsql://host[:port][,host[:port]]/dbname
pgsql://u:hunter2@127.0.0.1/sp?bogus=1 => false
  Warning: unknown option "bogus" for pgsql:// (known: table, sslmode, sslrootcert, connect_timeout, lock, schema, create)
pgsql://127.0.0.1/sp?table=a-b => false
  Warning: option table="a-b" must be a table name of letters, digits and _ (at most 63, not starting with a digit)
pgsql://127.0.0.1/sp?sslmode=maybe => false
  Warning: option sslmode="maybe" must be disable, prefer, require or verify-full
pgsql://127.0.0.1/sp?sslrootcert=ca.pem => false
  Warning: sslrootcert "ca.pem" is not absolute
pgsql://127.0.0.1/sp?sslmode=disable&sslrootcert=/ca.pem => false
  Warning: sslrootcert is given but sslmode=disable
pgsql://127.0.0.1/sp?connect_timeout=0 => false
  Warning: option connect_timeout="0" must be seconds from 0.001 to 3600 (e.g. 0.5)
pgsql://127.0.0.1/sp?lock=file => false
  Warning: option lock="file" must be advisory or row
pgsql://127.0.0.1/sp?schema=drupal => false
  Warning: option schema="drupal" must be native or symfony
pgsql://127.0.0.1/sp?create=yes => false
  Warning: option create="yes" must be auto or never
pgsql://127.0.0.1/sp?table=x&table=y => false
  Warning: option "table" is given twice
nothing listens: false, password shown: false
  session_start(): session_proxy: cannot open pgsql://127.0.0.1:1/sp?table=sessions: error connecting to server: Connection refused (os error 111)
wrong password: false, password shown: false
  session_start(): session_proxy: cannot open pgsql://127.0.0.1:PORT/sp?table=sessions: db error: FATAL: password authentication failed for user "sp" (SQLSTATE 28P01)
no such database: false, password shown: false
  session_start(): session_proxy: cannot open pgsql://127.0.0.1:PORT/nosuchdb?table=TABLE: db error: FATAL: database "nosuchdb" does not exist (SQLSTATE 3D000)
create=never, no table: false, password shown: false
  session_start(): session_proxy: cannot open pgsql://127.0.0.1:PORT/sp?table=TABLE: create=never and the database lacks table TABLE, function TABLE_sp2_lock, function TABLE_sp2_write, function TABLE_sp2_wait (create it with the DDL in the README, or use create=auto)
verify-full without the CA: false, password shown: false
  session_start(): session_proxy: cannot open pgsql://127.0.0.1:PORT/sp?table=TABLE: error performing TLS handshake: %scertificate verify failed%s
