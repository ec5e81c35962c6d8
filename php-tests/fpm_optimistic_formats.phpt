--TEST--
nginx + php-fpm, session_proxy.locking=optimistic, two requests on one cookie interleaved (A reads, B reads, writes and ends, then A writes): different keys are both kept in php, php_serialize and php_binary, also through SessionProxy\Handler; a session holding references, and one in igbinary (a format the merge does not read), are one unit that follows merge_conflict; a logout or a regenerate between A's read and write stays as it is; read_and_close returns the committed data at once next to a lock holder; on every engine form, with a CPU burner alongside
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require_once __DIR__ . '/inc/locking.inc';

web_url();
$burner = lk_burner(180);

/**
 * A and B on $sid: A opens (sig_open), B opens after it, does its action and ends (sig_done), then A
 * writes. Both are sent at once; the signal files order them. Returns [A's reply, B's reply].
 */
function interleave(string $dsn, string $sid, array $a, array $b, string $h = 'native'): array
{
    $d = sp_tmpdir('fpmfmt-sig');
    $a += ['a' => 'setkey'];
    $b += ['a' => 'setkey'];
    $ua = web_app_url($a['a'], $h, $dsn, ['sig_open' => "$d/a-open", 'wait_write' => "$d/b-done"] + $a);
    $ub = web_app_url($b['a'], $h, $dsn, ['wait_open' => "$d/a-open", 'sig_done' => "$d/b-done"] + $b);
    $r = web_parallel([$ua, $ub], $sid, 60.0);
    return [$r[0], $r[1]];
}

/** "ok" when the reply is HTTP 200 and its PHP messages are exactly those containing each of $want. */
function replied(array $r, array $want = []): string
{
    $errors = $r['json']['errors'] ?? ['(no JSON reply)'];
    $ok = $r['status'] === 200 && count($errors) === count($want);
    foreach ($want as $i => $w) {
        $ok = $ok && str_contains($errors[$i] ?? '', $w);
    }
    return web_yes($ok, "HTTP {$r['status']}: " . json_encode($errors, JSON_UNESCAPED_SLASHES));
}

/** The keys of the session stored under $sid, read in $ser (a fresh read, no write). */
function stored(string $dsn, string $sid, string $ser = 'php'): string
{
    $r = web_ok('reader', 'whoami', 'native', $dsn, $sid, ['ser' => $ser, 'rac' => '1']);
    return web_data($r['json']['data'] ?? null);
}

$opt = fn (string $policy = 'last') => ['opt' => ['locking' => 'optimistic', 'merge_conflict' => $policy]];
foreach (web_all_engines('fpmfmt') as $engine => $dsn) {
    echo "== $engine\n";
    foreach (['php', 'php_serialize', 'php_binary'] as $ser) {
        $sid = web_ok('first request', 'hit', 'native', $dsn, null, ['ser' => $ser])['json']['id'];
        [$ra, $rb] = interleave($dsn, $sid, ['k' => 'A', 'ser' => $ser] + $opt(), ['k' => 'B', 'ser' => $ser] + $opt());
        echo "$ser: A ", replied($ra), ", B ", replied($rb), ", stored ", stored($dsn, $sid, $ser), "\n";
    }
    // The same through SessionProxy\Handler (the class option locking => 'optimistic').
    $sid = web_ok('first request', 'hit', 'class', $dsn, null)['json']['id'];
    [$ra, $rb] = interleave($dsn, $sid, ['k' => 'A'] + $opt(), ['k' => 'B'] + $opt(), 'class');
    echo "class: A ", replied($ra), ", B ", replied($rb), ", stored ", stored($dsn, $sid), "\n";
    // References between keys: one unit. Under "last" A's whole session wins (B's key is lost: the
    // README says so), and the reference is still one.
    $sid = web_ok('first request', 'hit', 'native', $dsn, null)['json']['id'];
    web_ok('seed', 'setref', 'native', $dsn, $sid);
    [$ra, $rb] = interleave($dsn, $sid, ['k' => 'A'] + $opt(), ['k' => 'B'] + $opt());
    $shared = web_ok('isref', 'isref', 'native', $dsn, $sid)['json']['shared'] ?? null;
    echo "references: A ", replied($ra), ", B ", replied($rb), ", stored ", stored($dsn, $sid), ", a and b one reference: ", web_yes($shared === true), "\n";
    // igbinary: the merge cannot read it, so any concurrent change is a conflict under the policy.
    foreach (['last', 'first'] as $policy) {
        $sid = web_ok('first request', 'hit', 'native', $dsn, null, ['ser' => 'igbinary'])['json']['id'];
        [$ra, $rb] = interleave($dsn, $sid, ['k' => 'A', 'ser' => 'igbinary'] + $opt($policy), ['k' => 'B', 'ser' => 'igbinary'] + $opt($policy));
        $want = $policy === 'first' ? ['merge_conflict=first'] : [];
        echo "igbinary, merge_conflict=$policy: A ", replied($ra, $want), ", B ", replied($rb), ", stored ", stored($dsn, $sid, 'igbinary'), "\n";
    }
    // B logs out between A's read and A's write: A's write is dropped with a notice.
    $sid = web_ok('first request', 'hit', 'native', $dsn, null)['json']['id'];
    [$ra, $rb] = interleave($dsn, $sid, ['k' => 'A'] + $opt(), ['a' => 'logout'] + $opt());
    $after = web_get('whoami', 'native', $dsn, $sid);
    echo "logout: A ", replied($ra, ['was destroyed by another request']), ", B ", replied($rb),
        ", the old id is gone: ", web_yes(($after['json']['id'] ?? $sid) !== $sid && ($after['json']['data'] ?? null) === [], json_encode($after['json'])), "\n";
    // B logs in (session_regenerate_id(true)) between A's read and write: the old id stays gone and
    // the new one holds only what B wrote, not A's late change.
    $sid = web_ok('first request', 'hit', 'native', $dsn, null)['json']['id'];
    [$ra, $rb] = interleave($dsn, $sid, ['k' => 'A'] + $opt(), ['a' => 'login', 'user' => 'bob'] + $opt());
    $new = $rb['json']['id'] ?? '';
    $after = web_get('whoami', 'native', $dsn, $sid);
    echo "regenerate: A ", replied($ra, ['was destroyed by another request']), ", B ", replied($rb),
        ", the old id is gone: ", web_yes(($after['json']['id'] ?? $sid) !== $sid && ($after['json']['data'] ?? null) === [], json_encode($after['json'])),
        ", the new id holds ", $new !== '' && $new !== $sid ? stored($dsn, $new) : "no new id ($new)", "\n";
    // read_and_close next to a request that holds the lock (locking On) for 1.5 s: returns at once
    // with the committed data.
    $sid = web_ok('first request', 'hit', 'native', $dsn, null)['json']['id'];
    [$ra, $rb] = interleave($dsn, $sid, ['a' => 'nap', 'ms' => 1500], ['a' => 'whoami', 'rac' => '1']);
    $ms = $rb['json']['start_ms'] ?? INF;
    // 500 ms: a third of the holder's 1.5 s; the start takes 1-20 ms here, also beside the burner.
    echo "read_and_close beside a lock holder: B ", replied($rb), ", started in under 500 ms: ", web_yes($ms < 500, "$ms ms"),
        ", saw ", web_data($rb['json']['data'] ?? null), "; A ", replied($ra), ", stored ", stored($dsn, $sid), "\n";
}
lk_burner_stop($burner);
?>
--EXPECT--
== sqlite
php: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_serialize: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_binary: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
class: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
references: A yes, B yes, stored {"a":[1],"b":[1],"kA":"A","seed":1}, a and b one reference: yes
igbinary, merge_conflict=last: A yes, B yes, stored {"count":1,"kA":"A"}
igbinary, merge_conflict=first: A yes, B yes, stored {"count":1,"kB":"B"}
logout: A yes, B yes, the old id is gone: yes
regenerate: A yes, B yes, the old id is gone: yes, the new id holds {"count":1,"user":"bob"}
read_and_close beside a lock holder: B yes, started in under 500 ms: yes, saw {"count":1}; A yes, stored {"count":1,"n":1}
== files
php: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_serialize: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_binary: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
class: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
references: A yes, B yes, stored {"a":[1],"b":[1],"kA":"A","seed":1}, a and b one reference: yes
igbinary, merge_conflict=last: A yes, B yes, stored {"count":1,"kA":"A"}
igbinary, merge_conflict=first: A yes, B yes, stored {"count":1,"kB":"B"}
logout: A yes, B yes, the old id is gone: yes
regenerate: A yes, B yes, the old id is gone: yes, the new id holds {"count":1,"user":"bob"}
read_and_close beside a lock holder: B yes, started in under 500 ms: yes, saw {"count":1}; A yes, stored {"count":1,"n":1}
== redis
php: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_serialize: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_binary: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
class: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
references: A yes, B yes, stored {"a":[1],"b":[1],"kA":"A","seed":1}, a and b one reference: yes
igbinary, merge_conflict=last: A yes, B yes, stored {"count":1,"kA":"A"}
igbinary, merge_conflict=first: A yes, B yes, stored {"count":1,"kB":"B"}
logout: A yes, B yes, the old id is gone: yes
regenerate: A yes, B yes, the old id is gone: yes, the new id holds {"count":1,"user":"bob"}
read_and_close beside a lock holder: B yes, started in under 500 ms: yes, saw {"count":1}; A yes, stored {"count":1,"n":1}
== redis-cluster
php: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_serialize: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_binary: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
class: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
references: A yes, B yes, stored {"a":[1],"b":[1],"kA":"A","seed":1}, a and b one reference: yes
igbinary, merge_conflict=last: A yes, B yes, stored {"count":1,"kA":"A"}
igbinary, merge_conflict=first: A yes, B yes, stored {"count":1,"kB":"B"}
logout: A yes, B yes, the old id is gone: yes
regenerate: A yes, B yes, the old id is gone: yes, the new id holds {"count":1,"user":"bob"}
read_and_close beside a lock holder: B yes, started in under 500 ms: yes, saw {"count":1}; A yes, stored {"count":1,"n":1}
== redis-sentinel
php: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_serialize: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_binary: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
class: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
references: A yes, B yes, stored {"a":[1],"b":[1],"kA":"A","seed":1}, a and b one reference: yes
igbinary, merge_conflict=last: A yes, B yes, stored {"count":1,"kA":"A"}
igbinary, merge_conflict=first: A yes, B yes, stored {"count":1,"kB":"B"}
logout: A yes, B yes, the old id is gone: yes
regenerate: A yes, B yes, the old id is gone: yes, the new id holds {"count":1,"user":"bob"}
read_and_close beside a lock holder: B yes, started in under 500 ms: yes, saw {"count":1}; A yes, stored {"count":1,"n":1}
== memcached
php: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_serialize: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_binary: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
class: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
references: A yes, B yes, stored {"a":[1],"b":[1],"kA":"A","seed":1}, a and b one reference: yes
igbinary, merge_conflict=last: A yes, B yes, stored {"count":1,"kA":"A"}
igbinary, merge_conflict=first: A yes, B yes, stored {"count":1,"kB":"B"}
logout: A yes, B yes, the old id is gone: yes
regenerate: A yes, B yes, the old id is gone: yes, the new id holds {"count":1,"user":"bob"}
read_and_close beside a lock holder: B yes, started in under 500 ms: yes, saw {"count":1}; A yes, stored {"count":1,"n":1}
== memcached x3
php: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_serialize: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
php_binary: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
class: A yes, B yes, stored {"count":1,"kA":"A","kB":"B"}
references: A yes, B yes, stored {"a":[1],"b":[1],"kA":"A","seed":1}, a and b one reference: yes
igbinary, merge_conflict=last: A yes, B yes, stored {"count":1,"kA":"A"}
igbinary, merge_conflict=first: A yes, B yes, stored {"count":1,"kB":"B"}
logout: A yes, B yes, the old id is gone: yes
regenerate: A yes, B yes, the old id is gone: yes, the new id holds {"count":1,"user":"bob"}
read_and_close beside a lock holder: B yes, started in under 500 ms: yes, saw {"count":1}; A yes, stored {"count":1,"n":1}
