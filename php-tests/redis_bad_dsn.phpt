--TEST--
Redis engine: malformed DSN, unknown option, bad value → a warning naming the option, session_start() false; wrong credentials name host:port and the cause; no password in our warnings or in phpinfo
--FILE--
<?php
require __DIR__ . '/inc/redis.inc';

$p = rd_port();
$cases = [
    'no host' => 'redis://',
    'bad port' => 'redis://127.0.0.1:70000',
    'bad db' => 'redis://127.0.0.1/x',
    'unknown option' => 'redis://:hunter2@127.0.0.1?auth=x',
    'bad timeout' => 'redis://127.0.0.1?timeout=soon',
    'bad persistent' => 'redis://127.0.0.1?persistent=2',
    'duplicate option' => 'redis://127.0.0.1?prefix=a&prefix=b',
    'phpredis unknown option' => 'tcp://127.0.0.1:6379?auth=hunter2&colour=blue',
    'phpredis bad weight' => 'tcp://127.0.0.1:6379?weight=0,tcp://127.0.0.1:6380',
    'phpredis bad database' => 'tcp://127.0.0.1:6379?database=-1',
    'userinfo in tcp://' => 'tcp://u:hunter2@127.0.0.1:6379',
    'mixed list' => 'tcp://127.0.0.1:6379,redis://127.0.0.1:6380',
    'list item without scheme' => 'tcp://127.0.0.1:6379,127.0.0.1:6380',
    'unix relative' => 'unix://redis.sock',
    'unix ..' => 'unix:///tmp/../redis.sock',
    'TLS cluster unknown option' => 'rediss-cluster://:hunter2@127.0.0.1:7000?colour=blue',
    'TLS cluster bad verify' => 'rediss-cluster://127.0.0.1:7000?verify=sometimes',
    'cluster with a CA but no TLS' => 'redis-cluster://127.0.0.1:7000?ca=/etc/ca.pem',
    'TLS sentinel without master name' => 'rediss-sentinel://127.0.0.1:26379',
    'sentinel_user without password' => 'redis-sentinel://127.0.0.1:26379/m?sentinel_user=admin',
    'sentinel bad option, password set' => 'rediss-sentinel://:hunter2@127.0.0.1:26379/m?sentinel_password=hunter3&colour=blue',
    'sentinel_password twice' => 'redis-sentinel://127.0.0.1:26379/m?sentinel_password=hunter2&sentinel_password=hunter3',
    'phpredis cluster unknown option' => 'seed[]=127.0.0.1:7000&auth=hunter2&colour=blue',
    'phpredis cluster bad failover' => 'seed[]=127.0.0.1:7000&failover=sometimes&auth[]=alice&auth[]=hunter2',
    'phpredis cluster no seed' => 'seed=127.0.0.1:7000&auth=hunter2',
    'phpredis cluster seed with userinfo' => 'seed[]=alice:hunter2@127.0.0.1:7000',
    'phpredis cluster TLS option, plain seeds' => 'seed[]=127.0.0.1:7000&stream[cafile]=/etc/ca.pem',
];
$warnings = [];
set_error_handler(function (int $no, string $msg) use (&$warnings) { $warnings[] = $msg; return true; });
foreach ($cases as $label => $path) {
    $warnings = [];
    sp_use($path);
    $started = session_start();
    $ours = $warnings[0] ?? '';
    preg_match('/session_proxy: invalid session.save_path "(.*?)": (.*?); accepted forms: /', $ours, $m);
    echo "$label: start=", var_export($started, true), "\n  value:  ", $m[1] ?? "(no DSN warning: $ours)", "\n  reason: ", $m[2] ?? '', "\n";
    if (str_contains($ours, 'hunter2') || str_contains($ours, 'hunter3')) {
        echo "  PASSWORD SHOWN\n";
    }
}

echo "== wrong credentials\n";
rd_cmd(['ACL', 'SETUSER', 'sp_bad', 'on', '>right-pass', '~*', '&*', '+@all']);
foreach (["redis://sp_bad:hunter2@127.0.0.1:$p", "tcp://127.0.0.1:$p?user=sp_bad&auth=hunter2"] as $path) {
    $warnings = [];
    sp_use($path);
    session_id('credsid');
    $started = session_start();
    echo 'start=', var_export($started, true), "\n";
    echo '  ', str_replace((string) $p, 'PORT', $warnings[0] ?? ''), "\n";
    echo '  password shown: ', var_export(str_contains($warnings[0] ?? '', 'hunter2'), true), "\n";
}

echo "== phpinfo\n";
ini_set('session.save_path', "redis://sp_bad:hunter2@127.0.0.1:$p");
ob_start();
phpinfo(INFO_MODULES);
$info = ob_get_clean();
preg_match('/^Engines => .*$/m', $info, $m);
echo $m[0], "\n";
echo 'session_proxy section mentions hunter2: ', var_export(str_contains(substr($info, strpos($info, 'session_proxy support')), 'hunter2'), true), "\n";
?>
--EXPECT--
no host: start=false
  value:  redis://
  reason: no host given
bad port: start=false
  value:  redis://127.0.0.1:70000
  reason: port "70000" must be an integer from 1 to 65535
bad db: start=false
  value:  redis://127.0.0.1/x
  reason: the database number "x" in the path must be an integer from 0 to 65535
unknown option: start=false
  value:  redis://:***@127.0.0.1?auth=***
  reason: unknown option "auth" for redis:// (known: prefix, timeout, read_timeout, persistent, busy_poll)
bad timeout: start=false
  value:  redis://127.0.0.1?timeout=soon
  reason: option timeout="soon" must be seconds from 0.001 to 3600 (e.g. 0.5)
bad persistent: start=false
  value:  redis://127.0.0.1?persistent=2
  reason: option persistent="2" must be 0 or 1
duplicate option: start=false
  value:  redis://127.0.0.1?prefix=a&prefix=b
  reason: option "prefix" is given twice
phpredis unknown option: start=false
  value:  tcp://127.0.0.1:6379?auth=***&colour=blue
  reason: unknown option "colour" for tcp:// (known: auth, user, database, db, prefix, timeout, read_timeout, persistent, busy_poll, weight, persistent_id, retry_interval)
phpredis bad weight: start=false
  value:  tcp://127.0.0.1:6379?weight=0,tcp://127.0.0.1:6380
  reason: option weight="0" must be an integer from 1 to 1000
phpredis bad database: start=false
  value:  tcp://127.0.0.1:6379?database=-1
  reason: option database="-1" must be an integer from 0 to 65535
userinfo in tcp://: start=false
  value:  tcp://u:***@127.0.0.1:6379
  reason: tcp://***@127.0.0.1:6379 must be host:port (give the password as ?auth=…)
mixed list: start=false
  value:  tcp://127.0.0.1:6379,redis://127.0.0.1:6380
  reason: redis:// cannot be mixed into a tcp:// / unix:// server list
list item without scheme: start=false
  value:  tcp://127.0.0.1:6379,127.0.0.1:6380
  reason: "127.0.0.1:6380" in the server list is not a URL
unix relative: start=false
  value:  unix://redis.sock
  reason: unix socket path "redis.sock" is not absolute
unix ..: start=false
  value:  unix:///tmp/../redis.sock
  reason: unix socket path "/tmp/../redis.sock" contains ".."
TLS cluster unknown option: start=false
  value:  rediss-cluster://:***@127.0.0.1:7000?colour=blue
  reason: unknown option "colour" for rediss-cluster:// (known: prefix, timeout, read_timeout, persistent, busy_poll, ca, cert, key, verify)
TLS cluster bad verify: start=false
  value:  rediss-cluster://127.0.0.1:7000?verify=sometimes
  reason: option verify="sometimes" must be full, ca or none
cluster with a CA but no TLS: start=false
  value:  redis-cluster://127.0.0.1:7000?ca=/etc/ca.pem
  reason: unknown option "ca" for redis-cluster:// (known: prefix, timeout, read_timeout, persistent, busy_poll)
TLS sentinel without master name: start=false
  value:  rediss-sentinel://127.0.0.1:26379
  reason: rediss-sentinel:// needs the master name: rediss-sentinel://host:port/<master-name>
sentinel_user without password: start=false
  value:  redis-sentinel://127.0.0.1:26379/m?sentinel_user=admin
  reason: option sentinel_user needs sentinel_password (the Sentinels' password for that user)
sentinel bad option, password set: start=false
  value:  rediss-sentinel://:***@127.0.0.1:26379/m?sentinel_password=***&colour=blue
  reason: unknown option "colour" for rediss-sentinel:// (known: db, sentinel_user, sentinel_password, prefix, timeout, read_timeout, persistent, busy_poll, ca, cert, key, verify)
sentinel_password twice: start=false
  value:  redis-sentinel://127.0.0.1:26379/m?sentinel_password=***&sentinel_password=***
  reason: option "sentinel_password" is given twice
phpredis cluster unknown option: start=false
  value:  seed[]=127.0.0.1:7000&auth=***&colour=blue
  reason: unknown option "colour" in phpredis' cluster save_path (known: seed[], timeout, read_timeout, persistent, prefix, auth, failover, stream[cafile], stream[local_cert], stream[local_pk], stream[verify_peer], stream[verify_peer_name])
phpredis cluster bad failover: start=false
  value:  seed[]=127.0.0.1:7000&failover=sometimes&auth[]=***&auth[]=***
  reason: option failover="sometimes" must be none, error, distribute or distribute_slaves
phpredis cluster no seed: start=false
  value:  seed=127.0.0.1:7000&auth=***
  reason: option "seed" must be a list: seed[]=host:port&seed[]=host:port
phpredis cluster seed with userinfo: start=false
  value:  seed[]=***@127.0.0.1:7000
  reason: seed "***@127.0.0.1:7000" must be host:port
phpredis cluster TLS option, plain seeds: start=false
  value:  seed[]=127.0.0.1:7000&stream[cafile]=/etc/ca.pem
  reason: option stream[cafile] is for TLS: write the seeds as seed[]=tls://host:port
== wrong credentials
start=false
  session_start(): session_proxy: cannot open 127.0.0.1:PORT: cannot connect: Password authentication failed - AuthenticationFailed
  password shown: false
start=false
  session_start(): session_proxy: cannot open 127.0.0.1:PORT: cannot connect: Password authentication failed - AuthenticationFailed
  password shown: false
== phpinfo
Engines => sqlite, files, redis (standalone, unix socket, cluster, sentinel; TLS for standalone, cluster and sentinel; phpredis' redis and rediscluster save_path syntax), memcached, pgsql (PostgreSQL: advisory locks, several hosts with failover, TLS), mysql (MySQL/MariaDB: GET_LOCK or lock rows, TCP or unix socket, TLS)
session_proxy section mentions hunter2: false
