--TEST--
nginx + php-fpm, Memcached (one server; three with a replica): a session whose user item memcached evicted while the session lived (deleted here behind the engine's back) is not served again: "log out other devices" no longer finds it, and its next request gets an empty session instead of staying logged in (a list that found it so removed it, so php-memcached does not serve it either); a regenerate of it binds nothing; sessions never bound, and the user's others, are untouched
--FILE--
<?php
require __DIR__ . '/inc/fpm_users.inc';
require_once __DIR__ . '/inc/memcached.inc';

web_private('usersevicted', 2);
$ports = [mc_port(1), mc_port(2), mc_port(3)];
foreach (['one server' => [[$ports[0]], ''], 'three servers, a replica each' => [$ports, 'replicas=1']] as $what => [$servers, $q]) {
    echo "== $what\n";
    $dsn = mc_dsn($servers, $q, $prefix);
    $u = 'alice-' . bin2hex(random_bytes(3));
    $jar = [];
    foreach ([1, 2, 3, 4] as $j) {
        $jar[$j] = fu_get('login', $dsn, null, ['user' => $u])['id'];
    }
    $plain = fu_get('plain', $dsn, null)['id'];
    $listed = fn() => count(fu_get('list', $dsn, null, ['user' => $u])['list'] ?: []);
    echo "four jars listed: ", $listed(), "\n";
    // An eviction of the session's user item, on every server that may hold a copy.
    $evict = fn(string $id) => count(array_filter(array_map(fn($p) => trim(mc_raw($p, "md {$prefix}user.$id")), $servers), fn($r) => $r === 'HD'));
    echo "jar 1's user item evicted: ", $evict($jar[1]) > 0 ? 'yes' : 'NO', "; listed now: ", $listed(), "\n";
    // That list removed jar 1's session too: php-memcached, which ignores the mark, does not serve it.
    $pm = pm_run('php-memcached', 'session_id($P["id"]); session_start(["read_and_close" => true]); lk_done(["data" => $_SESSION]);',
        ['id' => $jar[1]], pm_ini($servers, $prefix));
    echo "php-memcached reads jar 1: ", web_data($pm['data'] ?? null), "\n";
    $o = fu_get('others', $dsn, $jar[2], ['user' => $u]);
    echo "log out other devices from jar 2: ended ", var_export($o['ended'], true), " (jars 3 and 4)\n";
    foreach ([1, 3, 4, 2] as $j) {
        echo "jar $j: ", web_data(fu_get('whoami', $dsn, $jar[$j])['data'] ?? null), "\n";
    }
    echo "the unbound jar: ", web_data(fu_get('whoami', $dsn, $plain)['data'] ?? null), "\n";
    echo "jar 2's user item evicted: ", $evict($jar[2]) > 0 ? 'yes' : 'NO', "\n";
    $r = fu_get('regen', $dsn, $jar[2]);
    echo "jar 2 regenerates: n=", web_data(fu_get('whoami', $dsn, $r['id'])['data'] ?? null), ", errors ", json_encode($r['errors']), "; listed now: ", $listed(), "\n";
}
?>
--EXPECT--
== one server
four jars listed: 4
jar 1's user item evicted: yes; listed now: 3
php-memcached reads jar 1: {}
log out other devices from jar 2: ended 2 (jars 3 and 4)
jar 1: {}
jar 3: {}
jar 4: {}
jar 2: {"n":1}
the unbound jar: {"n":1}
jar 2's user item evicted: yes
jar 2 regenerates: n={"n":1}, errors []; listed now: 0
== three servers, a replica each
four jars listed: 4
jar 1's user item evicted: yes; listed now: 3
php-memcached reads jar 1: {}
log out other devices from jar 2: ended 2 (jars 3 and 4)
jar 1: {}
jar 3: {}
jar 4: {}
jar 2: {"n":1}
the unbound jar: {"n":1}
jar 2's user item evicted: yes
jar 2 regenerates: n={"n":1}, errors []; listed now: 0
