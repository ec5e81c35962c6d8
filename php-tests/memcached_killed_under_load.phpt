--TEST--
Memcached engine, server killed mid-load: 8 worker processes, two by two on a shared session (contended locks), run locked session cycles in a loop while memcached is killed (SIGKILL), kept down 1.5 s and restarted on the same port; failures are bounded and name host:port, no crash or hang, every worker recovers within 0.3 s without restarting PHP and no request started 50 ms after the restart fails (a server that refused connections is probed by the next request, not skipped for retry=), and pooled connections left stale by the restart cost no failed request
--FILE--
<?php
require __DIR__ . '/inc/outage.inc';
require __DIR__ . '/inc/memcached.inc';

$port = ot_free_port();
$cmd = mc_cmd($port);
$srv = sp_server_start($cmd, $port);
// No retry= here: at its default (250 ms) a worker whose connection was refused must not skip the
// restarted server. 50 ms after the restart is the bound issue 18 set. Measured over 20 runs beside
// other test runs (SP_OUTAGE_REPORT): no request started after the restart failed (the last failure
// started 5-9 ms before it) and every worker succeeded within 79 ms (10 ms in most runs); with the
// fixed 250 ms skip the last failure started 0.154 s after the restart.
$dsn = "memcached://127.0.0.1:$port?prefix=sp-phpt-mkill.&timeout=500";
// Recovery bound 0.3 s: with a refused server probed by the next request, the slowest worker took
// 0.079 s over 20 runs (see above); under the old 250 ms skip it took 0.281 s with a CPU burner. 0.3 s
// is ~4x the worst now, and a skip interval back at the old 2 s fails it (the 50 ms check above
// fails any skip at all).
ot_run($dsn, $port, 0.5,
    function () use (&$srv, $cmd, $port) { $srv = sp_server_start($cmd, $port); },
    function () use (&$srv) { sp_server_kill($srv); }, recover: 0.3, settle: 0.05);
?>
--EXPECT--
workers: 8 busy (half of them from the middle of the outage on), 2 idle during the outage, locking on
no worker crashed or hung: yes
no request failed before the kill: yes
every busy worker had failed requests during the outage: yes
each failed request ended within the timeout + 1 s: yes
each failed request warned naming host:port: yes
recovered within 0.3 s: yes
every request started 50 ms after the restart or later succeeded: yes
after the restart each session counts every update of its two workers from 0: yes
the two workers of a session met at its lock: yes
idle workers (pooled connection stale after the restart) failed no request: yes
