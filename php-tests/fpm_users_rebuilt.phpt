--TEST--
nginx + php-fpm, Memcached (one server, three servers): a user's index item deleted behind the engine's back is rebuilt by each session's next request (a lazy_write touch or a write), so "log out other devices" reaches every jar again; a bound jar's request costs the round trips of an unbound one's while its index is intact
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require_once __DIR__ . '/inc/memcached.inc';

/** One request to users.php with the cookie $sid; the decoded reply (its id under 'id'). */
function ur_get(string $a, string $dsn, ?string $sid, array $p = []): array
{
    $url = web_url() . '/users.php?' . http_build_query(['a' => $a, 'dsn' => $dsn] + $p);
    $ctx = stream_context_create(['http' => ['header' => $sid !== null ? "Cookie: PHPSESSID=$sid\r\n" : '', 'timeout' => 60, 'ignore_errors' => true]]);
    $body = (string) @file_get_contents($url, false, $ctx);
    $j = json_decode($body, true);
    return is_array($j) ? $j : ['ok' => false, 'body' => substr($body, 0, 500), 'errors' => ['no JSON']];
}

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
    $r = ur_get($a, $dsn, $sid, $p);
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
        $jar[$j] = ur_get('login', $dsn, null, ['user' => $u])['id'];
    }
    $plain = ur_get('plain', $dsn, null)['id'];
    $listed = fn() => count(ur_get('list', $dsn, null, ['user' => $u])['list'] ?: []);
    echo "three jars listed: ", $listed(), "\n";
    // Requests of a bound jar and of an unbound one: a read + touch (lazy_write), and a write.
    $cost = [];
    foreach (['whoami' => [], 'nap' => ['ms' => 0]] as $a => $p) {
        // Each jar's previous request the same as the measured one (with three servers, whether a
        // locked read needs a second look depends on the request before: Memcached, README).
        ur_get($a, $dsn, $plain, $p);
        ur_get($a, $dsn, $jar[1], $p);
        $cost[$a] = [ur_cost($a, $dsn, $plain, $p), ur_cost($a, $dsn, $jar[1], $p)];
    }
    // 3 each: strict mode's existence check, lock + read, write or touch + release: a bound jar costs
    // what an unbound one does. With three servers a locked write may need a second look of its
    // read (Memcached, README), on either jar: 3 or 4 there (3/3, 4/4 and 3/4 all seen; which one a
    // request gets is not yet pinned down, see the note on issue 13).
    $cmp = fn (array $c) => count($servers) === 1
        ? ($c === [3, 3] ? 'same' : 'DIFFERENT ' . implode('/', $c))
        : (min($c) >= 3 && max($c) <= 4 ? 'same, or one second look' : 'DIFFERENT ' . implode('/', $c));
    echo "round trips, bound as unbound: touch ", $cmp($cost['whoami']), ", write ", $cmp($cost['nap']), "\n";
    // The index item goes behind the engine's back (on whichever server holds it).
    $key = $prefix . 'users.' . hash('sha256', $u);
    $gone = array_filter(array_map(fn($p) => trim(mc_raw($p, "md $key")), $servers), fn($r) => $r === 'HD');
    echo "index item deleted: ", count($gone), "; listed now: ", $listed(), "\n";
    // Jar 2's next request (a lazy_write touch) puts it back; it costs more, that once.
    $repair = ur_cost('whoami', $dsn, $jar[2]);
    echo "after jar 2's next request: listed ", $listed(), "; it cost more round trips than an intact one: ",
        web_yes($repair > $cost['whoami'][1], "$repair"), "\n";
    echo "again: the same as before the loss: ", web_yes(ur_cost('whoami', $dsn, $jar[2]) === $cost['whoami'][1]), "\n";
    // Jar 1 writes, jar 3 touches.
    ur_get('nap', $dsn, $jar[1], ['ms' => 0]);
    ur_get('whoami', $dsn, $jar[3]);
    echo "after every jar's next request: listed ", $listed(), "\n";
    $o = ur_get('others', $dsn, $jar[2], ['user' => $u]);
    echo "log out other devices from jar 2: ended ", var_export($o['ended'], true), "; ";
    foreach ([1, 3, 2] as $j) {
        echo "jar $j: ", web_data(ur_get('whoami', $dsn, $jar[$j])['data'] ?? null), ' ';
    }
    echo "\n";
}
?>
--EXPECT--
== one server
three jars listed: 3
round trips, bound as unbound: touch same, write same
index item deleted: 1; listed now: 0
after jar 2's next request: listed 1; it cost more round trips than an intact one: yes
again: the same as before the loss: yes
after every jar's next request: listed 3
log out other devices from jar 2: ended 2; jar 1: {} jar 3: {} jar 2: {"n":1} 
== three servers
three jars listed: 3
round trips, bound as unbound: touch same, or one second look, write same, or one second look
index item deleted: 1; listed now: 0
after jar 2's next request: listed 1; it cost more round trips than an intact one: yes
again: the same as before the loss: yes
after every jar's next request: listed 3
log out other devices from jar 2: ended 2; jar 1: {} jar 3: {} jar 2: {"n":1} 
