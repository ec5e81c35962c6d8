--TEST--
Redis engine: phpredis' rediscluster save_path verbatim ("seed[]=…&seed[]=…&timeout=…&read_timeout=…&failover=…&persistent=…[&prefix=…][&auth[]=user&auth[]=pass]"): the same string under session_proxy and under phpredis' rediscluster handler; sessions written by either are read by the other, in phpredis' keys (PHPREDIS_CLUSTER_SESSION:<id> by default) with phpredis' TTL
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$seeds = explode(',', getenv('SP_REDIS_CLUSTER'));
$first = rd_cluster_port();
// A user of our own on every node (ACL users are per node), for the auth[] form.
$all = [];
foreach (explode("\n", trim(rd_cmd(['CLUSTER', 'NODES'], $first))) as $l) {
    $all[] = (int) explode(':', explode('@', explode(' ', $l)[1])[0])[1];
}
$user = 'spcl' . bin2hex(random_bytes(3));
foreach ($all as $p) {
    rd_cmd(['ACL', 'SETUSER', $user, 'on', '>hunter2-cl', '~*', '&*', '+@all'], $p);
}
register_shutdown_function(function () use ($all, $user) {
    foreach ($all as $p) rd_cmd(['ACL', 'DELUSER', $user], $p);
});

$base = 'seed[]=' . implode('&seed[]=', $seeds);
$own = rd_prefix('clsyn');
$paths = [
    'phpredis defaults' => ["$base&timeout=2&read_timeout=2&failover=error&persistent=1", 'PHPREDIS_CLUSTER_SESSION:'],
    'own prefix, failover=distribute' => ["$base&timeout=2&read_timeout=2&failover=distribute&persistent=0&prefix=$own", $own],
    'auth[]=user&auth[]=password' => ["$base&timeout=2&auth[]=$user&auth[]=hunter2-cl", 'PHPREDIS_CLUSTER_SESSION:'],
];
$read = '
    session_id($P["id"]);
    $ok = session_start();
    $seen = $_SESSION;
    $_SESSION["by"][] = $P["who"];
    session_write_close();
    lk_done(["ok" => $ok, "seen" => $seen]);
';
$phpredis = fn ($id, $path) => rd_run_phpredis('phpredis', $read, ['id' => $id, 'who' => 'phpredis'],
    ['session.save_handler' => 'rediscluster', 'session.save_path' => $path]);
$ours = fn ($id, $path) => lk_run('session_proxy', $read, ['id' => $id, 'who' => 'session_proxy'], ['session.save_path' => $path]);
foreach ($paths as $label => [$path, $prefix]) {
    echo "== $label\n";
    $good = 0;
    $keys_ok = 0;
    $masters = [];
    // Six ids, two on each of three masters: random ids all land on one master in 1 of 243 tries,
    // which made "more than one master" below fail by chance. Where they land is checked below,
    // from where the keys are found.
    $ids = [];
    $per = [];
    while (count($ids) < 6) {
        $id = 'clsyn' . bin2hex(random_bytes(10));
        $m = rd_key_owner($prefix . $id);
        if (($per[$m] ?? 0) < 2) {
            $per[$m] = ($per[$m] ?? 0) + 1;
            $ids[] = $id;
        }
    }
    for ($i = 0; $i < 6; $i++) {
        $id = $ids[$i];
        // Alternate who starts: phpredis → session_proxy → phpredis, session_proxy → phpredis → session_proxy.
        $order = $i % 2 ? [$ours, $phpredis, $ours] : [$phpredis, $ours, $phpredis];
        $names = $i % 2 ? ['session_proxy', 'phpredis', 'session_proxy'] : ['phpredis', 'session_proxy', 'phpredis'];
        $r = array_map(fn ($f) => $f($id, $path), $order);
        $ok = ($r[1]['seen'] ?? null) === ['by' => [$names[0]]]
            && ($r[2]['seen'] ?? null) === ['by' => [$names[0], $names[1]]]
            && !$r[0]['errors'] && !$r[1]['errors'] && !$r[2]['errors'];
        $good += (int) $ok;
        if (!$ok) {
            echo json_encode($r), "\n";
        }
        // phpredis' key and TTL (session.gc_maxlifetime, 1440 s).
        $key = $prefix . $id;
        $m = rd_key_owner($key);
        $masters[$m] = true;
        $ttl = rd_cmd(['TTL', $key], $m);
        $val = rd_cmd(['GET', $key], $m);
        $keys_ok += (int) ($ttl > 1400 && $ttl <= 1440 && is_string($val) && str_contains($val, 'by|'));
    }
    echo "6 sessions, each written and read by both: $good good\n";
    echo "keys $prefix<id> with phpredis' TTL: ", lk_check($keys_ok === 6, (string) $keys_ok), "\n";
    echo "sessions on more than one master: ", lk_check(count($masters) > 1, json_encode(array_keys($masters))), "\n";
}

echo "== a wrong password: warning, never the password\n";
$r = lk_run('session_proxy', $read, ['id' => 'clsynbad', 'who' => 'x'],
    ['session.save_path' => "$base&auth[]=$user&auth[]=wrong-hunter2"]);
echo 'start: ', json_encode($r['ok'] ?? null), "\n";
// Ours only: PHP's own follow-up line ("Failed to initialize storage module: … (path: …)") prints
// session.save_path as PHP has it.
$w = implode("\n", array_filter(array_map(fn ($e) => $e[1], $r['errors'] ?? []), fn ($m) => str_contains($m, 'session_proxy:')));
echo 'names the cluster: ', var_export(str_contains($w, 'redis-cluster://' . implode(',', $seeds)), true), "\n";
echo 'says authentication: ', var_export(stripos($w, 'auth') !== false, true), "\n";
echo 'password shown: ', var_export(str_contains($w, 'hunter2'), true), "\n";
?>
--EXPECTF--
== phpredis defaults
6 sessions, each written and read by both: 6 good
keys PHPREDIS_CLUSTER_SESSION:<id> with phpredis' TTL: yes
sessions on more than one master: yes
== own prefix, failover=distribute
6 sessions, each written and read by both: 6 good
keys %s<id> with phpredis' TTL: yes
sessions on more than one master: yes
== auth[]=user&auth[]=password
6 sessions, each written and read by both: 6 good
keys PHPREDIS_CLUSTER_SESSION:<id> with phpredis' TTL: yes
sessions on more than one master: yes
== a wrong password: warning, never the password
start: false
names the cluster: true
says authentication: true
password shown: false
