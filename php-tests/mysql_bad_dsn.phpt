--TEST--
MySQL/MariaDB engine: a malformed DSN or a bad option gives a warning naming it; an unreachable server or socket, a wrong password, a missing database or table (create=never), a server whose certificate is not trusted: a warning naming host:port (or the socket) and the cause; session_start() returns false; no password in any message
--FILE--
<?php
require __DIR__ . '/inc/mysql.inc';

$port = my_env('SP_MYSQL_PORT');
$cases = [
    'mysql://',
    'mysql://127.0.0.1',
    'mysql:///sp',
    'mysql://127.0.0.1:0/sp',
    'mysql://h1,h2/sp',
    'mysql://u:hunter2@127.0.0.1/sp?bogus=1',
    'mysql://127.0.0.1/sp?table=a-b',
    'mysql://127.0.0.1/sp?table=' . str_repeat('t', 49),
    'mysql://127.0.0.1/sp?sslmode=maybe',
    'mysql://127.0.0.1/sp?sslrootcert=ca.pem',
    'mysql://127.0.0.1/sp?connect_timeout=0',
    'mysql://127.0.0.1/sp?lock=file',
    'mysql://127.0.0.1/sp?lock=row&schema=symfony',
    'mysql:///sp?socket=relative.sock',
    'mysql://127.0.0.1/sp?socket=/run/x.sock',
    'mysql:///sp?socket=/run/x.sock&sslmode=verify-full',
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
$t = my_table('bad');
$user = my_env('SP_MYSQL_USER');
$connect = [
    'nothing listens' => "mysql://$user:hunter2@127.0.0.1:1/sp?connect_timeout=1",
    'no such socket' => "mysql://$user:hunter2@/sp?socket=/nonexistent/mysqld.sock",
    'wrong password' => "mysql://$user:hunter2@127.0.0.1:$port/sp?sslmode=disable",
    'no such database' => str_replace('/' . my_env('SP_MYSQL_DB') . '?', '/nosuchdb?', my_dsn($t)),
    'create=never, no table' => my_dsn($t, 'create=never'),
    'verify-full without the CA' => str_replace('sslmode=disable', 'sslmode=verify-full', my_dsn($t)),
];
foreach ($connect as $name => $dsn) {
    $r = lk_run('connect', '$ok = session_start(); lk_done(["ok" => $ok]);', [], ['session.save_path' => $dsn]);
    $w = $r['errors'][0][1] ?? '(no warning)';
    $w = str_replace([$port, $t], ['PORT', 'TABLE'], $w);
    echo "$name: ", var_export($r['ok'] ?? null, true), ', password shown: ', var_export(str_contains($w, 'hunter2') || str_contains($w, my_env('SP_MYSQL_PASSWORD')), true), "\n  $w\n";
}

// php --ri never shows the password of a configured DSN.
$dsn = my_dsn($t);
$info = sp_run(escapeshellarg(sp_php_binary()) . ' -n -d ' . escapeshellarg('extension=' . sp_so()) . ' -d session.save_handler=session_proxy -d '
    . escapeshellarg("session.save_path=$dsn") . ' --ri session_proxy');
echo 'php --ri shows the password: ', var_export(str_contains($info, my_env('SP_MYSQL_PASSWORD')), true), "\n";
?>
--EXPECTF--
mysql:// => false
  Warning: no database name given; write mysql://host/dbname
mysql://127.0.0.1 => false
  Warning: no database name given; write mysql://host/dbname
mysql:///sp => false
  Warning: no server given; write mysql://host[:port]/dbname
mysql://127.0.0.1:0/sp => false
  Warning: port "0" of server "127.0.0.1:0" must be an integer from 1 to 65535
mysql://h1,h2/sp => false
  Warning: mysql:// takes one server (host[:port]); for several, put ProxySQL or a load balancer in front
mysql://u:hunter2@127.0.0.1/sp?bogus=1 => false
  Warning: unknown option "bogus" for mysql:// (known: table, sslmode, sslrootcert, connect_timeout, lock, schema, create, socket)
mysql://127.0.0.1/sp?table=a-b => false
  Warning: option table="a-b" must be a table name of letters, digits and _ (at most 63, not starting with a digit)
mysql://127.0.0.1/sp?table=ttttttttttttttttttttttttttttttttttttttttttttttttt => false
  Warning: option table="ttttttttttttttttttttttttttttttttttttttttttttttttt" must be a table name of at most 48 characters on mysql:// (its procedures' names must fit in 64)
mysql://127.0.0.1/sp?sslmode=maybe => false
  Warning: option sslmode="maybe" must be disable, prefer, require or verify-full
mysql://127.0.0.1/sp?sslrootcert=ca.pem => false
  Warning: sslrootcert "ca.pem" is not absolute
mysql://127.0.0.1/sp?connect_timeout=0 => false
  Warning: option connect_timeout="0" must be seconds from 0.001 to 3600 (e.g. 0.5)
mysql://127.0.0.1/sp?lock=file => false
  Warning: option lock="file" must be advisory or row
mysql://127.0.0.1/sp?lock=row&schema=symfony => false
  Warning: lock=row works with schema=native only (Symfony's table has no lock table; its requests lock with advisory locks)
mysql:///sp?socket=relative.sock => false
  Warning: socket "relative.sock" is not absolute
mysql://127.0.0.1/sp?socket=/run/x.sock => false
  Warning: give a host or socket=, not both; write mysql:///dbname?socket=/path for a unix socket
mysql:///sp?socket=/run/x.sock&sslmode=verify-full => false
  Warning: sslmode=require and verify-full are for TCP; a unix socket (socket=) is local and not encrypted
nothing listens: false, password shown: false
  session_start(): session_proxy: cannot open mysql://127.0.0.1:1/sp?table=sessions: could not connect: Connection refused (os error 111)
no such socket: false, password shown: false
  session_start(): session_proxy: cannot open mysql:///sp?socket=/nonexistent/mysqld.sock&table=sessions: could not connect: No such file or directory (os error 2)
wrong password: false, password shown: false
  session_start(): session_proxy: cannot open mysql://127.0.0.1:PORT/sp?table=sessions: Access denied for user 'sp'@'127.0.0.1' (using password: YES) (error 1045, SQLSTATE 28000)
no such database: false, password shown: false
  session_start(): session_proxy: cannot open mysql://127.0.0.1:PORT/nosuchdb?table=TABLE: Access denied for user 'sp'@'127.0.0.1' to database 'nosuchdb' (error 1044, SQLSTATE 42000)
create=never, no table: false, password shown: false
  session_start(): session_proxy: cannot open mysql://127.0.0.1:PORT/sp?table=TABLE: create=never and the database lacks table TABLE, table TABLE_meta, procedure TABLE_sp3_apply, procedure TABLE_sp3_write, procedure TABLE_sp3_lock (create it with the DDL in the README, or use create=auto)
verify-full without the CA: false, password shown: false
  session_start(): session_proxy: cannot open mysql://127.0.0.1:PORT/sp?table=TABLE: TLS: %scertificate verify failed%s
php --ri shows the password: false
