<?php
// Where a MySQL/MariaDB session cycle's time goes: µs per statement (median of the calls), each timed
// alone over one PDO connection with server-side prepared statements (the binary protocol, as the
// mysql crate's). The table and the procedures of both generations (sp1: before the one-statement
// writes, sp2: after) must exist: run bench/cycle.php once with each build's .so on that table first.
// php bench/mysql_parts.php <pdo-dsn> <user> <password> <table> [calls]
[$_, $dsn, $user, $pw, $t, $n] = $argv + [5 => 2000];
$pdo = new PDO($dsn, $user, $pw, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_EMULATE_PREPARES => false]);
$pdo->exec("CREATE PROCEDURE IF NOT EXISTS {$t}_empty() BEGIN END");
$pdo->exec("CREATE PROCEDURE IF NOT EXISTS {$t}_one() BEGIN SELECT 1; END");
// Variants, to see what a part of a procedure costs: the read under the lock without the LEFT JOIN
// of a derived table; the write under the lock without its answer.
$pdo->exec("CREATE PROCEDURE IF NOT EXISTS {$t}_lock_plain(IN k VARCHAR(64), IN sid VARBINARY(256), IN life DOUBLE) READS SQL DATA
    BEGIN IF GET_LOCK(k, 0) = 1 THEN SELECT TRUE, data, version FROM $t WHERE id = sid AND updated >= UNIX_TIMESTAMP(SYSDATE(6)) - life;
    ELSE SELECT FALSE, NULL, NULL; END IF; END");
$pdo->exec("CREATE PROCEDURE IF NOT EXISTS {$t}_write_quiet(IN k VARCHAR(64), IN sid VARBINARY(256), IN d LONGBLOB, IN life DOUBLE) MODIFIES SQL DATA
    BEGIN DECLARE t0 DOUBLE DEFAULT UNIX_TIMESTAMP(SYSDATE(6));
    UPDATE $t SET data = d, updated = t0, expiry = t0 + life, version = LAST_INSERT_ID(version + 1) WHERE id = sid;
    DO RELEASE_LOCK(k); END");
$sid = 'parts' . str_repeat('0', 27);
$k = 'parts_lock';
$d = str_repeat('x', 200);
$pdo->prepare("INSERT IGNORE INTO $t (id, data, created, updated, expiry, version) VALUES (?, ?, 0, UNIX_TIMESTAMP(), UNIX_TIMESTAMP() + 3600, 1)")->execute([$sid, $d]);

function drain(PDOStatement $s): void
{
    do {
        if ($s->columnCount() > 0) {
            $s->fetchAll();
        }
    } while ($s->nextRowset());
}

/** µs per call of $sql with $args (after $before, untimed, each time). */
function per_call(PDO $pdo, string $sql, array $args, int $n, ?string $before = null): float
{
    $s = $pdo->prepare($sql);
    $b = $before === null ? null : $pdo->prepare($before);
    $times = [];
    for ($i = 0; $i < $n + 50; $i++) {
        if ($b !== null) {
            $b->execute([]);
            drain($b);
        }
        $t0 = hrtime(true);
        $s->execute($args);
        drain($s);
        $dt = hrtime(true) - $t0;
        if ($i >= 50) {
            $times[] = $dt;
        }
    }
    sort($times);
    return $times[intdiv(count($times), 2)] / 1000;
}

$lock = "DO GET_LOCK('$k', 0)";
$rows = [
    ['round trip: SELECT 1', 'SELECT 1', [], null],
    ['CALL of an empty procedure', "CALL {$t}_empty()", [], null],
    ['CALL of a procedure answering SELECT 1', "CALL {$t}_one()", [], null],
    ['plain read (the Load statement)', "SELECT data, version FROM $t WHERE id = ? AND updated >= UNIX_TIMESTAMP(SYSDATE(6)) - ?", [$sid, 3600.0], null],
    ['sp1 lock + read (CALL, after a release)', "CALL {$t}_sp1_lock(?, ?, ?)", [$k, $sid, 3600.0], "DO RELEASE_LOCK('$k')"],
    ['sp2 lock + read (CALL, after a release)', "CALL {$t}_sp2_lock(?, ?, ?)", [$k, $sid, 3600.0], "DO RELEASE_LOCK('$k')"],
    ['variant: lock + read without the derived table', "CALL {$t}_lock_plain(?, ?, ?)", [$k, $sid, 3600.0], "DO RELEASE_LOCK('$k')"],
    ['sp1 write under the lock + release (op 5)', "CALL {$t}_sp1_write(?, 1, 5, ?, ?, 0, ?)", [$k, $sid, $d, 3600.0], $lock],
    ['sp2 write under the lock + release (op 5)', "CALL {$t}_sp2_write(?, 1, 5, ?, ?, 0, ?)", [$k, $sid, $d, 3600.0], $lock],
    ['variant: UPDATE + release, no answer', "CALL {$t}_write_quiet(?, ?, ?, ?)", [$k, $sid, $d, 3600.0], $lock],
    ['plain UPDATE … LAST_INSERT_ID (op 5, no release)', "UPDATE $t SET data = ?, updated = UNIX_TIMESTAMP(NOW(6)), expiry = UNIX_TIMESTAMP(NOW(6)) + ?, version = LAST_INSERT_ID(version + 1) WHERE id = ?", [$d, 3600.0, $sid], null],
    ['sp1 write any, no lock (op 0)', "CALL {$t}_sp1_write('', 0, 0, ?, ?, 0, ?)", [$sid, $d, 3600.0], null],
    ['sp2 write any, no lock (op 0, its CALL)', "CALL {$t}_sp2_write('', 0, 0, ?, ?, 0, ?)", [$sid, $d, 3600.0], null],
    ['plain upsert (op 0 without a lock, the new build)', "INSERT INTO $t (id, data, created, updated, expiry, version) VALUES (?, ?, UNIX_TIMESTAMP(NOW(6)), UNIX_TIMESTAMP(NOW(6)), UNIX_TIMESTAMP(NOW(6)) + ?, 7) ON DUPLICATE KEY UPDATE data = VALUES(data), updated = VALUES(updated), expiry = VALUES(expiry), version = LAST_INSERT_ID(version + 1)", [$sid, $d, 3600.0], null],
    ['transaction statements: START TRANSACTION', 'START TRANSACTION', [], 'COMMIT'],
    ['SELECT … FOR UPDATE (in a transaction)', "SELECT data FROM $t WHERE id = ? FOR UPDATE", [$sid], 'START TRANSACTION'],
];
foreach ($rows as [$what, $sql, $args, $before]) {
    printf("| %s | %.0f |\n", $what, per_call($pdo, $sql, $args, (int) $n, $before));
}
$pdo->exec('COMMIT');
$pdo->exec("DO RELEASE_LOCK('$k')");
