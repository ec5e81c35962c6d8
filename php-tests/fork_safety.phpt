--TEST--
Connections are never shared across fork: a forked child discards the pooled connections it inherited and opens its own; parent and child then both work on the same database
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

/** Idle pooled stores of this process, all engines (phpinfo's "Pooled connections" row). */
function pooled(): string {
    ob_start();
    phpinfo(INFO_MODULES);
    preg_match('/Pooled connections \(this process\) => (\d+)/', ob_get_clean(), $m);
    return $m[1] ?? '?';
}

$dir = sp_tmpdir('fork-out');
foreach (sp_engines('fork') as $engine => $dsn) {
    sp_cycle($dsn, 'forkid', fn() => $_SESSION['n'] = 0);
    $before = pooled();
    $pid = pcntl_fork();
    if ($pid === 0) {
        // Child: the inherited idle connection must not be reused.
        $report = ['inherited' => pooled()];
        for ($i = 0; $i < 20; $i++) {
            sp_cycle($dsn, 'forkid', fn() => $_SESSION['n']++);
        }
        $report['own'] = pooled();
        file_put_contents("$dir/child-$engine.json", json_encode($report));
        while (ob_get_level()) {
            ob_end_clean(); // the parent's buffered output is the parent's to print
        }
        exit(0);
    }
    for ($i = 0; $i < 20; $i++) {
        sp_cycle($dsn, 'forkid', fn() => $_SESSION['n']++);
    }
    pcntl_waitpid($pid, $status);
    $child = json_decode((string) @file_get_contents("$dir/child-$engine.json"), true);
    $final = sp_cycle($dsn, 'forkid')['data']['n'] ?? null;
    echo "$engine: parent pooled before fork=$before, child saw inherited=", $child['inherited'] ?? '?',
        " then its own=", $child['own'] ?? '?', ", child exit=", pcntl_wifexited($status) ? pcntl_wexitstatus($status) : 'signal ' . pcntl_wtermsig($status), ", n=$final\n";
}
?>
--EXPECT--
sqlite: parent pooled before fork=1, child saw inherited=0 then its own=1, child exit=0, n=40
files: parent pooled before fork=2, child saw inherited=0 then its own=1, child exit=0, n=40
