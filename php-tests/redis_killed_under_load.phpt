--TEST--
Redis engine, server killed mid-load: 8 worker processes, two by two on a shared session (contended locks), run locked session cycles in a loop while redis-server is killed (SIGKILL), kept down 1.5 s and restarted on the same port; failures are bounded and name host:port, no crash or hang, every worker recovers within 0.2 s without restarting PHP, and pooled connections left stale by the restart cost no failed request
--FILE--
<?php
require __DIR__ . '/inc/outage.inc';

$port = ot_free_port();
$dir = sp_tmpdir('rkill');
$cmd = ['redis-server', '--bind', '127.0.0.1', '--port', (string) $port, '--save', '', '--appendonly', 'no', '--dir', $dir];
$srv = sp_server_start($cmd, $port);
// persistent=1 (the default, said here because the test is about it): one pooled connection per worker.
$dsn = "redis://127.0.0.1:$port?prefix=sp-phpt-rkill:&timeout=0.5&read_timeout=0.5&persistent=1";
// Recovery bound 0.2 s: the slowest worker's recovery over 20 runs with a CPU burner and the memcached
// outage test alongside was 0.066 s (median of the runs' worst ~0.02 s); 0.2 s is 3x that worst.
ot_run($dsn, $port, 0.5,
    function () use (&$srv, $cmd, $port) { $srv = sp_server_start($cmd, $port); },
    function () use (&$srv) { sp_server_kill($srv); }, recover: 0.2);
?>
--EXPECT--
workers: 8 busy (half of them from the middle of the outage on), 2 idle during the outage, locking on
no worker crashed or hung: yes
no request failed before the kill: yes
every busy worker had failed requests during the outage: yes
each failed request ended within the timeout + 1 s: yes
each failed request warned naming host:port: yes
recovered within 0.2 s: yes
every request started 1 s after the restart or later succeeded: yes
after the restart each session counts every update of its two workers from 0: yes
the two workers of a session met at its lock: yes
idle workers (pooled connection stale after the restart) failed no request: yes
