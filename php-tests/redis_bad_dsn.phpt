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
    if (str_contains($ours, 'hunter2')) {
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
== wrong credentials
start=false
  session_start(): session_proxy: cannot open 127.0.0.1:PORT: cannot connect: Password authentication failed - AuthenticationFailed
  password shown: false
start=false
  session_start(): session_proxy: cannot open 127.0.0.1:PORT: cannot connect: Password authentication failed - AuthenticationFailed
  password shown: false
== phpinfo
Engines => sqlite, files, redis (standalone, TLS, unix socket, phpredis save_path syntax, cluster, sentinel), memcached
session_proxy section mentions hunter2: false
