--TEST--
nginx + php-fpm, session_proxy.locking=optimistic: 16 parallel requests on one cookie, each setting its own key during 50 ms of work, all keep their key, and the batch runs in parallel (well under the 16 x 50 ms that locking costs); overlapping changes follow merge_conflict; a logout racing late writers stays a logout; on every engine
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require_once __DIR__ . '/inc/locking.inc';

const N = 16;
const WORK_MS = 50;

// A pool of its own with a worker for each of the 16 parallel requests: the batch is one wave of
// 50 ms, not two (the shared pool has 10 workers), so the quarter bound measures the handler only.
web_private('fpmopt', N + 1);
$engines = web_all_engines('fpmopt');
// Production meets these races on a busy machine: one CPU kept busy alongside (bounded, stopped at the end).
$burner = lk_burner(180);
$times = [];
foreach ($engines as $engine => $dsn) {
    echo "== $engine\n";
    // Every worker opens its connection (SQLite: the database and its schema check) once, before the
    // batch is timed: the first request of 17 fresh workers at once is not what is measured here.
    web_parallel(array_fill(0, N + 1, web_app_url('whoami', 'native', $dsn)), null);
    foreach (['optimistic', '1'] as $locking) {
        $first = web_ok('first request', 'hit', 'native', $dsn, null);
        $sid = $first['json']['id'];
        $urls = [];
        for ($i = 0; $i < N; $i++) {
            $urls[] = web_app_url('setkey', 'native', $dsn, ['k' => $i, 'work' => WORK_MS, 'opt' => ['locking' => $locking]]);
        }
        $t0 = microtime(true);
        $res = web_parallel($urls, $sid);
        $wall = microtime(true) - $t0;
        $bad = array_filter($res, fn ($r) => $r['status'] !== 200 || ($r['json']['errors'] ?? ['?']) !== []);
        $data = web_ok('reader', 'whoami', 'native', $dsn, $sid)['json']['data'] ?? [];
        $keys = array_filter(array_keys($data), fn ($k) => str_starts_with((string) $k, 'k'));
        if ($locking === 'optimistic') {
            echo "every request answered 200 with no PHP errors: ", web_yes(!$bad, json_encode(array_values($bad))), "\n";
            echo "all ", N, " keys kept: ", web_yes(count($keys) === N, json_encode($data)), "\n";
            $times[$engine] = $wall;
        } else {
            // Locking serialises the batch: the reference the optimistic run is measured against.
            echo "with locking On the batch takes at least ", N, " x ", WORK_MS, " ms: ", web_yes($wall >= N * WORK_MS / 1000, sprintf('%.3f s', $wall)), "\n";
            echo "optimistic batch under a quarter of that: ", web_yes($times[$engine] < N * WORK_MS / 1000 / 4, sprintf('%.3f s', $times[$engine])), "\n";
        }
    }
    // Overlapping changes: 8 requests each set the same key kx to their own value.
    foreach (['last', 'first'] as $policy) {
        $sid = web_ok('first request', 'hit', 'native', $dsn, null)['json']['id'];
        web_ok('seed', 'setkey', 'native', $dsn, $sid, ['k' => 'x', 'v' => 'seed']);
        $urls = [];
        for ($i = 0; $i < 8; $i++) {
            $urls[] = web_app_url('setkey', 'native', $dsn, ['k' => 'x', 'v' => "r$i", 'work' => WORK_MS, 'opt' => ['locking' => 'optimistic', 'merge_conflict' => $policy]]);
        }
        $res = web_parallel($urls, $sid);
        $ok = array_filter($res, fn ($r) => $r['status'] === 200);
        $notices = array_sum(array_map(fn ($r) => count(array_filter($r['json']['errors'] ?? [], fn ($e) => str_contains($e, 'merge_conflict=first'))), $res));
        $other = array_sum(array_map(fn ($r) => count(array_filter($r['json']['errors'] ?? [], fn ($e) => !str_contains($e, 'merge_conflict=first'))), $res));
        $kx = web_ok('reader', 'whoami', 'native', $dsn, $sid)['json']['data']['kx'] ?? null;
        echo "-- merge_conflict=$policy\n";
        echo "all answered 200, no other warning: ", web_yes(count($ok) === 8 && $other === 0, json_encode($res)), "\n";
        if ($policy === 'last') {
            echo "kx is one request's value: ", web_yes(preg_match('~^r[0-7]$~', (string) $kx) === 1, var_export($kx, true)), "\n";
        } else {
            // The first writer's CAS wins; the later ones, which read "seed" too, find kx changed
            // and keep the stored value, each with a notice.
            echo "kx is a request's value, kept against the later writers: ", web_yes(preg_match('~^r[0-7]$~', (string) $kx) === 1, var_export($kx, true)), "\n";
            echo "the later writers were told their change was dropped: ", web_yes($notices >= 1 && $notices <= 7, "$notices notices"), "\n";
        }
    }
    // A logout racing late writers: 8 writers of the session, and one logout among them; afterwards
    // the old id holds nothing a writer that read before the logout could have written back.
    $sid = web_ok('first request', 'hit', 'native', $dsn, null)['json']['id'];
    $urls = [];
    for ($i = 0; $i < 8; $i++) {
        $urls[] = web_app_url('setkey', 'native', $dsn, ['k' => "w$i", 'work' => 200, 'opt' => ['locking' => 'optimistic']]);
    }
    $urls[] = web_app_url('logout', 'native', $dsn, ['opt' => ['locking' => 'optimistic']]);
    $res = web_parallel($urls, $sid);
    $logout = end($res);
    $after = web_get('whoami', 'native', $dsn, $sid);
    echo "-- logout racing 8 late writers\n";
    echo "logout answered: ", web_yes(($logout['json']['destroyed'] ?? null) === true, json_encode($logout)), "\n";
    // Strict mode: an id the store no longer knows is replaced by a new, empty session.
    echo "the old id is gone afterwards (a new, empty session): ", web_yes(($after['json']['id'] ?? $sid) !== $sid && ($after['json']['data'] ?? null) === [], json_encode($after['json'])), "\n";
}
lk_burner_stop($burner);
echo "optimistic wall times (16 x 50 ms of work): ", implode(', ', array_map(fn ($e, $t) => sprintf('%s %.0f ms', $e, $t * 1000), array_keys($times), $times)), "\n";
?>
--EXPECTF--
== sqlite
every request answered 200 with no PHP errors: yes
all 16 keys kept: yes
with locking On the batch takes at least 16 x 50 ms: yes
optimistic batch under a quarter of that: yes
-- merge_conflict=last
all answered 200, no other warning: yes
kx is one request's value: yes
-- merge_conflict=first
all answered 200, no other warning: yes
kx is a request's value, kept against the later writers: yes
the later writers were told their change was dropped: yes
-- logout racing 8 late writers
logout answered: yes
the old id is gone afterwards (a new, empty session): yes
== files
every request answered 200 with no PHP errors: yes
all 16 keys kept: yes
with locking On the batch takes at least 16 x 50 ms: yes
optimistic batch under a quarter of that: yes
-- merge_conflict=last
all answered 200, no other warning: yes
kx is one request's value: yes
-- merge_conflict=first
all answered 200, no other warning: yes
kx is a request's value, kept against the later writers: yes
the later writers were told their change was dropped: yes
-- logout racing 8 late writers
logout answered: yes
the old id is gone afterwards (a new, empty session): yes
== redis
every request answered 200 with no PHP errors: yes
all 16 keys kept: yes
with locking On the batch takes at least 16 x 50 ms: yes
optimistic batch under a quarter of that: yes
-- merge_conflict=last
all answered 200, no other warning: yes
kx is one request's value: yes
-- merge_conflict=first
all answered 200, no other warning: yes
kx is a request's value, kept against the later writers: yes
the later writers were told their change was dropped: yes
-- logout racing 8 late writers
logout answered: yes
the old id is gone afterwards (a new, empty session): yes
== redis-cluster
every request answered 200 with no PHP errors: yes
all 16 keys kept: yes
with locking On the batch takes at least 16 x 50 ms: yes
optimistic batch under a quarter of that: yes
-- merge_conflict=last
all answered 200, no other warning: yes
kx is one request's value: yes
-- merge_conflict=first
all answered 200, no other warning: yes
kx is a request's value, kept against the later writers: yes
the later writers were told their change was dropped: yes
-- logout racing 8 late writers
logout answered: yes
the old id is gone afterwards (a new, empty session): yes
== redis-sentinel
every request answered 200 with no PHP errors: yes
all 16 keys kept: yes
with locking On the batch takes at least 16 x 50 ms: yes
optimistic batch under a quarter of that: yes
-- merge_conflict=last
all answered 200, no other warning: yes
kx is one request's value: yes
-- merge_conflict=first
all answered 200, no other warning: yes
kx is a request's value, kept against the later writers: yes
the later writers were told their change was dropped: yes
-- logout racing 8 late writers
logout answered: yes
the old id is gone afterwards (a new, empty session): yes
== memcached
every request answered 200 with no PHP errors: yes
all 16 keys kept: yes
with locking On the batch takes at least 16 x 50 ms: yes
optimistic batch under a quarter of that: yes
-- merge_conflict=last
all answered 200, no other warning: yes
kx is one request's value: yes
-- merge_conflict=first
all answered 200, no other warning: yes
kx is a request's value, kept against the later writers: yes
the later writers were told their change was dropped: yes
-- logout racing 8 late writers
logout answered: yes
the old id is gone afterwards (a new, empty session): yes
== memcached x3
every request answered 200 with no PHP errors: yes
all 16 keys kept: yes
with locking On the batch takes at least 16 x 50 ms: yes
optimistic batch under a quarter of that: yes
-- merge_conflict=last
all answered 200, no other warning: yes
kx is one request's value: yes
-- merge_conflict=first
all answered 200, no other warning: yes
kx is a request's value, kept against the later writers: yes
the later writers were told their change was dropped: yes
-- logout racing 8 late writers
logout answered: yes
the old id is gone afterwards (a new, empty session): yes
optimistic wall times (16 x 50 ms of work): sqlite %d ms, files %d ms, redis %d ms, redis-cluster %d ms, redis-sentinel %d ms, memcached %d ms, memcached x3 %d ms
