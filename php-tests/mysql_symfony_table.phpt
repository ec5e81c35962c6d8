--TEST--
MySQL/MariaDB engine, schema=symfony: Symfony's own PdoSessionHandler (Debian's 5.4, pdo_mysql) and session_proxy take turns on the same sessions in Symfony's table, both ways (nobody is logged out by switching handlers): data, flashes, expiry (sess_lifetime), regenerate and invalidate
--FILE--
<?php
require __DIR__ . '/inc/mysql.inc';
require_once __DIR__ . '/inc/frameworks.inc';

$t = my_table('sf');
$port = my_env('SP_MYSQL_PORT');
$P0 = ['pdo' => 'mysql:host=127.0.0.1;port=' . $port . ';dbname=' . my_env('SP_MYSQL_DB'), 'user' => my_env('SP_MYSQL_USER'),
    'pw' => my_env('SP_MYSQL_PASSWORD'), 'table' => $t];
$ours = ['session.save_path' => my_dsn($t, 'schema=symfony')];

// One request through Symfony's Session: with PdoSessionHandler ($P["pdo_handler"]) or with PHP's
// configured save handler (session_proxy).
const SF_STEP = <<<'PHP'
use Symfony\Component\HttpFoundation\Session\Session;
use Symfony\Component\HttpFoundation\Session\Storage\NativeSessionStorage;
use Symfony\Component\HttpFoundation\Session\Storage\Handler\PdoSessionHandler;
$handler = null;
if ($P['pdo_handler']) {
    dl('pdo.so');
    dl('mysqlnd.so');
    dl('pdo_mysql.so');
    $pdo = new PDO($P['pdo'], $P['user'], $P['pw'], [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $handler = new PdoSessionHandler($pdo, ['db_table' => $P['table']]);
}
$storage = new NativeSessionStorage(['use_cookies' => 0, 'cache_limiter' => '', 'gc_maxlifetime' => 1440], $handler);
$session = new Session($storage);
if ($P['id'] !== null) {
    $session->setId($P['id']);
}
$session->start();
$r = ['id' => $session->getId(), 'user' => $session->get('user'), 'n' => $session->get('n')];
switch ($P['step']) {
    case 'create':
        $session->set('user', 'alice');
        $session->set('n', 1);
        $session->getFlashBag()->add('notice', 'welcome');
        break;
    case 'next':
        $r['flash'] = $session->getFlashBag()->get('notice');
        $session->set('n', $session->get('n', 0) + 1);
        break;
    case 'migrate':
        $session->migrate(true);
        $session->set('n', $session->get('n', 0) + 1);
        $r['new'] = $session->getId();
        break;
    case 'invalidate':
        $session->invalidate();
        break;
}
$session->save();
lk_done($r);
PHP;

$step = function (string $who, bool $pdo, string $step, ?string $id) use ($P0, $ours) {
    $r = fw_run($who, FW_SYMFONY_AUTOLOAD, SF_STEP, $P0 + ['pdo_handler' => $pdo, 'step' => $step, 'id' => $id], $pdo ? [] : $ours);
    echo "$who: user ", json_encode($r['user'] ?? null), ', n ', json_encode($r['n'] ?? null),
        isset($r['flash']) ? ', flash ' . json_encode($r['flash']) : '', ', errors: ', fw_errors($r), "\n";
    return $r;
};

// The table as PdoSessionHandler::createTable() makes it for mysql (5.4's statement, copied).
my_sql("CREATE TABLE $t (sess_id VARBINARY(128) NOT NULL PRIMARY KEY, sess_data BLOB NOT NULL, sess_lifetime INTEGER UNSIGNED NOT NULL, sess_time INTEGER UNSIGNED NOT NULL) COLLATE utf8mb4_bin, ENGINE = InnoDB");

echo "== Symfony first, then session_proxy\n";
$r = $step('symfony creates', true, 'create', null);
$id = $r['id'];
$step('session_proxy reads', false, 'next', $id);
$step('symfony reads it back', true, 'next', $id);
$step('session_proxy again', false, 'next', $id);
[$life, $data] = my_sql("SELECT sess_lifetime - sess_time, IF(LOCATE('alice', sess_data) > 0, 't', 'f') FROM $t WHERE sess_id = '$id'")[0];
echo "row written by session_proxy: sess_lifetime - sess_time = $life, data holds the user: $data\n";

echo "== session_proxy first, then Symfony\n";
$r = $step('session_proxy creates', false, 'create', null);
$id2 = $r['id'];
$step('symfony reads', true, 'next', $id2);
$r = $step('session_proxy migrates', false, 'migrate', $id2);
echo 'old id gone: ', my_value("SELECT COUNT(*) FROM $t WHERE sess_id = '$id2'"), " rows\n";
$step('symfony reads the new id', true, 'next', $r['new']);
$step('session_proxy invalidates', false, 'invalidate', $r['new']);
echo 'invalidated: ', my_value("SELECT COUNT(*) FROM $t WHERE sess_id = '" . $r['new'] . "'"), " rows\n";

echo "== expiry is Symfony's (sess_lifetime)\n";
my_sql("UPDATE $t SET sess_lifetime = UNIX_TIMESTAMP() - 10 WHERE sess_id = '$id'");
$r = $step('session_proxy after expiry', false, 'next', $id);
// Symfony runs with use_strict_mode=1: the expired id is not taken, a new one is made.
echo 'new id (strict mode): ', var_export($r['id'] !== $id, true), "\n";
$step('symfony sees what session_proxy wrote', true, 'next', $r['id']);
echo 'gc by session_proxy removes the expired row: ';
$g = lk_run('gc', '$ok = session_start(); $n = session_gc(); session_abort(); lk_done(["n" => $n]);', [], $ours);
echo $g['n'] ?? 'none', ' removed, left: ', my_value("SELECT COUNT(*) FROM $t WHERE sess_id = '$id'"), "\n";
?>
--EXPECT--
== Symfony first, then session_proxy
symfony creates: user null, n null, errors: none
session_proxy reads: user "alice", n 1, flash ["welcome"], errors: none
symfony reads it back: user "alice", n 2, flash [], errors: none
session_proxy again: user "alice", n 3, flash [], errors: none
row written by session_proxy: sess_lifetime - sess_time = 1440, data holds the user: t
== session_proxy first, then Symfony
session_proxy creates: user null, n null, errors: none
symfony reads: user "alice", n 1, flash ["welcome"], errors: none
session_proxy migrates: user "alice", n 2, errors: none
old id gone: 0 rows
symfony reads the new id: user "alice", n 3, flash [], errors: none
session_proxy invalidates: user "alice", n 4, errors: none
invalidated: 0 rows
== expiry is Symfony's (sess_lifetime)
session_proxy after expiry: user null, n null, flash [], errors: none
new id (strict mode): true
symfony sees what session_proxy wrote: user null, n 1, flash [], errors: none
gc by session_proxy removes the expired row: 1 removed, left: 0
