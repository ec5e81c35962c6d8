<?php
// Symfony's PdoSessionHandler (Debian's php-symfony-http-foundation 5.4) as the save handler, then
// bench/cycle.php's loop: php bench/sql_symfony.php <iterations> <payload-bytes> <pdo-dsn> <user>
// <password> <lock_mode: transactional|advisory|none> <table>
require '/usr/share/php/Symfony/Component/HttpFoundation/autoload.php';
use Symfony\Component\HttpFoundation\Session\Storage\Handler\PdoSessionHandler;

[$_, $iterations, $bytes, $dsn, $user, $pw, $mode, $table] = $argv;
$modes = ['none' => PdoSessionHandler::LOCK_NONE, 'advisory' => PdoSessionHandler::LOCK_ADVISORY,
    'transactional' => PdoSessionHandler::LOCK_TRANSACTIONAL];
// Its best configuration: one PDO connection for the whole run (given a DSN it connects per request,
// and closes at session close), as session_proxy keeps one per worker.
$pdo = new PDO($dsn, $user, $pw, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$h = new PdoSessionHandler($pdo, ['lock_mode' => $modes[$mode], 'db_table' => $table]);
try {
    $h->createTable();
} catch (PDOException $e) {
    // Already there.
}
session_set_save_handler($h, true);
$argv = [$argv[0], $iterations, $bytes];
require __DIR__ . '/cycle.php';
