--TEST--
nginx + php-fpm, Memcached (one server, three servers): a user's index item deleted behind the engine's back is rebuilt whole by the next user_sessions / destroy_user_sessions (a crawl of the sessions' user items), so jars idle since the loss are listed and logged out; and by each session's next request (a lazy_write touch or a write); a bound jar's request costs the round trips of an unbound one's while its index is intact, and again after a rebuild
--FILE--
<?php
require __DIR__ . '/inc/fpm_users.inc';
require_once __DIR__ . '/inc/memcached.inc';

/** The pool's memcached round trips so far (this test's private php-fpm: no other test's requests). */
function ur_trips(): int
{
    $j = json_decode((string) file_get_contents(web_url() . '/app.php?a=stats'), true);
    return (int) ($j['stats']['memcached']['round_trips'] ?? -1);
}

/** The round trips of one request. */
function ur_cost(string $a, string $dsn, string $sid, array $p = []): int
{
    $t = ur_trips();
    $r = fu_get($a, $dsn, $sid, $p);
    if ($r['errors'] ?? ['?']) {
        echo "PHP errors: ", json_encode($r), "\n";
    }
    return ur_trips() - $t;
}

web_private('usersrebuilt', 2);
$ports = [mc_port(1), mc_port(2), mc_port(3)];
foreach (['one server' => [$ports[0]], 'three servers' => $ports] as $what => $servers) {
    echo "== $what\n";
    $dsn = mc_dsn($servers, '', $prefix);
    $u = 'alice-' . bin2hex(random_bytes(3));
    $jar = [];
    foreach ([1, 2, 3] as $j) {
        $jar[$j] = fu_get('login', $dsn, null, ['user' => $u])['id'];
    }
    $plain = fu_get('plain', $dsn, null)['id'];
    $listed = fn() => count(fu_get('list', $dsn, null, ['user' => $u])['list'] ?: []);
    echo "three jars listed: ", $listed(), "\n";
    // Requests of a bound jar and of an unbound one: a read + touch (lazy_write), and a write.
    $cost = [];
    foreach (['whoami' => [], 'nap' => ['ms' => 0]] as $a => $p) {
        // Each jar's previous request the same as the measured one: with three servers a locked read
        // whose lock lives on another server than its session is proven current by the session's
        // version item, which a login (the new id's first write, made without the lock) leaves
        // none of; the first locked request after it reads twice (4 round trips) and leaves one
        // (a locked write or touch records it), so the measured request reads once.
        fu_get($a, $dsn, $plain, $p);
        fu_get($a, $dsn, $jar[1], $p);
        $cost[$a] = [ur_cost($a, $dsn, $plain, $p), ur_cost($a, $dsn, $jar[1], $p)];
    }
    // 3 each: strict mode's existence check, lock + read, write or touch + release: a bound jar costs
    // what an unbound one does, on one server and on three. (Until a touch recorded the version item
    // and a small write stopped asking each new connection's item size limit, three servers gave 3
    // or 4, on either jar, depending on whether the lock lived apart and which worker served it.)
    $cmp = fn (array $c) => $c === [3, 3] ? 'same' : 'DIFFERENT ' . implode('/', $c);
    echo "round trips, bound as unbound: touch ", $cmp($cost['whoami']), ", write ", $cmp($cost['nap']), "\n";
    // Jar 2's request while the index is intact (after one of the same kind: see above).
    fu_get('whoami', $dsn, $jar[2]);
    $intact = ur_cost('whoami', $dsn, $jar[2]);
    // The index item goes behind the engine's back (on whichever server holds it).
    $key = $prefix . 'users.' . hash('sha256', $u);
    $drop = fn() => count(array_filter(array_map(fn($p) => trim(mc_raw($p, "md $key")), $servers), fn($r) => $r === 'HD'));
    // No jar has a request now: the list finds the idle ones by a crawl of their user items.
    echo "index item deleted: ", $drop(), "; no jar's request since; listed now: ", $listed(), "\n";
    echo "jar 2's next request costs what an intact one does (the rebuild recorded the new item in its user item): ",
        web_yes(($c = ur_cost('whoami', $dsn, $jar[2])) === $intact, "$c, intact $intact"), "\n";
    // Lost again; jar 2's next request (a lazy_write touch) puts its line back first; it costs more, that once.
    echo "index item deleted: ", $drop(), "; ";
    $repair = ur_cost('whoami', $dsn, $jar[2]);
    echo "jar 2's next request cost more round trips than an intact one: ", web_yes($repair > $intact, "$repair, intact $intact"), "; ";
    echo "listed ", $listed(), " (the idle jars 1 and 3 beside it)\n";
    echo "again: the same as before the loss: ", web_yes(ur_cost('whoami', $dsn, $jar[2]) === $intact), "\n";
    // Lost once more; "log out other devices" from jar 2, jars 1 and 3 idle since the loss.
    echo "index item deleted: ", $drop(), "; ";
    $o = fu_get('others', $dsn, $jar[2], ['user' => $u]);
    echo "log out other devices from jar 2: ended ", var_export($o['ended'], true), "; ";
    foreach ([1, 3, 2] as $j) {
        echo "jar $j: ", web_data(fu_get('whoami', $dsn, $jar[$j])['data'] ?? null), ' ';
    }
    echo "\n";
}
?>
--EXPECT--
== one server
three jars listed: 3
round trips, bound as unbound: touch same, write same
index item deleted: 1; no jar's request since; listed now: 3
jar 2's next request costs what an intact one does (the rebuild recorded the new item in its user item): yes
index item deleted: 1; jar 2's next request cost more round trips than an intact one: yes; listed 3 (the idle jars 1 and 3 beside it)
again: the same as before the loss: yes
index item deleted: 1; log out other devices from jar 2: ended 2; jar 1: {} jar 3: {} jar 2: {"n":1} 
== three servers
three jars listed: 3
round trips, bound as unbound: touch same, write same
index item deleted: 1; no jar's request since; listed now: 3
jar 2's next request costs what an intact one does (the rebuild recorded the new item in its user item): yes
index item deleted: 1; jar 2's next request cost more round trips than an intact one: yes; listed 3 (the idle jars 1 and 3 beside it)
again: the same as before the loss: yes
index item deleted: 1; log out other devices from jar 2: ended 2; jar 1: {} jar 3: {} jar 2: {"n":1} 
