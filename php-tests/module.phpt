--TEST--
Module: listed by php -m, registered as a save handler, depends on session, settable at run time, php --ri shows version, engines, the counters and directives
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

/** Runs the child PHP binary with only our extension loaded and $args appended. */
function php_with_ext(string $args): string
{
    return sp_run(escapeshellarg(sp_php_binary()) . ' -n -d ' . escapeshellarg('extension=' . sp_so()) . " $args");
}

// The version PHP reports must be the crate's version.
preg_match('/^version\s*=\s*"([^"]+)"/m', file_get_contents(__DIR__ . '/../Cargo.toml'), $m);
$version = $m[1] ?? '(no version in Cargo.toml)';
echo 'phpversion matches Cargo.toml: ', var_export(phpversion('session_proxy') === $version, true), "\n";

// php -m
$mods = php_with_ext('-m');
echo 'php -m lists session_proxy: ', var_export((bool) preg_match('/^session_proxy$/m', $mods), true), "\n";
echo 'php -m lists session: ', var_export((bool) preg_match('/^session$/m', $mods), true), "\n";
echo 'php -m warns: ', var_export(stripos($mods, 'warning') !== false, true), "\n";

// php -i and phpinfo() in this process: our handler among "Registered save handlers".
$handlers = function (string $info): array {
    if (!preg_match('/^Registered save handlers => (.*)$/m', $info, $m)) {
        return [];
    }
    return preg_split('/\s+/', trim($m[1]));
};
echo 'php -i handlers: ', implode(' ', $handlers(php_with_ext('-i'))), "\n";
ob_start();
phpinfo(INFO_MODULES);
$info = ob_get_clean();
echo 'phpinfo() handlers: ', implode(' ', $handlers($info)), "\n";
echo 'phpinfo() has a session_proxy section: ', var_export(str_contains($info, "session_proxy support => enabled"), true), "\n";

// Dependencies
$ext = new ReflectionExtension('session_proxy');
var_dump($ext->getDependencies());
echo 'reflection version: ', var_export($ext->getVersion() === $version, true), "\n";
$ini = $ext->getINIEntries();
ksort($ini);
echo 'INI entries: ';
var_dump($ini);

// Switching to our handler at run time, and it is the one actually used.
$old = ini_set('session.save_handler', 'session_proxy');
echo 'ini_set returned previous value: ', var_export($old, true), "\n";
echo 'session.save_handler now: ', ini_get('session.save_handler'), "\n";
echo 'session_module_name(): ', session_module_name(), "\n";
$dsn = sp_engines('module')['sqlite'];
$file = substr($dsn, strlen('sqlite://'));
sp_use($dsn);
session_id('moduletest1');
var_dump(session_start());
$_SESSION['x'] = 42;
session_write_close();
echo 'database created by our handler: ', var_export(is_file($file), true), "\n";

// php --ri session_proxy
$ri = php_with_ext('--ri session_proxy');
$ri = preg_replace(['/^SQLite library => [0-9.]+$/m', '/^Version => ' . preg_quote($version, '/') . '$/m'],
    ['SQLite library => (sqlite version)', 'Version => (Cargo.toml version)'], $ri);
// The directive rows, in a stable order (PHP does not promise one).
[$head, $dirs] = explode("Directive => Local Value => Master Value\n", $ri, 2) + [1 => ''];
$rows = array_filter(explode("\n", $dirs), 'strlen');
sort($rows);
echo "--ri:\n", $head, "Directive => Local Value => Master Value\n", implode("\n", $rows), "\n";
// A boolean directive shows On/Off, however it was written (Off reaches PHP as ""); locking's third
// value, optimistic, shows as written.
foreach (['Off', '0', 'On', 'yes', 'optimistic'] as $v) {
    $ri = php_with_ext('-d session_proxy.locking=' . $v . ' --ri session_proxy');
    echo "locking=$v: ", preg_match('/^session_proxy\.locking => .*$/m', $ri, $m) ? $m[0] : 'no row', "\n";
}
?>
--EXPECT--
phpversion matches Cargo.toml: true
php -m lists session_proxy: true
php -m lists session: true
php -m warns: false
php -i handlers: files user session_proxy
phpinfo() handlers: files user session_proxy
phpinfo() has a session_proxy section: true
array(2) {
  ["session"]=>
  string(8) "Required"
  ["spl"]=>
  string(8) "Required"
}
reflection version: true
INI entries: array(14) {
  ["session_proxy.compression"]=>
  string(3) "off"
  ["session_proxy.compression_threshold"]=>
  string(4) "1024"
  ["session_proxy.encryption_key"]=>
  string(0) ""
  ["session_proxy.encryption_keys_old"]=>
  string(0) ""
  ["session_proxy.hash_ids"]=>
  string(1) "0"
  ["session_proxy.hash_key"]=>
  string(0) ""
  ["session_proxy.lock_expire"]=>
  string(1) "0"
  ["session_proxy.lock_timeout_action"]=>
  string(4) "fail"
  ["session_proxy.lock_wait_timeout"]=>
  string(5) "30000"
  ["session_proxy.locking"]=>
  string(1) "1"
  ["session_proxy.merge_conflict"]=>
  string(4) "last"
  ["session_proxy.migrate_from"]=>
  string(0) ""
  ["session_proxy.track_client"]=>
  string(1) "0"
  ["session_proxy.user_key"]=>
  string(0) ""
}
ini_set returned previous value: 'files'
session.save_handler now: session_proxy
session_module_name(): session_proxy
bool(true)
database created by our handler: true
--ri:

session_proxy

session_proxy support => enabled
Version => (Cargo.toml version)
Save handler => session_proxy
Class => SessionProxy\Handler
Engines => sqlite, files, redis (standalone, unix socket, cluster, sentinel; TLS for standalone, cluster and sentinel; phpredis' redis and rediscluster save_path syntax), memcached, pgsql (PostgreSQL: advisory locks, several hosts with failover, TLS), mysql (MySQL/MariaDB: GET_LOCK or lock rows, TCP or unix socket, TLS)
SQLite library => (sqlite version)
SQLite checkpoints => at 2000 WAL frames, on a thread per database and process (sp-checkpoint, at most 8); running in this process: 0
DSN forms => accepted forms: "sqlite:///abs/path/file.sqlite[?busy_timeout=MS&synchronous=normal|full]", "files:///abs/dir[?depth=N&mode=0600]", "redis://[[user]:password@]host[:port][/db][?prefix=…&timeout=S&read_timeout=S&persistent=0|1&busy_poll=µS]", "rediss://…[?ca=/ca.pem&cert=/c.pem&key=/k.pem&verify=full|ca|none]" (TLS), "unix:///path/redis.sock[?db=N&prefix=…]", phpredis' "tcp://host:port[?auth=…&database=N&prefix=…&timeout=S&weight=N]" (or a comma list of them), "redis-cluster://host:port[,host:port…][?prefix=…]", "rediss-cluster://…[?ca=…&cert=…&key=…&verify=…]" (TLS), "redis-sentinel://host:port[,host:port…]/<master-name>[?db=N&prefix=…&sentinel_user=…&sentinel_password=…]", "rediss-sentinel://…/<master-name>[?ca=…&cert=…&key=…&verify=…]" (TLS), phpredis' cluster "seed[]=host:port&seed[]=host:port[&auth=…&prefix=…&timeout=S&read_timeout=S&persistent=0|1&failover=…]", "memcached://host[:port][,host[:port]|,/unix.sock...][?prefix=P&replicas=N&timeout=MS&retry=MS&weights=W,...&lock_placement=compat|session&busy_poll=µS]", "pgsql://[user[:password]@]host[:port][,host[:port]…]/dbname[?table=…&sslmode=disable|prefer|require|verify-full&sslrootcert=…&connect_timeout=S&lock=advisory|row&schema=native|symfony&create=auto|never]", "mysql://[user[:password]@]host[:port]/dbname[?…same options as pgsql…]", "mysql:///dbname?socket=/run/mysqld/mysqld.sock[&…]", an absolute directory (SQLite file session_proxy.sqlite inside it), or empty (SQLite file session_proxy.sqlite in session_proxy-<uid>, a private directory of the system temp dir)
Pooled connections (this process) => 0
Pooled DSNs kept => the 8 most recently used per process
Counters => shared by this process and every process forked after startup (all php-fpm workers of a pool)
Encryption at rest => off
Hashed ids => off
Compression => off

Counter => sqlite => files => redis => memcached => pgsql => mysql
requests => 0 => 0 => 0 => 0 => 0 => 0
reads => 0 => 0 => 0 => 0 => 0 => 0
writes => 0 => 0 => 0 => 0 => 0 => 0
touches => 0 => 0 => 0 => 0 => 0 => 0
destroys => 0 => 0 => 0 => 0 => 0 => 0
lock_acquisitions => 0 => 0 => 0 => 0 => 0 => 0
lock_timeouts => 0 => 0 => 0 => 0 => 0 => 0
round_trips => 0 => 0 => 0 => 0 => 0 => 0
read_bytes => 0 => 0 => 0 => 0 => 0 => 0
written_bytes => 0 => 0 => 0 => 0 => 0 => 0
merges => 0 => 0 => 0 => 0 => 0 => 0
merge_conflicts => 0 => 0 => 0 => 0 => 0 => 0
old_store_reads => 0 => 0 => 0 => 0 => 0 => 0
migrated => 0 => 0 => 0 => 0 => 0 => 0
lock_wait_ms le 1/5/10/50/100/500/1000/5000/+Inf => 0/0/0/0/0/0/0/0/0 => 0/0/0/0/0/0/0/0/0 => 0/0/0/0/0/0/0/0/0 => 0/0/0/0/0/0/0/0/0 => 0/0/0/0/0/0/0/0/0 => 0/0/0/0/0/0/0/0/0
lock_wait_ms sum => 0.000 => 0.000 => 0.000 => 0.000 => 0.000 => 0.000
writes_refused lock_lost => 0 => 0 => 0 => 0 => 0 => 0
writes_refused conflict => 0 => 0 => 0 => 0 => 0 => 0
writes_refused too_large => 0 => 0 => 0 => 0 => 0 => 0
writes_refused storage_error => 0 => 0 => 0 => 0 => 0 => 0
storage_errors => 0 => 0 => 0 => 0 => 0 => 0

Directive => Local Value => Master Value
session_proxy.compression => off => off
session_proxy.compression_threshold => 1024 => 1024
session_proxy.encryption_key => no value => no value
session_proxy.encryption_keys_old => no value => no value
session_proxy.hash_ids => Off => Off
session_proxy.hash_key => no value => no value
session_proxy.lock_expire => 0 => 0
session_proxy.lock_timeout_action => fail => fail
session_proxy.lock_wait_timeout => 30000 => 30000
session_proxy.locking => On => On
session_proxy.merge_conflict => last => last
session_proxy.migrate_from => no value => no value
session_proxy.track_client => Off => Off
session_proxy.user_key => no value => no value
locking=Off: session_proxy.locking => Off => Off
locking=0: session_proxy.locking => Off => Off
locking=On: session_proxy.locking => On => On
locking=yes: session_proxy.locking => On => On
locking=optimistic: session_proxy.locking => optimistic => optimistic
