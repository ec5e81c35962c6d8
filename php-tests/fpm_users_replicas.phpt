--TEST--
nginx + php-fpm, Memcached with replicas=1 over two private servers: a user's index item and each session's user item live on both; killed, either server (so the index item's first one too) loses no listing: user_sessions lists every session with the same handles, destroy_user_sessions ends them all (with one warning: the dead server's copies could not be deleted) and their jars' next requests get an empty session
--FILE--
<?php
require __DIR__ . '/inc/fpm_users.inc';
require_once __DIR__ . '/inc/memcached.inc';

web_private('usersreplicas', 2);
$ports = mc_free_ports(2);
$srv = array_map(fn ($p) => mc_server($p), $ports);
// Each server in turn is the one killed: one of the two rounds kills the index item's first server
// (ketama's choice for its key), the other its replica.
foreach ([0, 1] as $victim) {
    echo "== server ", $victim + 1, " killed\n";
    $dsn = mc_dsn($ports, 'replicas=1', $prefix);
    $u = 'alice-' . bin2hex(random_bytes(3));
    $jar = [];
    foreach ([1, 2, 3, 4] as $j) {
        $jar[$j] = fu_get('login', $dsn, null, ['user' => $u])['id'];
    }
    $before = fu_handles($dsn, $u);
    echo "four jars listed: ", is_array($before) ? count($before) : 'FALSE', "\n";
    $key = $prefix . 'users.' . hash('sha256', $u);
    echo "the index item on both servers: ", web_yes(count(array_filter($ports, fn ($p) => mc_get($p, $key) !== null)) === 2), "\n";
    $both = array_filter($jar, fn ($id) => count(array_filter($ports, fn ($p) => mc_get($p, "{$prefix}user.$id") !== null)) === 2);
    echo "each jar's user item on both servers: ", web_yes(count($both) === 4, count($both) . ' of 4'), "\n";

    sp_server_kill($srv[$victim]);
    $after = fu_handles($dsn, $u);
    echo "listed with the server dead: ", is_array($after) ? count($after) : 'FALSE', "; the same handles: ", web_yes($after === $before), "\n";
    $o = fu_get('others', $dsn, null, ['user' => $u]);
    // One warning for the copies left on the dead server (it could come back with its items).
    $errors = str_replace("127.0.0.1:{$ports[$victim]}", '<the dead server>', implode(' | ', $o['errors']));
    echo "destroy_user_sessions: ended ", var_export($o['ended'] ?? null, true), "; errors: ", $errors ?: 'none', "\n";
    echo "jars: ";
    foreach ($jar as $j => $id) {
        echo web_data(fu_get('whoami', $dsn, $id)['data'] ?? null), ' ';
    }
    echo "\nlisted now: ", var_export(fu_handles($dsn, $u), true), "\n";
    // Back (empty) for the next round.
    $srv[$victim] = mc_server($ports[$victim]);
}
?>
--EXPECT--
== server 1 killed
four jars listed: 4
the index item on both servers: yes
each jar's user item on both servers: yes
listed with the server dead: 4; the same handles: yes
destroy_user_sessions: ended 4; errors: Warning: SessionProxy\destroy_user_sessions(): session_proxy: a destroyed session's copy on memcached <the dead server> could not be deleted (the server is down): if that server comes back with its items, the session can be read again; flush or restart it before it rejoins
jars: {} {} {} {} 
listed now: array (
)
== server 2 killed
four jars listed: 4
the index item on both servers: yes
each jar's user item on both servers: yes
listed with the server dead: 4; the same handles: yes
destroy_user_sessions: ended 4; errors: Warning: SessionProxy\destroy_user_sessions(): session_proxy: a destroyed session's copy on memcached <the dead server> could not be deleted (the server is down): if that server comes back with its items, the session can be read again; flush or restart it before it rejoins
jars: {} {} {} {} 
listed now: array (
)
