--TEST--
Per-user index on every engine (SQLite, files, Redis, Memcached, PostgreSQL, MySQL/MariaDB): a session whose data names its user but that was never bound (written before session_proxy.user_key was set) is bound by its next request, even one that changes nothing (lazy_write), so destroy_user_sessions() ends it; and a request whose binding does not change makes no more round trips than an unbound session's (user_key, and set_user() on every request)
--FILE--
<?php
require __DIR__ . '/inc/users.inc';
require_once __DIR__ . '/inc/redis.inc';
require_once __DIR__ . '/inc/memcached.inc';
require_once __DIR__ . '/inc/pgsql.inc';
require_once __DIR__ . '/inc/mysql.inc';

$engines = sp_engines('users-keycost') + [
    'redis' => 'redis://127.0.0.1:' . rd_port() . '?prefix=' . rd_prefix('ukc'),
    'memcached' => 'memcached://127.0.0.1:' . mc_port(1) . '?prefix=' . rd_prefix('ukc'),
    'pgsql' => pg_dsn(pg_table('ukc')),
    'mysql' => my_dsn(my_table('ukc')),
];
$key = ['session_proxy.user_key' => 'uid'];
foreach ($engines as $engine => $dsn) {
    ini_restore('session_proxy.user_key');
    $u = "gail-$engine-" . bin2hex(random_bytes(3));
    // Written without user_key: the data names the user, no index knows it.
    us_visit($dsn, "ukcold$engine", function () use ($u) { $_SESSION['uid'] = $u; $_SESSION['n'] = 1; });
    $before = count(us_list($dsn, $u));
    // A request with user_key that changes nothing (lazy_write: a timestamp update).
    us_visit($dsn, "ukcold$engine", null, $key);
    $after = count(us_list($dsn, $u));
    ini_restore('session_proxy.user_key');
    sp_use($dsn);
    $ended = SessionProxy\destroy_user_sessions($u);
    echo "$engine: listed before $before, after an unchanged request $after; destroy_user_sessions ended $ended; next read: ",
        json_encode(us_visit($dsn, "ukcold$engine")['data']), "\n";

    // Round trips of 5 cycles: unbound, bound by user_key, set_user() on every request.
    $trips = function (string $id, ?callable $change, array $ini = []) use ($dsn, $engine): int {
        us_visit($dsn, $id, $change, $ini); // the binding, if any, is made here
        $t0 = SessionProxy\stats()[$engine]['round_trips'];
        for ($i = 0; $i < 5; $i++) {
            us_visit($dsn, $id, $change, $ini);
        }
        return SessionProxy\stats()[$engine]['round_trips'] - $t0;
    };
    $plain = $trips("ukcplain$engine", function () { $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; });
    $bykey = $trips("ukckey$engine", function () use ($u) { $_SESSION['uid'] = $u; $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; }, $key);
    ini_restore('session_proxy.user_key');
    $byset = $trips("ukcset$engine", function () use ($u) { SessionProxy\set_user($u); $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; });
    echo "$engine: round trips of 5 cycles the same bound and unbound: ", sp_yn($plain === $bykey && $plain === $byset, "unbound $plain, user_key $bykey, set_user $byset"),
        "; listed: ", count(us_list($dsn, $u)), "\n";
}
?>
--EXPECT--
sqlite: listed before 0, after an unchanged request 1; destroy_user_sessions ended 1; next read: []
sqlite: round trips of 5 cycles the same bound and unbound: yes; listed: 2
files: listed before 0, after an unchanged request 1; destroy_user_sessions ended 1; next read: []
files: round trips of 5 cycles the same bound and unbound: yes; listed: 2
redis: listed before 0, after an unchanged request 1; destroy_user_sessions ended 1; next read: []
redis: round trips of 5 cycles the same bound and unbound: yes; listed: 2
memcached: listed before 0, after an unchanged request 1; destroy_user_sessions ended 1; next read: []
memcached: round trips of 5 cycles the same bound and unbound: yes; listed: 2
pgsql: listed before 0, after an unchanged request 1; destroy_user_sessions ended 1; next read: []
pgsql: round trips of 5 cycles the same bound and unbound: yes; listed: 2
mysql: listed before 0, after an unchanged request 1; destroy_user_sessions ended 1; next read: []
mysql: round trips of 5 cycles the same bound and unbound: yes; listed: 2
