--TEST--
nginx + php-fpm, the per-user index through SessionProxy\Handler (a framework-style app: new Handler + session_set_save_handler, the Handler's setUser/userSessions/destroyUserSessions/destroySessionHandle/countActive) on SQLite, files, Redis and Memcached: alice logs in from three cookie jars, listed with the current flag; "log out other devices" empties the other jars; one ended by its handle; a jar inside a request holding its lock when it is ended does not come back; regenerate keeps the binding
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require_once __DIR__ . '/inc/redis.inc';
require_once __DIR__ . '/inc/memcached.inc';

/** One request to handler_users.php with the cookie $sid; the decoded reply. */
function hu_get(string $a, string $dsn, ?string $sid, array $p = []): array
{
    $url = web_url() . '/handler_users.php?' . http_build_query(['a' => $a, 'dsn' => $dsn] + $p);
    $ctx = stream_context_create(['http' => ['header' => $sid !== null ? "Cookie: PHPSESSID=$sid\r\n" : '', 'timeout' => 60, 'ignore_errors' => true]]);
    $body = (string) @file_get_contents($url, false, $ctx);
    $j = json_decode($body, true);
    return is_array($j) ? $j : ['ok' => false, 'body' => substr($body, 0, 500), 'errors' => ['no JSON']];
}

function hu_flags(array $r): string
{
    $f = array_map(fn($s) => $s['current'] ? 'current' : 'other', $r['list'] ?: []);
    sort($f);
    return implode(',', $f) ?: 'none';
}

web_url();
$engines = sp_engines('fpmclassusers') + [
    'redis' => 'redis://127.0.0.1:' . rd_port() . '?prefix=' . rd_prefix('fpmclassusers'),
    'memcached' => 'memcached://127.0.0.1:' . mc_port(1) . '?prefix=' . rd_prefix('fpmclassusers'),
];
foreach ($engines as $engine => $dsn) {
    echo "== $engine\n";
    $u = "alice-$engine-" . bin2hex(random_bytes(3));
    $jar = [];
    $errors = [];
    foreach ([1, 2, 3] as $j) {
        $r = hu_get('login', $dsn, null, ['user' => $u]);
        $jar[$j] = $r['id'] ?? null;
        $errors = array_merge($errors, $r['errors']);
    }
    $l = hu_get('list', $dsn, $jar[2], ['user' => $u]);
    $keys = implode(',', array_keys($l['list'][0] ?? []));
    echo "three jars listed from jar 2: ", hu_flags($l), " ($keys); no PHP error: ", web_yes(!$errors && !$l['errors'], json_encode([$errors, $l['errors']])), "\n";
    $o = hu_get('others', $dsn, $jar[2], ['user' => $u]);
    echo "log out other devices: ended ", var_export($o['ended'], true), "\n";
    foreach ([1, 3, 2] as $j) {
        $w = hu_get('whoami', $dsn, $jar[$j]);
        echo "jar $j next request: ", web_data($w['data'] ?? null), ($w['id'] === $jar[$j] ? ' (same id)' : ' (new id)'), "\n";
    }
    // One more jar, ended by its handle from jar 2's list.
    $four = hu_get('login', $dsn, null, ['user' => $u])['id'];
    $other = array_values(array_filter(hu_get('list', $dsn, $jar[2], ['user' => $u])['list'] ?: [], fn($s) => !$s['current']));
    $e = hu_get('end', $dsn, $jar[2], ['handle' => $other[0]['handle'] ?? '']);
    $again = hu_get('end', $dsn, $jar[2], ['handle' => $other[0]['handle'] ?? '']);
    echo "by handle: ", var_export($e['ended'], true), ", again: ", var_export($again['ended'], true), "; that jar next: ",
        web_data(hu_get('whoami', $dsn, $four)['data'] ?? null), "\n";
    // A jar inside a request holding its lock when it is ended: its late write is dropped.
    $inside = hu_get('login', $dsn, null, ['user' => $u])['id'];
    $sig = sp_tmpdir('fpmclassusers-sig') . '/in';
    $go = dirname($sig) . '/go'; // it writes once this exists, after the logout (fpm_users.phpt says why)
    $url = web_url() . '/handler_users.php?' . http_build_query(['a' => 'nap', 'dsn' => $dsn, 'go' => $go, 'sig' => $sig, 'opt' => ['locking' => '1']]);
    $child = sp_spawn('$c = stream_context_create(["http" => ["header" => "Cookie: PHPSESSID=' . $inside . '\r\n", "timeout" => 60]]);
        echo file_get_contents(' . var_export($url, true) . ', false, $c);');
    sp_wait_for_file($sig, 20);
    $o = hu_get('others', $dsn, $jar[2], ['user' => $u]);
    touch($go);
    $late = json_decode(sp_wait($child), true);
    $told = array_filter($late['errors'] ?? [], fn($e) => str_contains($e, 'destroyed by another request'));
    echo "ended while inside (locked): ", var_export($o['ended'], true), "; its late write told and dropped: ",
        web_yes(count($told) === 1, json_encode($late)), "; next request: ", web_data(hu_get('whoami', $dsn, $inside)['data'] ?? null), "\n";
    // Regenerate keeps the binding.
    $r = hu_get('regen', $dsn, $jar[2], ['user' => $u]);
    echo "after regenerate: ", hu_flags(hu_get('list', $dsn, $r['id'], ['user' => $u])), "\n";
    $c = hu_get('count', $dsn, $r['id']);
    echo "countActive: ", is_int($c['count']) ? 'a count' : var_export($c['count'], true) . ' (' . count($c['errors']) . ' warning)', "\n";
    $all = hu_get('all', $dsn, null, ['user' => $u]);
    echo "all ended from outside: ", var_export($all['ended'], true), "; listed: ", hu_flags(hu_get('list', $dsn, null, ['user' => $u])), "\n";
}
?>
--EXPECT--
== sqlite
three jars listed from jar 2: current,other,other (handle,created,last_active,current); no PHP error: yes
log out other devices: ended 2
jar 1 next request: {} (new id)
jar 3 next request: {} (new id)
jar 2 next request: {"n":1} (same id)
by handle: true, again: false; that jar next: {}
ended while inside (locked): 1; its late write told and dropped: yes; next request: {}
after regenerate: current
countActive: a count
all ended from outside: 1; listed: none
== files
three jars listed from jar 2: current,other,other (handle,created,last_active,current); no PHP error: yes
log out other devices: ended 2
jar 1 next request: {} (new id)
jar 3 next request: {} (new id)
jar 2 next request: {"n":1} (same id)
by handle: true, again: false; that jar next: {}
ended while inside (locked): 1; its late write told and dropped: yes; next request: {}
after regenerate: current
countActive: false (1 warning)
all ended from outside: 1; listed: none
== redis
three jars listed from jar 2: current,other,other (handle,created,last_active,current); no PHP error: yes
log out other devices: ended 2
jar 1 next request: {} (new id)
jar 3 next request: {} (new id)
jar 2 next request: {"n":1} (same id)
by handle: true, again: false; that jar next: {}
ended while inside (locked): 1; its late write told and dropped: yes; next request: {}
after regenerate: current
countActive: false (1 warning)
all ended from outside: 1; listed: none
== memcached
three jars listed from jar 2: current,other,other (handle,created,last_active,current); no PHP error: yes
log out other devices: ended 2
jar 1 next request: {} (new id)
jar 3 next request: {} (new id)
jar 2 next request: {"n":1} (same id)
by handle: true, again: false; that jar next: {}
ended while inside (locked): 1; its late write told and dropped: yes; next request: {}
after regenerate: current
countActive: false (1 warning)
all ended from outside: 1; listed: none
