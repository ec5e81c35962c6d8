--TEST--
Redis engine, per-user index on a server that evicts keys when full (maxmemory and maxmemory-policy allkeys-lru): binding a session and listing a user's sessions warn, naming the server, its policy and its limit (a binding evicted while its session lives would hide that session from destroy_user_sessions); the session is still written and bound; the same server set to noeviction, or without a limit, gives no warning
--FILE--
<?php
require __DIR__ . '/inc/outage.inc';
require_once __DIR__ . '/inc/redis.inc';

$port = ot_free_port();
$dir = sp_tmpdir('revict');
sp_server_start(['redis-server', '--bind', '127.0.0.1', '--port', (string) $port, '--save', '', '--appendonly', 'no',
    '--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru', '--dir', $dir], $port);
$dsn = "redis://127.0.0.1:$port?prefix=sp-phpt-revict:";

// Each step in a child PHP of its own: a connection asks the server once a minute.
$ini = SP_CLI_INI + ['session.save_path' => $dsn];
$step = '
    if ($argv[1] === "login") {
        session_start();
        SessionProxy\set_user("alice");
        $_SESSION["n"] = 1;
        var_dump(session_write_close());
    }
    $n = count(SessionProxy\user_sessions("alice"));
    echo "listed: $n\n";
';
echo "== maxmemory 64mb, allkeys-lru\n", sp_child($step, $ini, ['login']);
echo "== list from another process\n", sp_child($step, $ini, ['list']);
rd_cmd(['CONFIG', 'SET', 'maxmemory-policy', 'noeviction'], $port);
echo "== noeviction\n", sp_child($step, $ini, ['login']);
rd_cmd(['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru'], $port);
rd_cmd(['CONFIG', 'SET', 'maxmemory', '0'], $port);
echo "== allkeys-lru without a limit\n", sp_child($step, $ini, ['login']);
?>
--EXPECTF--
== maxmemory 64mb, allkeys-lru

Warning: session_write_close(): session_proxy: redis 127.0.0.1:%d evicts keys when it is full (maxmemory-policy allkeys-lru, maxmemory 67108864): a session's binding to its user can be evicted while the session lives, and then SessionProxy\user_sessions() and destroy_user_sessions() miss that session; set maxmemory-policy noeviction on the sessions' Redis (or maxmemory 0) in %s on line %d
bool(true)

Warning: SessionProxy\user_sessions(): session_proxy: redis 127.0.0.1:%d evicts keys when it is full (maxmemory-policy allkeys-lru, maxmemory 67108864): a session's binding to its user can be evicted while the session lives, and then SessionProxy\user_sessions() and destroy_user_sessions() miss that session; set maxmemory-policy noeviction on the sessions' Redis (or maxmemory 0) in %s on line %d
listed: 1
== list from another process

Warning: SessionProxy\user_sessions(): session_proxy: redis 127.0.0.1:%d evicts keys when it is full (maxmemory-policy allkeys-lru, maxmemory 67108864): a session's binding to its user can be evicted while the session lives, and then SessionProxy\user_sessions() and destroy_user_sessions() miss that session; set maxmemory-policy noeviction on the sessions' Redis (or maxmemory 0) in %s on line %d
listed: 1
== noeviction
bool(true)
listed: 2
== allkeys-lru without a limit
bool(true)
listed: 3
