--TEST--
session-proxy stats: another process reads the counters of a running PHP process group from /dev/shm (JSON equal to the process's own SessionProxy\stats(), including the migration counters; the table), the file is 0600 and removed when the process ends, and a pid without counters is an error
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

$bin = dirname(sp_so()) . '/session-proxy';
$d = sp_tmpdir('clistats');
$sig = sp_tmpdir('clistats-sig');
mkdir("$d/old");
// Logged in under the old store (files), then three requests with read-through migration to SQLite.
lk_run('seed', '
    session_id("clistats1");
    session_start();
    $_SESSION["u"] = 1;
    session_write_close();
    lk_done([]);
', [], ['session.save_path' => "files://$d/old"]);
$h = lk_spawn('
    for ($i = 0; $i < 3; $i++) {
        session_id("clistats1");
        session_start();
        $_SESSION["n"] = $i;
        session_write_close();
    }
    lk_signal($P["sig"] . "/done", SessionProxy\stats());
    lk_await($P["sig"] . "/exit");
    lk_done([]);
', ['sig' => $sig], ['session.save_path' => "sqlite://$d/new.sqlite", 'session_proxy.migrate_from' => "files://$d/old"]);
$own = lk_wait_signal("$sig/done");
$pid = $h['pid'];
$file = '/dev/shm/session_proxy-' . trim((string) shell_exec('id -u')) . "-$pid.stats";
clearstatcache();
printf("file: %s, mode %o\n", var_export(is_file($file), true), fileperms($file) & 0777);

exec(escapeshellarg($bin) . " stats --json --pid $pid 2>&1", $out, $rc);
$j = json_decode(implode("\n", $out), true);
echo "json: rc $rc, pid ", var_export(($j['pid'] ?? null) === $pid, true), "\n";
$same = true;
foreach (['sqlite', 'files', 'redis', 'memcached'] as $e) {
    foreach ($own[$e] as $k => $v) {
        if (!is_array($v) && ($j['engines'][$e][$k] ?? null) !== $v) {
            $same = false;
            echo "differs: $e $k: ", json_encode($j['engines'][$e][$k] ?? null), " vs $v\n";
        }
    }
}
echo 'equal to the process\'s own stats(): ', var_export($same, true), "\n";
$s = $j['engines']['sqlite'];
echo "sqlite: requests {$s['requests']}, writes {$s['writes']}, old_store_reads {$s['old_store_reads']}, migrated {$s['migrated']}\n";

exec(escapeshellarg($bin) . " stats --pid $pid 2>&1", $table, $rc);
echo "table: rc $rc, ", preg_match('/^migrated\s+1(\s+0)+$/m', implode("\n", $table)) ? 'migrated row 1, then 0 for every other engine' : implode("\n", $table), "\n";

lk_signal_parent("$sig/exit");
lk_result('child', sp_wait($h));
clearstatcache();
echo 'file removed at exit: ', var_export(!file_exists($file), true), "\n";
exec(escapeshellarg($bin) . " stats --pid $pid 2>&1", $gone, $rc);
echo "after exit: rc $rc, ", str_contains(implode("\n", $gone), "cannot read the counters of pid $pid") ? 'cannot read' : implode("\n", $gone), "\n";
?>
--EXPECT--
file: true, mode 600
json: rc 0, pid true
equal to the process's own stats(): true
sqlite: requests 3, writes 3, old_store_reads 1, migrated 1
table: rc 0, migrated row 1, then 0 for every other engine
file removed at exit: true
after exit: rc 1, cannot read
