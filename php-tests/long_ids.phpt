--TEST--
Ids of 250, 251 and 256 characters on every engine: round trip, locking, destroy, gc and strict mode work; ids too long for a Memcached key or a file name are stored under "sha256.<hex>", shorter ones keep the id
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';
require_once __DIR__ . '/inc/lifecycle.inc';
require_once __DIR__ . '/inc/redis.inc';

const LENS = [250, 251, 256];

function long_id(int $len, string $tag): string
{
    return substr($tag . str_repeat('Lx9-,', 60), 0, $len);
}

$d = sp_tmpdir('longid');
mkdir("$d/files");
$engines = [
    'sqlite' => "sqlite://$d/sessions.sqlite",
    'files' => "files://$d/files",
    'redis' => 'redis://127.0.0.1:' . rd_port() . '?prefix=' . rd_prefix('longid'),
    'memcached' => mc_dsn([mc_port(1), mc_port(2), mc_port(3)], '', $mcPrefix),
];
$mcPorts = [mc_port(1), mc_port(2), mc_port(3)];

/** One child: $code under the engine's DSN (and $ini); prints its unexpected output; returns its result. */
function run(string $who, string $dsn, string $code, array $p, array $ini = []): array
{
    return lk_run($who, $code, $p, $ini + ['session.save_path' => $dsn, 'session.gc_maxlifetime' => '1440']);
}

function no_errors(string $who, array $r, string $dsn): void
{
    foreach (lk_errors($r, $dsn) as $e) {
        echo "$who: $e\n";
    }
}

const WRITE = '
    session_id($P["id"]);
    $ok = session_start();
    $_SESSION["v"] = $P["v"];
    session_write_close();
    lk_done(["ok" => $ok]);
';

foreach ($engines as $engine => $dsn) {
    echo "== $engine\n";
    foreach (LENS as $len) {
        $id = long_id($len, "rt$engine");
        // Round trip, read back by another process.
        $r = run("$len write", $dsn, WRITE, ['id' => $id, 'v' => "len$len"]);
        no_errors("$len write", $r, $dsn);
        $back = lk_stored($dsn, $id)['v'] ?? null;
        echo "$len: started ", json_encode($r['ok'] ?? null), ", read back: ", json_encode($back), "\n";

        // Locking: B asks for the lock while A holds it and must see A's change.
        $sig = sp_tmpdir('longid-sig');
        $a = lk_spawn('
            session_id($P["id"]);
            $ok = session_start();
            lk_signal($P["sig"] . "/locked");
            usleep(300000);
            $_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1;
            session_write_close();
            lk_done(["ok" => $ok]);
        ', ['id' => $id, 'sig' => $sig], ['session.save_path' => $dsn]);
        sp_wait_for_file("$sig/locked", 20.0);
        $b = run("$len B", $dsn, '
            session_id($P["id"]);
            $t = microtime(true);
            $ok = session_start();
            $waited = microtime(true) - $t;
            $seen = $_SESSION["n"] ?? 0;
            $_SESSION["n"] = $seen + 1;
            session_write_close();
            lk_done(["ok" => $ok, "seen" => $seen, "waited" => $waited]);
        ', ['id' => $id]);
        $ra = lk_result("$len A", sp_wait($a));
        no_errors("$len A", $ra, $dsn);
        no_errors("$len B", $b, $dsn);
        // B can only see A's increment if it waited for A's lock (A held it 300 ms).
        echo "$len: B waited for A's lock and saw its change: ", lk_check(($b['seen'] ?? null) === 1, json_encode($b)),
            ", stored n=", json_encode(lk_stored($dsn, $id)['n'] ?? null), "\n";

        // Strict mode: the live long id is accepted, an unknown one of the same length replaced.
        $strict = '
            session_id($P["id"]);
            $ok = session_start();
            $kept = session_id() === $P["id"];
            session_abort();
            lk_done(["ok" => $ok, "kept" => $kept]);
        ';
        $ini = ['session.use_strict_mode' => '1'];
        $live = run("$len strict", $dsn, $strict, ['id' => $id], $ini);
        $unknown = run("$len strict unknown", $dsn, $strict, ['id' => long_id($len, "unknown$engine")], $ini);
        no_errors("$len strict", $live, $dsn);
        no_errors("$len strict unknown", $unknown, $dsn);
        echo "$len: strict mode keeps the live id: ", json_encode($live['kept'] ?? null),
            ", replaces an unknown one: ", json_encode(!($unknown['kept'] ?? true)), "\n";

        // Destroy.
        $r = run("$len destroy", $dsn, '
            session_id($P["id"]);
            session_start();
            lk_done(["destroyed" => session_destroy()]);
        ', ['id' => $id]);
        no_errors("$len destroy", $r, $dsn);
        echo "$len: destroyed: ", json_encode($r['destroyed'] ?? null), ", read after: ", json_encode(lk_stored($dsn, $id)), "\n";
    }
}

// Names in storage: within the limit the id itself (files: "sess_" + 250 characters is 255 bytes),
// beyond it "sha256." + the SHA-256 of the id in hex.
foreach ([250, 251] as $len) {
    $id = long_id($len, 'name');
    run("name $len", $engines['files'], WRITE, ['id' => $id, 'v' => 1]);
    $files = scandir("$d/files");
    echo "files $len: sess_<id>: ", sp_yn(in_array("sess_$id", $files, true)),
        ", sess_sha256.<hex>: ", sp_yn(in_array('sess_sha256.' . hash('sha256', $id), $files, true)), "\n";
}
// memcached: prefix + "lock." + id must fit 250 bytes; with this test's 11-byte prefix, 234 characters do.
foreach ([234, 235] as $len) {
    $id = long_id($len, 'name');
    run("name $len", $engines['memcached'], WRITE, ['id' => $id, 'v' => 1]);
    $on = fn (string $key) => sp_yn(array_filter($mcPorts, fn ($p) => mc_get($p, $key) !== null) !== []);
    echo "memcached $len: <prefix><id>: ", $on($mcPrefix . $id), ", <prefix>sha256.<hex>: ",
        $on($mcPrefix . 'sha256.' . hash('sha256', $id)), "\n";
}

// gc: sessions written now are idle for more than gc_maxlifetime=1 s when session_gc() runs. (Redis
// expires sessions itself: its sessions are written with gc_maxlifetime=1, its TTL.) They age 4 s, not
// 2: Memcached's age is read from its remaining TTL, which ticks once a second and can read up to 2 s
// high, and a loaded machine delays the gc request further (memcached_expiry.phpt has the same margin).
foreach ($engines as $engine => $dsn) {
    foreach (LENS as $len) {
        run("gc write $len", $dsn, WRITE, ['id' => long_id($len, "gc$engine"), 'v' => 1],
            $engine === 'redis' ? ['session.gc_maxlifetime' => '1'] : []);
    }
}
usleep(4100000);
foreach ($engines as $engine => $dsn) {
    $r = run("gc $engine", $dsn, '
        session_id("gcdriver");
        session_start();
        $n = session_gc();
        session_abort();
        lk_done(["n" => $n]);
    ', [], ['session.gc_maxlifetime' => '1']);
    no_errors("gc $engine", $r, $dsn);
    $left = array_filter(LENS, fn ($len) => lk_stored($dsn, long_id($len, "gc$engine")) !== []);
    echo "gc $engine: long-id sessions left: ", json_encode(array_values($left)), "\n";
}
?>
--EXPECT--
== sqlite
250: started true, read back: "len250"
250: B waited for A's lock and saw its change: yes, stored n=2
250: strict mode keeps the live id: true, replaces an unknown one: true
250: destroyed: true, read after: []
251: started true, read back: "len251"
251: B waited for A's lock and saw its change: yes, stored n=2
251: strict mode keeps the live id: true, replaces an unknown one: true
251: destroyed: true, read after: []
256: started true, read back: "len256"
256: B waited for A's lock and saw its change: yes, stored n=2
256: strict mode keeps the live id: true, replaces an unknown one: true
256: destroyed: true, read after: []
== files
250: started true, read back: "len250"
250: B waited for A's lock and saw its change: yes, stored n=2
250: strict mode keeps the live id: true, replaces an unknown one: true
250: destroyed: true, read after: []
251: started true, read back: "len251"
251: B waited for A's lock and saw its change: yes, stored n=2
251: strict mode keeps the live id: true, replaces an unknown one: true
251: destroyed: true, read after: []
256: started true, read back: "len256"
256: B waited for A's lock and saw its change: yes, stored n=2
256: strict mode keeps the live id: true, replaces an unknown one: true
256: destroyed: true, read after: []
== redis
250: started true, read back: "len250"
250: B waited for A's lock and saw its change: yes, stored n=2
250: strict mode keeps the live id: true, replaces an unknown one: true
250: destroyed: true, read after: []
251: started true, read back: "len251"
251: B waited for A's lock and saw its change: yes, stored n=2
251: strict mode keeps the live id: true, replaces an unknown one: true
251: destroyed: true, read after: []
256: started true, read back: "len256"
256: B waited for A's lock and saw its change: yes, stored n=2
256: strict mode keeps the live id: true, replaces an unknown one: true
256: destroyed: true, read after: []
== memcached
250: started true, read back: "len250"
250: B waited for A's lock and saw its change: yes, stored n=2
250: strict mode keeps the live id: true, replaces an unknown one: true
250: destroyed: true, read after: []
251: started true, read back: "len251"
251: B waited for A's lock and saw its change: yes, stored n=2
251: strict mode keeps the live id: true, replaces an unknown one: true
251: destroyed: true, read after: []
256: started true, read back: "len256"
256: B waited for A's lock and saw its change: yes, stored n=2
256: strict mode keeps the live id: true, replaces an unknown one: true
256: destroyed: true, read after: []
files 250: sess_<id>: yes, sess_sha256.<hex>: no
files 251: sess_<id>: no, sess_sha256.<hex>: yes
memcached 234: <prefix><id>: yes, <prefix>sha256.<hex>: no
memcached 235: <prefix><id>: no, <prefix>sha256.<hex>: yes
gc sqlite: long-id sessions left: []
gc files: long-id sessions left: []
gc redis: long-id sessions left: []
gc memcached: long-id sessions left: []
