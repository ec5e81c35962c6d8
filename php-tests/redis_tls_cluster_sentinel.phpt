--TEST--
Redis engine over TLS for Cluster and Sentinel: rediss-cluster://…?ca=… and phpredis' "seed[]=tls://…&stream[cafile]=…" (3 TLS-only masters), rediss-sentinel://:<master password>@…/<master>?ca=…&sentinel_password=… (TLS-only Sentinel and master, each with its own password), and with sentinel_user=… (an ACL user of the Sentinel allowed nothing but AUTH, PING and SENTINEL get-master-addr-by-name): sessions and locking across processes; an untrusted certificate, a missing or wrong Sentinel password, a wrong master password each give a warning naming the server, never a password
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$ca = getenv('SP_REDIS_TLS_CA');
$seeds = getenv('SP_REDIS_TLS_CLUSTER');
$sent = getenv('SP_REDIS_TLS_SENTINEL');
$master = getenv('SP_REDIS_TLS_SENTINEL_MASTER');
$spw = getenv('SP_REDIS_TLS_SENTINEL_PASSWORD');
$mpw = getenv('SP_REDIS_TLS_MASTER_PASSWORD');
[$au, $apw] = explode(':', (string) getenv('SP_REDIS_TLS_SENTINEL_ACL')) + [1 => ''];
if (!$ca || !$seeds || !$sent || !$master || !$spw || !$mpw || !$au || !$apw) {
    throw new RuntimeException('the TLS cluster/Sentinel variables are not set: run the suite with make test');
}
$pre = rd_prefix('tlscs');
$dsns = [
    'rediss-cluster://' => "rediss-cluster://$seeds?ca=$ca&prefix=$pre",
    'phpredis cluster form, tls:// seeds' => 'seed[]=tls://' . str_replace(',', '&seed[]=tls://', $seeds) . "&stream[cafile]=$ca&prefix=$pre",
    'rediss-sentinel://' => "rediss-sentinel://:$mpw@$sent/$master?db=1&ca=$ca&sentinel_password=$spw&prefix=$pre",
    'rediss-sentinel://, an ACL user of the Sentinel' => "rediss-sentinel://:$mpw@$sent/$master?db=1&ca=$ca&sentinel_user=$au&sentinel_password=$apw&prefix=$pre",
];
$sig = sp_tmpdir('tlscs-sig');
foreach ($dsns as $label => $dsn) {
    echo "== $label\n";
    $id = 'tlscs' . bin2hex(random_bytes(8));
    $tag = md5($label);
    mkdir("$sig/$tag");
    $a = lk_spawn('
        session_id($P["id"]);
        $ok = session_start();
        $_SESSION["n"] = 1;
        lk_signal($P["sig"] . "/a-locked");
        lk_await($P["sig"] . "/release");
        $_SESSION["n"]++;
        session_write_close();
        lk_done(["ok" => $ok]);
    ', ['id' => $id, 'sig' => "$sig/$tag"], ['session.save_path' => $dsn]);
    lk_wait_signal("$sig/$tag/a-locked");
    $b = lk_spawn('
        session_id($P["id"]);
        $t0 = microtime(true);
        $ok = session_start();
        $waited = microtime(true) - $t0;
        $seen = $_SESSION;
        $_SESSION["n"]++;
        session_write_close();
        lk_done(["ok" => $ok, "waited" => $waited, "seen" => $seen]);
    ', ['id' => $id], ['session.save_path' => $dsn]);
    usleep(500000);
    lk_signal_parent("$sig/$tag/release");
    $ra = lk_result('A', sp_wait($a));
    $rb = lk_result('B', sp_wait($b));
    echo 'A and B started: ', json_encode([$ra['ok'] ?? null, $rb['ok'] ?? null]), "\n";
    echo 'B waited for A (> 0.4 s): ', lk_check(($rb['waited'] ?? 0) > 0.4, lk_s($rb['waited'] ?? 0)), ' and saw ', json_encode($rb['seen'] ?? null), "\n";
    $rc = lk_run('C', '
        session_id($P["id"]);
        session_start(["read_and_close" => true]);
        lk_done(["seen" => $_SESSION]);
    ', ['id' => $id], ['session.save_path' => $dsn]);
    echo 'then: ', json_encode($rc['seen'] ?? null), ' errors: ', json_encode(array_merge($ra['errors'], $rb['errors'], $rc['errors'])), "\n";
}

echo "== refusals\n";
$warnings = [];
set_error_handler(function ($no, $msg) use (&$warnings) { $warnings[] = $msg; return true; });
$cases = [
    'cluster, untrusted certificate' => ["rediss-cluster://$seeds?prefix=$pre", ["rediss-cluster://$seeds", 'certificate']],
    'sentinel, untrusted certificate' => ["rediss-sentinel://:$mpw@$sent/$master?sentinel_password=$spw", ["Sentinel $sent", 'certificate']],
    'sentinel, no Sentinel password' => ["rediss-sentinel://:$mpw@$sent/$master?ca=$ca", ["Sentinel $sent", 'NOAUTH']],
    'sentinel, wrong Sentinel password' => ["rediss-sentinel://:$mpw@$sent/$master?ca=$ca&sentinel_password=wrong-secret", ["Sentinel $sent", 'auth']],
    'sentinel, ACL user with a wrong password' => ["rediss-sentinel://:$mpw@$sent/$master?ca=$ca&sentinel_user=$au&sentinel_password=wrong-secret", ["Sentinel $sent", 'authentication failed']],
    'sentinel, the ACL password without its user' => ["rediss-sentinel://:$mpw@$sent/$master?ca=$ca&sentinel_password=$apw", ["Sentinel $sent", 'authentication failed']],
    'sentinel, the master password given to the Sentinel' => ["rediss-sentinel://$sent/$master?ca=$ca&sentinel_password=$mpw", ["Sentinel $sent", 'auth']],
    'sentinel, wrong master password' => ["rediss-sentinel://:wrong-secret@$sent/$master?ca=$ca&sentinel_password=$spw", ["master \"$master\"", 'auth']],
    'plaintext client, TLS Sentinel' => ["redis-sentinel://$sent/$master?sentinel_password=$spw&timeout=0.5&read_timeout=0.5", ["Sentinel $sent"]],
];
foreach ($cases as $label => [$dsn, $want]) {
    $warnings = [];
    $r = sp_cycle($dsn, 'tlscsrefused');
    $w = $warnings[0] ?? '';
    $found = array_filter($want, fn ($s) => stripos($w, $s) === false);
    echo "$label: start=", var_export($r['started'], true), ', warning names ', lk_check(!$found, $w),
        ', a password shown: ', var_export(str_contains($w, $spw) || str_contains($w, $mpw) || str_contains($w, $apw) || str_contains($w, 'wrong-secret'), true), "\n";
}
?>
--EXPECT--
== rediss-cluster://
A and B started: [true,true]
B waited for A (> 0.4 s): yes and saw {"n":2}
then: {"n":3} errors: []
== phpredis cluster form, tls:// seeds
A and B started: [true,true]
B waited for A (> 0.4 s): yes and saw {"n":2}
then: {"n":3} errors: []
== rediss-sentinel://
A and B started: [true,true]
B waited for A (> 0.4 s): yes and saw {"n":2}
then: {"n":3} errors: []
== rediss-sentinel://, an ACL user of the Sentinel
A and B started: [true,true]
B waited for A (> 0.4 s): yes and saw {"n":2}
then: {"n":3} errors: []
== refusals
cluster, untrusted certificate: start=false, warning names yes, a password shown: false
sentinel, untrusted certificate: start=false, warning names yes, a password shown: false
sentinel, no Sentinel password: start=false, warning names yes, a password shown: false
sentinel, wrong Sentinel password: start=false, warning names yes, a password shown: false
sentinel, ACL user with a wrong password: start=false, warning names yes, a password shown: false
sentinel, the ACL password without its user: start=false, warning names yes, a password shown: false
sentinel, the master password given to the Sentinel: start=false, warning names yes, a password shown: false
sentinel, wrong master password: start=false, warning names yes, a password shown: false
plaintext client, TLS Sentinel: start=false, warning names yes, a password shown: false
