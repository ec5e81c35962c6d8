--TEST--
nginx + php-fpm, Memcached over two private servers (replicas=0): the server holding a user's index item is stopped: user_sessions and destroy_user_sessions answer false with a warning naming its host:port, the jars on the other server go on, a login meanwhile is ended rather than left unbound (destroy_user_sessions would miss it), nothing crashes; once it is back (empty) the next user_sessions rebuilds the index (a crawl) and lists every live jar, and destroy_user_sessions ends them
--FILE--
<?php
require __DIR__ . '/inc/fpm_users.inc';
require_once __DIR__ . '/inc/memcached.inc';

web_private('usersindexdown', 2);
$ports = mc_free_ports(2);
$srv = array_map(fn ($p) => mc_server($p), $ports);
// The lock with its session: a jar on the other server then needs nothing of the stopped one.
$dsn = mc_dsn($ports, 'lock_placement=session&timeout=500', $prefix);
$u = 'alice-' . bin2hex(random_bytes(3));
$key = $prefix . 'users.' . hash('sha256', $u);
$where = fn (string $k) => array_values(array_filter($ports, fn ($p) => mc_get($p, $k) !== null));
// Jars log in until two of them live on the server that does not hold the index item (bounded).
$jar = [];
$index = null;
for ($i = 0; $i < 40 && count(array_filter($jar, fn ($p) => $p !== $index)) < 2; $i++) {
    $id = fu_get('login', $dsn, null, ['user' => $u])['id'] ?? '';
    $jar[$id] = $where($prefix . $id)[0] ?? null;
    $index = $where($key)[0] ?? null;
}
$other = array_keys(array_filter($jar, fn ($p) => $p !== $index));
echo "index item on one server: ", web_yes($index !== null && count($where($key)) === 1), "; two jars or more on the other: ", web_yes(count($other) >= 2, json_encode($jar)), "\n";
echo "listed: ", web_yes(count(fu_handles($dsn, $u) ?: []) === count($jar), count($jar) . ' jars'), "\n";

sp_server_kill($srv[array_search($index, $ports, true)]);
$named = fn (array $r) => web_yes((bool) array_filter($r['errors'] ?? [], fn ($e) => str_contains($e, "memcached server 127.0.0.1:$index: ")), json_encode($r['errors'] ?? $r));
$r = fu_get('list', $dsn, null, ['user' => $u]);
echo "index server stopped: user_sessions ", var_export($r['list'] ?? null, true), ", warning names its host:port: ", $named($r), "\n";
$r = fu_get('others', $dsn, null, ['user' => $u]);
echo "destroy_user_sessions ", var_export($r['ended'] ?? null, true), ", warning names its host:port: ", $named($r), "\n";
$ok = array_map(fn ($id) => fu_get('whoami', $dsn, $id), $other);
echo "the jars on the other server: ", implode(' ', array_map(fn ($r) => web_data($r['data'] ?? null), $ok)),
    "; errors: ", implode(' | ', array_merge(...array_map(fn ($r) => $r['errors'] ?? ['no reply'], $ok))) ?: 'none', "\n";

// A login meanwhile, on a session the other server holds: the session is written, its binding can't
// be. It is ended again, not left logged in where destroy_user_sessions() can't see it.
$login = null;
for ($i = 0; $i < 20 && $login === null; $i++) {
    $r = fu_get('login', $dsn, null, ['user' => $u]);
    if (($r['id'] ?? '') !== '' && preg_grep('~per-user session index|binding it to its user~', $r['errors'] ?? [])) {
        $login = $r;
    }
}
$said = implode(' | ', preg_grep('~per-user session index|binding it to its user~', $login['errors'] ?? []));
echo "a login meanwhile: its binding failed: ", web_yes($login !== null), "; the warning names the server and says the session was ended: ",
    web_yes(str_contains($said, "memcached server 127.0.0.1:$index: ") && str_contains($said, 'binding it to its user failed') && str_contains($said, 'the session was ended'), $said), "\n";
echo "that cookie's next request: ", web_data(fu_get('whoami', $dsn, $login['id'] ?? 'none')['data'] ?? null), "\n";

// Back, empty: the item is gone with everything else there; the next list crawls the servers.
$srv[array_search($index, $ports, true)] = mc_server($index);
$r = fu_get('list', $dsn, null, ['user' => $u]);
$listed = is_array($r['list'] ?? null) ? count($r['list']) : -1;
echo "back (empty): listed the jars on the other server: ", web_yes($listed === count($other), "$listed of " . count($other)),
    "; errors: ", $r['errors'] ? implode(' | ', $r['errors']) : 'none', "\n";
echo "the index item is back: ", web_yes($where($key) === [$index]), "\n";
$o = fu_get('others', $dsn, null, ['user' => $u]);
echo "destroy_user_sessions ended them: ", web_yes(($o['ended'] ?? null) === count($other), json_encode($o['ended'] ?? null)), "; ";
echo "their next requests: ", implode(' ', array_map(fn ($id) => web_data(fu_get('whoami', $dsn, $id)['data'] ?? null), $other)), "\n";
?>
--EXPECT--
index item on one server: yes; two jars or more on the other: yes
listed: yes
index server stopped: user_sessions false, warning names its host:port: yes
destroy_user_sessions false, warning names its host:port: yes
the jars on the other server: {"n":1} {"n":1}; errors: none
a login meanwhile: its binding failed: yes; the warning names the server and says the session was ended: yes
that cookie's next request: {}
back (empty): listed the jars on the other server: yes; errors: none
the index item is back: yes
destroy_user_sessions ended them: yes; their next requests: {} {}
