--TEST--
nginx + php-fpm, Memcached over three private servers: a new user's first user_sessions crawls no server once the markers of its index item's servers prove that they lost no item within the sessions' lifetime (aged here by hand, as if written a day ago): it costs 2 round trips more than the next list (the markers' check, the seal), where a crawl costs a metadump per server and more; with a marker gone (flushed with its server's items) a new user's list crawls again
--FILE--
<?php
require __DIR__ . '/inc/fpm_users.inc';
require_once __DIR__ . '/inc/memcached.inc';

/** The pool's memcached round trips so far (this test's private php-fpm: no other test's requests). */
function nu_trips(): int
{
    $j = json_decode((string) file_get_contents(web_url() . '/app.php?a=stats'), true);
    return (int) ($j['stats']['memcached']['round_trips'] ?? -1);
}

/** A list of $u: [its round trips, the sessions listed]. */
function nu_list(string $dsn, string $u): array
{
    $t = nu_trips();
    $r = fu_get('list', $dsn, null, ['user' => $u]);
    if ($r['errors'] ?? ['?']) {
        echo "PHP errors: ", json_encode($r), "\n";
    }
    return [nu_trips() - $t, is_array($r['list'] ?? null) ? count($r['list']) : -1];
}

web_private('usersnew', 2);
$ports = mc_free_ports(3);
$srv = array_map(fn ($p) => mc_server($p), $ports);
$dsn = mc_dsn($ports, '', $prefix);
$mark = $prefix . 'sp_mark';
$marked = fn () => count(array_filter($ports, fn ($p) => mc_get($p, $mark) !== null));
// Lists of users never seen: each checks (and writes) the markers of its index item's server; the
// first ones crawl, as no marker is old enough yet (bounded).
[$crawl] = nu_list($dsn, 'nobody');
for ($i = 0; $i < 60 && $marked() < 3; $i++) {
    nu_list($dsn, "nobody$i");
}
echo "every server has a marker: ", web_yes($marked() === 3), "\n";
// As if written a day ago (the pool's gc_maxlifetime is PHP's default, 1440 s): `sp1 <ring> <pid>
// <start> <t0> <counters>`, t0 moved back.
$age = function () use ($ports, $mark) {
    foreach ($ports as $p) {
        $f = explode(' ', (string) mc_get($p, $mark));
        $f[4] = (string) ((int) $f[4] - 86400);
        mc_meta_replace($p, $mark, implode(' ', $f));
    }
};
$age();
$u = 'bob-' . bin2hex(random_bytes(3));
$jar = fu_get('login', $dsn, null, ['user' => $u])['id'] ?? null;
[$first, $n1] = nu_list($dsn, $u);
[$second, $n2] = nu_list($dsn, $u);
echo "a new user's first list: $n1 session, ", web_yes($first - $second === 2, "$first vs $second"),
    " 2 round trips more than the next ($n2 session), no crawl (a never-seen user's crawl cost ",
    web_yes($crawl - $second >= 3, "$crawl"), " a metadump per server more)\n";
// Every server flushed: the markers go with the items; a new user's list is unsure again: a crawl.
foreach ($ports as $p) {
    mc_raw($p, 'flush_all');
}
$v = 'carol-' . bin2hex(random_bytes(3));
fu_get('login', $dsn, null, ['user' => $v]);
[$after, $n3] = nu_list($dsn, $v);
[$again, $n4] = nu_list($dsn, $v);
echo "after a flush_all: a new user's first list crawls: ", web_yes($after - $again >= 2 + 3, "$after vs $again"), " ($n3 session, then $n4)\n";
foreach ($srv as $s) {
    sp_server_kill($s);
}
?>
--EXPECT--
every server has a marker: yes
a new user's first list: 1 session, yes 2 round trips more than the next (1 session), no crawl (a never-seen user's crawl cost yes a metadump per server more)
after a flush_all: a new user's first list crawls: yes (1 session, then 1)
