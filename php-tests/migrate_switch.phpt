--TEST--
session_proxy.migrate_from: the read-through switch between each pair of SQLite, files, Redis, Memcached, PostgreSQL and MySQL/MariaDB (users logged in under the old store stay logged in, strict mode accepts their ids, the first write or an unchanged request moves them, destroy removes both copies, stats() counts reads from the old store and moves), a bad DSN refused naming the directive, an old store that is down costs one warning and the request goes on
--INI--
session.save_handler=session_proxy
session.use_cookies=0
session.cache_limiter=
session.lazy_write=1
session.use_strict_mode=1
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';
require __DIR__ . '/inc/memcached.inc';
require __DIR__ . '/inc/redis.inc';
require __DIR__ . '/inc/pgsql.inc';
require __DIR__ . '/inc/mysql.inc';

$d = sp_tmpdir('migswitch');
/** A fresh store of each kind (its own file, directory or key prefix). */
function store(string $kind, string $d, int $n): string
{
    switch ($kind) {
        case 'sqlite':
            return "sqlite://$d/s$n.sqlite";
        case 'files':
            @mkdir("$d/f$n");
            return "files://$d/f$n";
        case 'redis':
            return 'redis://127.0.0.1:' . rd_port() . '/0?prefix=' . rd_prefix("mig$n");
        case 'pgsql':
            return pg_dsn(pg_table("mig$n"));
        case 'mysql':
            return my_dsn(my_table("mig$n"));
        default:
            return mc_dsn([mc_port(1), mc_port(2)]);
    }
}

/** What our handler reads of $id in $dsn alone (no migration): null when absent. */
function stored(string $dsn, string $id): ?array
{
    $r = sp_cycle($dsn, $id, null, ['session_proxy.migrate_from' => '', 'session.use_strict_mode' => '0']);
    $data = $r['data'] ?? null;
    // sp_cycle's write of an empty session creates nothing: an absent session stays absent.
    return $data === [] ? null : $data;
}

$kinds = ['sqlite', 'files', 'redis', 'memcached', 'pgsql', 'mysql'];
$n = 0;
foreach ($kinds as $from) {
    foreach ($kinds as $to) {
        if ($from === $to) {
            continue;
        }
        $old = store($from, $d, ++$n);
        $new = store($to, $d, ++$n);
        // Logged in under the old store: three users.
        foreach (['mgwriter', 'mgreader', 'mgleaver'] as $u) {
            sp_cycle($old, "$u$n", fn () => $_SESSION['user'] = $u, ['session_proxy.migrate_from' => '', 'session.use_strict_mode' => '0']);
        }
        $before = SessionProxy\stats()[$to];
        $ini = ['session_proxy.migrate_from' => $old, 'session.use_strict_mode' => '1'];
        // The writer changes its session, the reader does not (lazy write: a touch), the leaver logs out.
        $w = sp_cycle($new, "mgwriter$n", function () { $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; }, $ini);
        $r = sp_cycle($new, "mgreader$n", null, $ini);
        sp_use($new, $ini);
        session_id("mgleaver$n");
        $l = session_start() && ($_SESSION['user'] ?? '') === 'mgleaver' && session_destroy();
        // Strict mode: an id the old store never had gets a new one.
        sp_use($new, $ini);
        session_id("mgstranger$n");
        session_start();
        $strict = session_id() !== "mgstranger$n";
        session_write_close();
        $after = SessionProxy\stats()[$to];
        $ok = [
            'logged in' => ($w['data']['user'] ?? '') === 'mgwriter' && ($r['data']['user'] ?? '') === 'mgreader' && $l,
            'ids kept' => $strict,
            'moved' => stored($new, "mgwriter$n") === ['user' => 'mgwriter', 'n' => 1] && stored($new, "mgreader$n") === ['user' => 'mgreader'],
            'old emptied' => stored($old, "mgwriter$n") === null && stored($old, "mgreader$n") === null && stored($old, "mgleaver$n") === null,
            'destroyed' => stored($new, "mgleaver$n") === null,
            'counted' => $after['old_store_reads'] - $before['old_store_reads'] === 3 && $after['migrated'] - $before['migrated'] === 2,
        ];
        $bad = array_keys(array_filter($ok, fn ($v) => !$v));
        printf("%-9s -> %-9s %s\n", $from, $to, $bad ? 'FAILED: ' . implode(', ', $bad) . ' ' . json_encode([$w, $r, $after['old_store_reads'] - $before['old_store_reads'], $after['migrated'] - $before['migrated']]) : 'ok');
    }
}

// A DSN that is no DSN: refused with a warning naming the directive, the previous value stays.
var_dump(ini_set('session_proxy.migrate_from', 'nosuch://x'));
var_dump(ini_get('session_proxy.migrate_from'));
// A password is never shown.
ini_set('session_proxy.migrate_from', 'redis://:hunter2@127.0.0.1:6379/x?timeout=1');

// An old store that is down (nothing listens on port 1): one warning, the session works on the new store.
$new = store('sqlite', $d, ++$n);
$t = microtime(true);
$c = sp_cycle($new, 'mgdown', fn () => $_SESSION['v'] = 'kept', ['session_proxy.migrate_from' => 'redis://127.0.0.1:1/0?timeout=1']);
echo 'down: started ', var_export($c['started'], true), ', stored ', json_encode(stored($new, 'mgdown')), "\n";
?>
--EXPECTF--
sqlite    -> files     ok
sqlite    -> redis     ok
sqlite    -> memcached ok
sqlite    -> pgsql     ok
sqlite    -> mysql     ok
files     -> sqlite    ok
files     -> redis     ok
files     -> memcached ok
files     -> pgsql     ok
files     -> mysql     ok
redis     -> sqlite    ok
redis     -> files     ok
redis     -> memcached ok
redis     -> pgsql     ok
redis     -> mysql     ok
memcached -> sqlite    ok
memcached -> files     ok
memcached -> redis     ok
memcached -> pgsql     ok
memcached -> mysql     ok
pgsql     -> sqlite    ok
pgsql     -> files     ok
pgsql     -> redis     ok
pgsql     -> memcached ok
pgsql     -> mysql     ok
mysql     -> sqlite    ok
mysql     -> files     ok
mysql     -> redis     ok
mysql     -> memcached ok
mysql     -> pgsql     ok

Warning: ini_set(): session_proxy: invalid session_proxy.migrate_from "nosuch://x": %s; accepted forms: %s in %s on line %d
bool(false)
string(0) ""

Warning: ini_set(): session_proxy: invalid session_proxy.migrate_from "redis://:***@127.0.0.1:6379/x?timeout=1": %s in %s on line %d

Warning: session_start(): session_proxy: the old store of session_proxy.migrate_from failed: 127.0.0.1:1: %s; this request goes on with sqlite://%s alone in %s on line %d
down: started true, stored {"v":"kept"}
