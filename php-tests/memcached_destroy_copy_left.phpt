--TEST--
Memcached engine replicas: a destroy while one copy's server is down (paused, its items kept) deletes the other copies and warns naming the server whose copy was left, as does destroy_user_sessions(); during a read-through switch from such a store the session is marked gone in the new store, so it is not read back once that server answers again
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

[$pa, $pb] = mc_free_ports(2);
$srv = [mc_server($pa), mc_server($pb)];
$pid = proc_get_status($srv[1]['proc'])['pid'];
register_shutdown_function(fn () => exec("kill -CONT $pid 2>/dev/null"));
$dsn = mc_dsn([$pa, $pb], 'replicas=1&timeout=300&retry=5000', $prefix);
$d = sp_tmpdir('mcleft');

function copies(array $ports, string $key): string
{
    return implode(' ', array_map(fn ($p) => mc_get($p, $key) === null ? '-' : 'kept', $ports));
}

function left_warning(array $r, int $port): string
{
    $left = array_filter($r['warnings'], fn ($w) => str_contains($w, "copy on memcached 127.0.0.1:$port could not be deleted"));
    return count($left) . ' naming 127.0.0.1:B, ' . (count($r['warnings']) - count($left)) . ' other';
}

// 1. The engine alone.
sp_request('mcleft1', '$_SESSION["user"] = "erin"; session_write_close();', ['session.save_path' => $dsn]);
echo 'mcleft1 copies (A B): ', copies([$pa, $pb], $prefix . 'mcleft1'), "\n";
exec("kill -STOP $pid");
$r = sp_request('mcleft1', '$r["destroyed"] = session_destroy();', ['session.save_path' => $dsn]);
echo 'destroyed with B paused: ', var_export($r['destroyed'], true), ', warnings: ', left_warning($r, $pb), "\n";
exec("kill -CONT $pid");
echo 'mcleft1 copies after (A B): A ', mc_get($pa, $prefix . 'mcleft1') === null ? 'deleted' : 'kept', "\n";

// "Log out everywhere" of a user whose session has a copy on the paused server.
$bound = ['session.save_path' => $dsn, 'session_proxy.user_key' => 'user'];
sp_request('mcleft3', '$_SESSION["user"] = "gina"; session_write_close();', $bound);
exec("kill -STOP $pid");
$r = sp_request('mcother', '$r["ended"] = SessionProxy\destroy_user_sessions("gina"); session_write_close();', $bound);
echo 'destroy_user_sessions with B paused: ', json_encode($r['ended']), ', warnings: ', left_warning($r, $pb), "\n";
exec("kill -CONT $pid");

// 2. The same store as the old one of a switch to SQLite.
$switch = ['session.save_path' => "sqlite://$d/new.sqlite", 'session_proxy.migrate_from' => $dsn];
sp_request('mcleft2', '$_SESSION["user"] = "frank"; session_write_close();', ['session.save_path' => $dsn]);
exec("kill -STOP $pid");
$r = sp_request('mcleft2', '$r["destroyed"] = session_destroy();', $switch);
echo 'switch: read through ', json_encode($r['seen']), ', destroyed with B paused: ', var_export($r['destroyed'], true), ', warnings: ', left_warning($r, $pb), "\n";
$h = new SessionProxy\Handler("sqlite://$d/new.sqlite");
$h->open('', '');
echo 'switch: marked gone in the new store: ', var_export($h->read('gone-' . substr(hash('sha256', 'mcleft2'), 0, 40)) !== '', true), "\n";
$h->close();
exec("kill -CONT $pid");
$r = sp_request('mcleft2', 'session_write_close();', $switch);
echo 'switch: after B answers again: ', json_encode($r['seen']), ', warnings: ', count($r['warnings']), "\n";
// (B applies the delete it was sent before the pause once it runs again, so whether its copy is left
// depends on whether the request had marked B down before its destroy; the mark covers both.)
echo 'mcleft2 on A after: ', mc_get($pa, $prefix . 'mcleft2') === null ? 'deleted' : 'kept', "\n";
?>
--EXPECT--
mcleft1 copies (A B): kept kept
destroyed with B paused: true, warnings: 1 naming 127.0.0.1:B, 0 other
mcleft1 copies after (A B): A deleted
destroy_user_sessions with B paused: 1, warnings: 1 naming 127.0.0.1:B, 0 other
switch: read through {"user":"frank"}, destroyed with B paused: true, warnings: 1 naming 127.0.0.1:B, 0 other
switch: marked gone in the new store: true
switch: after B answers again: [], warnings: 0
mcleft2 on A after: deleted
