--TEST--
nginx + php-fpm, session_proxy.track_client on SQLite, files, Redis and Memcached: two jars logging in with two user agents are listed with their IP address and user agent when On, a user bound with Off shows none; a hostile user agent (7 KiB with bytes that are not UTF-8) is cut to 512 characters of valid text, one of 1 MiB never reaches PHP (nginx refuses it) and leaves the jar's session as it was; a 100 KiB one in a CLI process is cut too
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require_once __DIR__ . '/inc/redis.inc';
require_once __DIR__ . '/inc/memcached.inc';

/** One request to users.php with the cookie $sid and user agent $ua; the decoded reply and HTTP status. */
function uc_get(string $a, string $dsn, ?string $sid, string $ua, array $p = []): array
{
    $url = web_url() . '/users.php?' . http_build_query(['a' => $a, 'dsn' => $dsn] + $p);
    $h = ($sid !== null ? "Cookie: PHPSESSID=$sid\r\n" : '') . "User-Agent: $ua\r\n";
    $ctx = stream_context_create(['http' => ['header' => $h, 'user_agent' => '', 'timeout' => 60, 'ignore_errors' => true]]);
    $body = (string) @file_get_contents($url, false, $ctx);
    $status = (int) (explode(' ', $http_response_header[0] ?? '')[1] ?? 0);
    $j = json_decode($body, true);
    return (is_array($j) ? $j : ['ok' => false, 'errors' => ['no JSON: ' . substr($body, 0, 200)]]) + ['status' => $status];
}

/** "ip agent" of each listed session, sorted ("-" for a missing key). */
function uc_clients(array $list): string
{
    $c = array_map(fn($s) => ($s['ip'] ?? '-') . ' ' . ($s['user_agent'] ?? '-'), $list);
    sort($c);
    return implode(' | ', $c);
}

web_url();
$engines = sp_engines('fpmclient') + [
    'redis' => 'redis://127.0.0.1:' . rd_port() . '?prefix=' . rd_prefix('fpmclient'),
    'memcached' => 'memcached://127.0.0.1:' . mc_port(1) . '?prefix=' . rd_prefix('fpmclient'),
];
$on = ['opt' => ['track_client' => '1']];
$hostile = 'Hostile/1 ' . str_repeat("\xff\xfe\x80 ", 1800);
foreach ($engines as $engine => $dsn) {
    echo "== $engine\n";
    $alice = "alice-$engine-" . bin2hex(random_bytes(3));
    $a = uc_get('login', $dsn, null, 'Firefox-test/1.0', $on + ['user' => $alice]);
    $b = uc_get('login', $dsn, null, 'Chrome-test/2.0', $on + ['user' => $alice]);
    $l = uc_get('list', $dsn, $a['id'], 'Firefox-test/1.0', $on + ['user' => $alice]);
    echo "track_client On: ", uc_clients($l['list'] ?: []), "; no PHP error: ", web_yes(!$a['errors'] && !$b['errors'] && !$l['errors'], json_encode([$a, $b, $l])), "\n";
    $bob = "bob-$engine-" . bin2hex(random_bytes(3));
    uc_get('login', $dsn, null, 'Firefox-test/1.0', ['user' => $bob]);
    uc_get('login', $dsn, null, 'Chrome-test/2.0', ['user' => $bob]);
    echo "track_client Off: ", uc_clients(uc_get('list', $dsn, null, 'x', ['user' => $bob])['list'] ?: []), "\n";
    // Hostile user agents.
    $eve = "eve-$engine-" . bin2hex(random_bytes(3));
    $e = uc_get('login', $dsn, null, $hostile, $on + ['user' => $eve]);
    $ua = (uc_get('list', $dsn, null, 'x', ['user' => $eve])['list'][0]['user_agent'] ?? null);
    $text = is_string($ua) && preg_match('//u', $ua) === 1;
    echo "a 7 KiB binary user agent: stored; listed as valid text: ", web_yes($text), ", cut to ", $text ? preg_match_all('/./su', $ua) : '?',
        " characters, starting as sent: ", web_yes($text && str_starts_with($ua, 'Hostile/1 ')), "; no PHP error: ", web_yes(!$e['errors'], json_encode($e['errors'])), "\n";
    $big = uc_get('nap', $dsn, $e['id'], str_repeat('B', 1 << 20), ['ms' => 0]);
    $after = uc_get('whoami', $dsn, $e['id'], 'x');
    echo "a 1 MiB user agent: HTTP ", $big['status'] >= 400 ? 'refused' : $big['status'], "; the jar's session as it was: ", web_data($after['data'] ?? null),
        "; still listed: ", count(uc_get('list', $dsn, null, 'x', ['user' => $eve])['list'] ?: []), "\n";
}
// The CLI (no web server's bound in front): 100 KiB from the environment.
putenv('HTTP_USER_AGENT=' . str_repeat('C', 100 << 10));
putenv('REMOTE_ADDR=192.0.2.9');
$dsn = sp_engines('fpmclientcli')['sqlite'];
echo sp_child('ini_set("session.save_path", ' . var_export($dsn, true) . ');
    session_id("clientcli1"); session_start(); SessionProxy\set_user("carol"); $_SESSION["n"] = 1; session_write_close();
    $l = SessionProxy\user_sessions("carol");
    echo "CLI, a 100 KiB user agent: ", strlen($l[0]["user_agent"]), " bytes listed, ip ", $l[0]["ip"], "\n";', ['session_proxy.track_client' => '1']);
?>
--EXPECT--
== sqlite
track_client On: 127.0.0.1 Chrome-test/2.0 | 127.0.0.1 Firefox-test/1.0; no PHP error: yes
track_client Off: - - | - -
a 7 KiB binary user agent: stored; listed as valid text: yes, cut to 512 characters, starting as sent: yes; no PHP error: yes
a 1 MiB user agent: HTTP refused; the jar's session as it was: {"n":1}; still listed: 1
== files
track_client On: 127.0.0.1 Chrome-test/2.0 | 127.0.0.1 Firefox-test/1.0; no PHP error: yes
track_client Off: - - | - -
a 7 KiB binary user agent: stored; listed as valid text: yes, cut to 512 characters, starting as sent: yes; no PHP error: yes
a 1 MiB user agent: HTTP refused; the jar's session as it was: {"n":1}; still listed: 1
== redis
track_client On: 127.0.0.1 Chrome-test/2.0 | 127.0.0.1 Firefox-test/1.0; no PHP error: yes
track_client Off: - - | - -
a 7 KiB binary user agent: stored; listed as valid text: yes, cut to 512 characters, starting as sent: yes; no PHP error: yes
a 1 MiB user agent: HTTP refused; the jar's session as it was: {"n":1}; still listed: 1
== memcached
track_client On: 127.0.0.1 Chrome-test/2.0 | 127.0.0.1 Firefox-test/1.0; no PHP error: yes
track_client Off: - - | - -
a 7 KiB binary user agent: stored; listed as valid text: yes, cut to 512 characters, starting as sent: yes; no PHP error: yes
a 1 MiB user agent: HTTP refused; the jar's session as it was: {"n":1}; still listed: 1
CLI, a 100 KiB user agent: 512 bytes listed, ip 192.0.2.9
