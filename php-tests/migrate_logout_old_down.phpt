--TEST--
session_proxy.migrate_from: a logout made while the old store is down, or stops answering mid-request, is not undone when it answers again: the destroyed session is marked gone in the new store, is not read back from the old one, strict mode refuses its id, and its old copy is removed then
--FILE--
<?php
require __DIR__ . '/inc/outage.inc';
require __DIR__ . '/inc/redis.inc';

$d = sp_tmpdir('miggone');
$port = ot_free_port();
// The old store: a Redis of this test's own, paused (SIGSTOP) to be down with its data kept.
$srv = sp_server_start(['redis-server', '--bind', '127.0.0.1', '--port', (string) $port, '--save', '', '--appendonly', 'no', '--dir', $d], $port);
$pid = proc_get_status($srv['proc'])['pid'];
register_shutdown_function(fn () => resume_server($pid));
function resume_server(int $pid): void { exec("kill -CONT $pid 2>/dev/null"); }
$old = "redis://127.0.0.1:$port/0?prefix=sp-phpt-gone:&timeout=0.5&read_timeout=0.5";
$new = "sqlite://$d/new.sqlite";
$switch = ['session.save_path' => $new, 'session_proxy.migrate_from' => $old, 'session.use_strict_mode' => '1'];

function warned(array $r, int $port): string
{
    $ours = array_filter($r['warnings'], fn ($w) => str_contains($w, 'migrate_from failed') && str_contains($w, "127.0.0.1:$port"));
    return count($ours) . ' naming the old store, ' . (count($r['warnings']) - count($ours)) . ' other';
}

// Users logged in under the old handler (written to the old store alone).
foreach (['alice' => 'mggone1', 'bob' => 'mggone2'] as $user => $id) {
    sp_request($id, '$_SESSION["user"] = "' . $user . '"; session_write_close();', ['session.save_path' => $old]);
}

// 1. alice's logout: the session is read through from the old store, which stops answering before
// the destroy reaches it.
$r = sp_request('mggone1', '$r["destroyed"] = (exec("kill -STOP " . $argv[2]) !== false) && session_destroy();', $switch, [$pid]);
echo 'alice read through: ', json_encode($r['seen']), ', destroyed: ', var_export($r['destroyed'], true), ', warnings: ', warned($r, $port), "\n";
resume_server($pid);
$r = sp_request('mggone1', '$r["seen"] = $_SESSION; session_write_close();', $switch);
echo 'alice after the old store is back, strict mode: id kept ', var_export($r['id'] === 'mggone1', true), ', seen ', json_encode($r['seen']), "\n";
$r = sp_request('mggone1', 'session_write_close();', array_merge($switch, ['session.use_strict_mode' => '0']));
echo 'alice without strict mode: seen ', json_encode($r['seen']), ', warnings: ', warned($r, $port), "\n";
echo 'alice in the old store: ', json_encode(rd_cmd(['GET', 'sp-phpt-gone:mggone1'], $port)), "\n";

// 2. bob's logout while the old store is down from the start (his session can't be read then).
exec("kill -STOP $pid");
$r = sp_request('mggone2', '$r["destroyed"] = session_destroy();', array_merge($switch, ['session.use_strict_mode' => '0']));
echo 'bob with the old store down: seen ', json_encode($r['seen']), ', destroyed: ', var_export($r['destroyed'], true), ', warnings: ', warned($r, $port), "\n";
resume_server($pid);
$r = sp_request('mggone2', 'session_write_close();', array_merge($switch, ['session.use_strict_mode' => '0']));
echo 'bob after the old store is back: seen ', json_encode($r['seen']), "\n";
echo 'bob in the old store: ', json_encode(rd_cmd(['GET', 'sp-phpt-gone:mggone2'], $port)), "\n";

?>
--EXPECT--
alice read through: {"user":"alice"}, destroyed: true, warnings: 1 naming the old store, 0 other
alice after the old store is back, strict mode: id kept false, seen []
alice without strict mode: seen [], warnings: 0 naming the old store, 0 other
alice in the old store: null
bob with the old store down: seen [], destroyed: true, warnings: 1 naming the old store, 0 other
bob after the old store is back: seen []
bob in the old store: null
