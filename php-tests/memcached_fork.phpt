--TEST--
Memcached engine: a pooled connection is never used on both sides of a fork (php-fpm forks workers); parent and forked children run sessions at once without crossed replies
--EXTENSIONS--
pcntl
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

$dsn = mc_dsn([mc_port(1), mc_port(2), mc_port(3)]);
// The parent opens the pool's connections first.
$r = sp_cycle($dsn, 'forkwarm', function () { $_SESSION['n'] = 1; });
echo 'parent warm-up: ', var_export($r['started'], true), "\n";
$pids = [];
for ($c = 0; $c < 4; $c++) {
    $pid = pcntl_fork();
    if ($pid === 0) {
        $bad = 0;
        for ($i = 0; $i < 100; $i++) {
            $r = sp_cycle($dsn, "fork$c", function () { $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; });
            $bad += (int) (!$r['started'] || ($r['data']['n'] ?? 0) !== $i + 1);
        }
        // The parent's buffered output was copied into this child: drop it.
        while (ob_get_level()) {
            ob_end_clean();
        }
        exit($bad === 0 ? 0 : 1);
    }
    $pids[] = $pid;
}
$bad = 0;
for ($i = 0; $i < 100; $i++) {
    $r = sp_cycle($dsn, 'forkparent', function () { $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1; });
    $bad += (int) (!$r['started'] || ($r['data']['n'] ?? 0) !== $i + 1);
}
$ok = 0;
foreach ($pids as $p) {
    pcntl_waitpid($p, $st);
    $ok += (int) (pcntl_wifexited($st) && pcntl_wexitstatus($st) === 0);
}
echo "children with 100 exact cycles: $ok of 4\n";
echo 'parent cycles wrong: ', $bad, "\n";
?>
--EXPECT--
parent warm-up: true
children with 100 exact cycles: 4 of 4
parent cycles wrong: 0
