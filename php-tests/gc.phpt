--TEST--
Garbage collection: session_gc() deletes sessions idle longer than gc_maxlifetime and keeps fresh ones, automatic gc runs at session_start, SQLite deletes thousands of rows in batches
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

const GC1 = ['session.gc_maxlifetime' => '1'];
const OLD = ['old1', 'old2', 'old3'];
const FRESH = ['fresh1', 'fresh2'];

function wait_until(float $t): void
{
    $d = $t - microtime(true);
    if ($d > 0) {
        usleep((int) ($d * 1e6));
    }
}

function stored_list(string $dsn, array $ids): string
{
    $out = [];
    foreach ($ids as $id) {
        $out[] = "$id=" . sp_yn(sp_stored($dsn, $id));
    }
    return implode(' ', $out);
}

$manual = sp_engines('gc-manual');
$auto = sp_engines('gc-auto');
$quiet = sp_engines('gc-off');

// Sessions that will be idle for more than 1 s, for the explicit gc, the automatic one and none.
foreach ([$manual, $auto, $quiet] as $set) {
    foreach ($set as $dsn) {
        foreach (OLD as $id) {
            sp_cycle($dsn, $id, function () use ($id) { $_SESSION['v'] = $id; });
        }
    }
}
wait_until(microtime(true) + 2.2);

// --- session_gc() -----------------------------------------------------------------------------
// The fresh sessions are written just before gc runs, so they are well under 1 s old.
foreach ($manual as $engine => $dsn) {
    $t = microtime(true);
    foreach (FRESH as $id) {
        sp_cycle($dsn, $id, function () use ($id) { $_SESSION['v'] = $id; }, GC1);
    }
    sp_use($dsn, GC1);
    session_id('gcdriver');
    session_start();
    $n = session_gc();
    session_abort();
    if (microtime(true) - $t > 0.9) {
        echo "$engine: TIMING: writing the fresh sessions and gc took ", round(microtime(true) - $t, 2), " s (machine too slow)\n";
    }
    echo "$engine: session_gc() returned ", var_export($n, true), "\n";
    echo "$engine: stored: ", stored_list($dsn, OLD), ' ', stored_list($dsn, FRESH), "\n";
    $r = sp_child_read($dsn, 'fresh2');
    echo "$engine: fresh2 read by another process: ", json_encode($r['data'] ?? null), "\n";
    $r = sp_child_read($dsn, 'old1');
    echo "$engine: old1 read by another process: ", json_encode($r['data'] ?? null), "\n";
    echo "$engine: records left: ", sp_count_stored($dsn), "\n";
    $n = null;
}

// --- automatic gc at session_start (gc_probability=1, gc_divisor=1) --------------------------------
foreach ($auto as $engine => $dsn) {
    echo "$engine: before: ", stored_list($dsn, OLD), "\n";
    // A request that starts a session: gc runs with certainty. Its own (new, fresh) session is kept.
    $r = sp_child_value(
        'session_id("autogc"); $ok = session_start(); $_SESSION["v"] = "autogc"; session_write_close(); return $ok;',
        ['session.save_path' => sp_q($dsn), 'session.gc_probability' => '1', 'session.gc_divisor' => '1'] + GC1
    );
    echo "$engine: started: ", var_export($r, true), "; after: ", stored_list($dsn, OLD), ' ', stored_list($dsn, ['autogc']), "\n";
}
// The same with gc_probability=0 deletes nothing.
foreach ($quiet as $engine => $dsn) {
    sp_child_value(
        'session_id("nogc"); session_start(); $_SESSION["v"] = 1; session_write_close(); return 1;',
        ['session.save_path' => sp_q($dsn), 'session.gc_probability' => '0', 'session.gc_divisor' => '1'] + GC1
    );
    echo "$engine: gc_probability=0: ", stored_list($dsn, OLD), "\n";
}

// --- SQLite: thousands of expired rows, deleted in batches of 500 ---------------------------------
$dsn = sp_engines('gc-bulk')['sqlite'];
$db = sp_dsn_path($dsn);
sp_cycle($dsn, 'bulkkeep', function () { $_SESSION['v'] = 'keep'; });
foreach ([1234, 1000] as $count) {
    $r = sp_sql_script($db, '
        $old = microtime(true) - 3600;
        $db->exec("BEGIN IMMEDIATE");
        $st = $db->prepare("INSERT INTO sessions (id, data, created_at, updated_at, user_id) VALUES (?, ?, ?, ?, NULL)");
        for ($i = 0; $i < ' . $count . '; $i++) {
            $st->bindValue(1, "bulk$i", SQLITE3_TEXT);
            $st->bindValue(2, "v|i:$i;", SQLITE3_BLOB);
            $st->bindValue(3, $old, SQLITE3_FLOAT);
            $st->bindValue(4, $old, SQLITE3_FLOAT);
            $st->execute();
            $st->reset();
        }
        $db->exec("COMMIT");
        return $db->querySingle("SELECT COUNT(*) FROM sessions");
    ');
    echo "sqlite bulk: rows before gc: ", var_export($r, true), "\n";
    sp_use($dsn, ['session.gc_maxlifetime' => '60']);
    session_id('bulkdriver');
    session_start();
    $n = session_gc();
    session_abort();
    echo "sqlite bulk: session_gc() returned ", var_export($n, true), "\n";
    $rows = sp_sql($db, 'SELECT id FROM sessions ORDER BY id');
    echo "sqlite bulk: rows left: ", json_encode(array_column($rows ?? [], 'id')), "\n";
}
$r = sp_child_read($dsn, 'bulkkeep');
echo "sqlite bulk: kept session read by another process: ", json_encode($r['data'] ?? null), "\n";
?>
--EXPECT--
sqlite: session_gc() returned 3
sqlite: stored: old1=no old2=no old3=no fresh1=yes fresh2=yes
sqlite: fresh2 read by another process: {"v":"fresh2"}
sqlite: old1 read by another process: []
sqlite: records left: 2
files: session_gc() returned 3
files: stored: old1=no old2=no old3=no fresh1=yes fresh2=yes
files: fresh2 read by another process: {"v":"fresh2"}
files: old1 read by another process: []
files: records left: 2
sqlite: before: old1=yes old2=yes old3=yes
sqlite: started: true; after: old1=no old2=no old3=no autogc=yes
files: before: old1=yes old2=yes old3=yes
files: started: true; after: old1=no old2=no old3=no autogc=yes
sqlite: gc_probability=0: old1=yes old2=yes old3=yes
files: gc_probability=0: old1=yes old2=yes old3=yes
sqlite bulk: rows before gc: 1235
sqlite bulk: session_gc() returned 1234
sqlite bulk: rows left: ["bulkkeep"]
sqlite bulk: rows before gc: 1001
sqlite bulk: session_gc() returned 1000
sqlite bulk: rows left: ["bulkkeep"]
sqlite bulk: kept session read by another process: {"v":"keep"}
