--TEST--
Redis engine, per-user index on a server that evicts keys when full (maxmemory and maxmemory-policy allkeys-lru): binding a session and listing a user's sessions warn, naming the server, its policy and its limit (a binding evicted while its session lives would hide that session from destroy_user_sessions); the session is still written and bound; the same server set to noeviction, or without a limit, gives no warning; on a Cluster every primary is asked and the evicting node is named
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

// A Cluster of two private nodes, half the slots each; only the first evicts keys. Every primary is
// asked (the user's set and the session live in different slots), and only the evicting one named.
$cp = [ot_free_port(), ot_free_port()];
foreach ($cp as $i => $p) {
    sp_server_start(array_merge(['redis-server', '--bind', '127.0.0.1', '--port', (string) $p, '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-port', (string) ot_free_port(), '--cluster-config-file', "$dir/nodes-$p.conf", '--dir', $dir],
        $i === 0 ? ['--maxmemory', '64mb', '--maxmemory-policy', 'volatile-lru'] : []), $p);
}
rd_cmd(['CLUSTER', 'ADDSLOTSRANGE', '0', '8191'], $cp[0]);
rd_cmd(['CLUSTER', 'ADDSLOTSRANGE', '8192', '16383'], $cp[1]);
rd_cmd(['CLUSTER', 'MEET', '127.0.0.1', (string) $cp[1], (string) rd_cmd(['CONFIG', 'GET', 'cluster-port'], $cp[1])[1]], $cp[0]);
for ($i = 0; $i < 300 && !array_reduce($cp, fn ($ok, $p) => $ok && str_contains((string) rd_cmd(['CLUSTER', 'INFO'], $p), 'cluster_state:ok')
    && str_contains((string) rd_cmd(['CLUSTER', 'INFO'], $p), 'cluster_known_nodes:2'), true); $i++) {
    usleep(50000);
}
echo "== a Cluster of two nodes, one of them evicting\n";
$cini = SP_CLI_INI + ['session.save_path' => "redis-cluster://127.0.0.1:$cp[0],127.0.0.1:$cp[1]?prefix=sp-phpt-revict:"];
$out = sp_child($step, $cini, ['login']);
echo str_replace(["127.0.0.1:$cp[0]", "127.0.0.1:$cp[1]"], ['NODE1', 'NODE2'], $out);
rd_cmd(['CONFIG', 'SET', 'maxmemory-policy', 'noeviction'], $cp[0]);
echo "== the Cluster's node set to noeviction\n", sp_child($step, $cini, ['login']);
// A Cluster whose ACL refuses INFO: the check cannot tell, and nothing fails.
rd_cmd(['CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru'], $cp[0]);
foreach ($cp as $p) {
    rd_cmd(['ACL', 'SETUSER', 'default', '-info'], $p);
}
$refused = array_map(fn ($p) => str_starts_with((string) (rd_cmd(['INFO', 'memory'], $p)['error'] ?? ''), 'NOPERM'), $cp);
echo "== the evicting node again, INFO refused by the ACL (", $refused === [true, true] ? 'refused' : 'not refused', ")\n",
    sp_child($step, $cini, ['login']);
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
== a Cluster of two nodes, one of them evicting

Warning: session_write_close(): session_proxy: redis NODE1 (a node of redis-cluster://NODE1,NODE2) evicts keys when it is full (maxmemory-policy volatile-lru, maxmemory 67108864): a session's binding to its user can be evicted while the session lives, and then SessionProxy\user_sessions() and destroy_user_sessions() miss that session; set maxmemory-policy noeviction on the sessions' Redis (or maxmemory 0) in %s on line %d
bool(true)

Warning: SessionProxy\user_sessions(): session_proxy: redis NODE1 (a node of redis-cluster://NODE1,NODE2) evicts keys when it is full (maxmemory-policy volatile-lru, maxmemory 67108864): a session's binding to its user can be evicted while the session lives, and then SessionProxy\user_sessions() and destroy_user_sessions() miss that session; set maxmemory-policy noeviction on the sessions' Redis (or maxmemory 0) in %s on line %d
listed: 1
== the Cluster's node set to noeviction
bool(true)
listed: 2
== the evicting node again, INFO refused by the ACL (refused)
bool(true)
listed: 3
