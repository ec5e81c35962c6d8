--TEST--
Redis standalone and Cluster: a bound session's _USER key (per-user index) lives as long as the session is written or touched with session_proxy.locking = Off or optimistic (a Cluster's unlocked read does not refresh it): found about to expire before each request (shortened behind the engine's back), the session is still listed after it
--FILE--
<?php
require __DIR__ . '/inc/users.inc';
require_once __DIR__ . '/inc/redis.inc';

$engines = [
    'standalone' => ['redis://127.0.0.1:' . rd_port() . '?prefix=', fn($k) => rd_port()],
    'cluster' => ['redis-cluster://' . getenv('SP_REDIS_CLUSTER') . '?prefix=', 'rd_key_owner'],
];
foreach ($engines as $what => [$base, $owner]) {
    $prefix = rd_prefix('userkey');
    $dsn = $base . $prefix;
    $id = 'rulk' . bin2hex(random_bytes(8));
    $user = "alice-$what-" . bin2hex(random_bytes(3));
    $key = ($what === 'cluster' ? '{' . $prefix . $id . '}' : $prefix . $id) . '_USER';
    $ini = ['session.gc_maxlifetime' => 60, 'session.lazy_write' => 1];
    sp_cycle($dsn, $id, function () use ($user) { $_SESSION['n'] = 1; SessionProxy\set_user($user); }, $ini);
    foreach (['off' => 'write', 'optimistic' => 'write', 'off ' => 'touch', 'optimistic ' => 'touch'] as $mode => $step) {
        $short = rd_cmd(['PEXPIRE', $key, '400'], $owner($key));
        $r = sp_cycle($dsn, $id, $step === 'write' ? function () { $_SESSION['n']++; } : null, $ini + ['session_proxy.locking' => trim($mode)]);
        usleep(700000);
        sp_use($dsn, $ini);
        $listed = count(SessionProxy\user_sessions($user) ?: []);
        echo "$what, locking=", trim($mode), ", a $step: _USER shortened: $short; started: ", sp_yn($r['started']), "; listed after: $listed\n";
    }
    sp_use($dsn);
    SessionProxy\destroy_user_sessions($user);
}
?>
--EXPECT--
standalone, locking=off, a write: _USER shortened: 1; started: yes; listed after: 1
standalone, locking=optimistic, a write: _USER shortened: 1; started: yes; listed after: 1
standalone, locking=off, a touch: _USER shortened: 1; started: yes; listed after: 1
standalone, locking=optimistic, a touch: _USER shortened: 1; started: yes; listed after: 1
cluster, locking=off, a write: _USER shortened: 1; started: yes; listed after: 1
cluster, locking=optimistic, a write: _USER shortened: 1; started: yes; listed after: 1
cluster, locking=off, a touch: _USER shortened: 1; started: yes; listed after: 1
cluster, locking=optimistic, a touch: _USER shortened: 1; started: yes; listed after: 1
