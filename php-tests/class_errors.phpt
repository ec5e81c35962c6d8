--TEST--
SessionProxy\Handler: a bad DSN or option throws SessionProxy\Exception with the native handler's message; storage failures are a warning and false, never fatal
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';
$dir = sp_tmpdir('clserr');

// Same message as the native handler's warning for the same save_path.
foreach (['ftp://host/x', 'relative/dir', "sqlite://$dir/x.db?busy_timeout=abc", 'redis://user:hunter2@h:6379?bogus=1'] as $dsn) {
    try {
        new SessionProxy\Handler($dsn);
        echo "no exception for $dsn\n";
    } catch (SessionProxy\Exception $e) {
        // ini_set, not -d: the INI parser cuts "-d k=...?a=b" at the second "=".
        $native = sp_child('ini_set("session.save_path", $argv[1]); session_start();', [], [$dsn]);
        preg_match('/Warning: session_start\(\): (session_proxy: .*) in \S+ on line \d+/', $native, $m);
        echo get_class($e), ' is InvalidArgumentException: ', var_export($e instanceof InvalidArgumentException, true),
            ', same text as native: ', var_export(($m[1] ?? null) === $e->getMessage(), true),
            ', password hidden: ', var_export(!str_contains($e->getMessage(), 'hunter2'), true), "\n";
    }
}

// Options: unknown, invalid value, wrong type.
foreach ([['nope' => 1], ['lock_wait_timeout' => -1], ['lock_timeout_action' => 'wait'], ['locking' => []], ['lock_expire' => 86401]] as $opts) {
    try {
        new SessionProxy\Handler("sqlite://$dir/ok.sqlite", $opts);
        echo "no exception\n";
    } catch (SessionProxy\Exception $e) {
        echo $e->getMessage(), "\n";
    }
}
// Valid options of every type are accepted.
new SessionProxy\Handler("sqlite://$dir/ok.sqlite", ['locking' => false, 'lock_wait_timeout' => 250, 'lock_expire' => '5', 'lock_timeout_action' => 'readonly']);
echo "valid options accepted\n";

// Storage failures: the constructor does not connect; the first use warns and returns false.
ini_set('display_errors', '1');
$h = new SessionProxy\Handler("sqlite://$dir/missing-dir/s.sqlite");
var_dump($h->read('abc'));
var_dump($h->write('abc', 'x'));
var_dump($h->read('../etc/passwd'));
// Through session_start(): false with warnings, the script goes on.
echo sp_child('session_set_save_handler(new SessionProxy\Handler($argv[1]), true); session_id("abc");
    var_dump(session_start()); echo "still running\n";', [], ["sqlite://$dir/missing-dir/s.sqlite"]);
// A corrupt database file: warning naming it, data untouched.
file_put_contents("$dir/corrupt.sqlite", str_repeat('garbage!', 1024));
chmod("$dir/corrupt.sqlite", 0600);
$before = md5_file("$dir/corrupt.sqlite");
$h = new SessionProxy\Handler("sqlite://$dir/corrupt.sqlite");
var_dump($h->read('abc'));
echo 'corrupt file unchanged: ', var_export(md5_file("$dir/corrupt.sqlite") === $before, true), "\n";
?>
--EXPECTF--
SessionProxy\Exception is InvalidArgumentException: true, same text as native: true, password hidden: true
SessionProxy\Exception is InvalidArgumentException: true, same text as native: true, password hidden: true
SessionProxy\Exception is InvalidArgumentException: true, same text as native: true, password hidden: true
SessionProxy\Exception is InvalidArgumentException: true, same text as native: true, password hidden: true
session_proxy: unknown option "nope" (known: locking, lock_wait_timeout, lock_expire, lock_timeout_action, merge_conflict, user_key, track_client, migrate_from, encryption_key, encryption_keys_old, hash_ids, hash_key, compression, compression_threshold)
session_proxy: invalid value "-1" for option "lock_wait_timeout": expected a whole number from 0 to 3600000
session_proxy: invalid value "wait" for option "lock_timeout_action": expected fail or readonly
session_proxy: option "locking" must be a string, an int or a bool
session_proxy: invalid value "86401" for option "lock_expire": expected a whole number from 0 to 86400
valid options accepted

Warning: SessionProxy\Handler::read(): session_proxy: cannot open sqlite://%s/missing-dir/s.sqlite: directory %s/missing-dir does not exist in %s on line %d
bool(false)

Warning: SessionProxy\Handler::write(): session_proxy: cannot open sqlite://%s/missing-dir/s.sqlite: directory %s/missing-dir does not exist in %s on line %d
bool(false)

Warning: SessionProxy\Handler::read(): session_proxy: cannot open sqlite://%s/missing-dir/s.sqlite: directory %s/missing-dir does not exist in %s on line %d
bool(false)

Warning: SessionProxy\Handler::open(): session_proxy: cannot open sqlite://%s/missing-dir/s.sqlite: directory %s/missing-dir does not exist in %s on line %d

Warning: session_start(): Failed to initialize storage module: user (path: %s) in %s on line %d
bool(false)
still running

Warning: SessionProxy\Handler::read(): session_proxy: cannot open sqlite://%s/corrupt.sqlite: file is not a database in %s on line %d
bool(false)
corrupt file unchanged: true
