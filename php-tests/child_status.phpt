--TEST--
Test helpers: a child PHP that crashes (SIGSEGV after printing its result), exits non-zero or is killed fails the test (sp_child, sp_spawn/sp_wait, sp_run), unless the test says it expects that exit or a kill
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

/** Runs $f and prints what it returned, or the first line of what it threw. */
function attempt(string $what, callable $f): void
{
    try {
        $r = $f();
        echo "$what: returned ", json_encode($r), "\n";
    } catch (RuntimeException $e) {
        echo "$what: threw: ", strtok($e->getMessage(), "\n"), "\n";
    }
}

// Prints its result line, then dies of SIGSEGV (as a crash in the session close or at module shutdown would).
$segv = 'echo "RESULT:done\n"; exec("kill -SEGV " . getmypid()); sleep(10); echo "not reached\n";';

attempt('sp_child, clean exit', fn () => sp_child('echo "RESULT:done\n";'));
attempt('sp_child, SIGSEGV after its result', fn () => sp_child($segv));
attempt('sp_child, exit(3)', fn () => sp_child('echo "RESULT:done\n"; exit(3);'));
attempt('sp_child, exit(3) expected', fn () => sp_child('echo "RESULT:done\n"; exit(3);', [], [], 3));
attempt('sp_child, a fatal error', fn () => sp_child('echo "RESULT:done\n"; no_such_function();'));
attempt('sp_wait, clean exit', fn () => sp_wait(sp_spawn('echo "RESULT:done\n";')));
attempt('sp_wait, SIGSEGV after its result', fn () => sp_wait(sp_spawn($segv)));
attempt('sp_wait, killed by the test, SP_KILLED', function () {
    $h = sp_spawn('sleep(10);');
    exec('kill -9 ' . (int) $h['pid']);
    return sp_wait($h, SP_KILLED);
});
attempt('sp_wait, killed, not expected', function () {
    $h = sp_spawn('sleep(10);');
    exec('kill -9 ' . (int) $h['pid']);
    return sp_wait($h);
});
attempt('sp_wait, SP_KILLED but it exited', fn () => sp_wait(sp_spawn('echo "RESULT:done\n";'), SP_KILLED));
attempt('sp_wait, SIGSEGV, polled first with sp_proc_status', function () use ($segv) {
    $h = sp_spawn($segv);
    while (sp_proc_status($h['proc'], false) === null) {
        usleep(1000);
    }
    return sp_wait($h);
});
attempt('sp_run, clean', fn () => sp_run('echo out; echo err >&2'));
attempt('sp_run, SIGABRT', fn () => sp_run('echo out; kill -ABRT $$'));
attempt('sp_run, exit 1', fn () => sp_run('echo out; exit 1'));
attempt('sp_run, SP_ANY_EXIT', fn () => sp_run('echo out; exit 1', SP_ANY_EXIT));
?>
--EXPECTF--
sp_child, clean exit: returned "RESULT:done\n"
sp_child, SIGSEGV after its result: threw: child PHP was killed by signal 11 (SIGSEGV) (expected exit status 0); its output:
sp_child, exit(3): threw: child PHP exited with status 3 (expected exit status 0); its output:
sp_child, exit(3) expected: returned "RESULT:done\n"
sp_child, a fatal error: threw: child PHP exited with status 255 (expected exit status 0); its output:
sp_wait, clean exit: returned "RESULT:done\n"
sp_wait, SIGSEGV after its result: threw: child PHP (pid %d) was killed by signal 11 (SIGSEGV) (expected exit status 0); its output:
sp_wait, killed by the test, SP_KILLED: returned ""
sp_wait, killed, not expected: threw: child PHP (pid %d) was killed by signal 9 (SIGKILL) (expected exit status 0); its output:
sp_wait, SP_KILLED but it exited: threw: child PHP (pid %d) exited with status 0 (expected to be killed); its output:
sp_wait, SIGSEGV, polled first with sp_proc_status: threw: child PHP (pid %d) was killed by signal 11 (SIGSEGV) (expected exit status 0); its output:
sp_run, clean: returned "out\nerr\n"
sp_run, SIGABRT: threw: command `echo out; kill -ABRT $$` was killed by signal 6 (SIGABRT) (expected exit status 0); its output:
sp_run, exit 1: threw: command `echo out; exit 1` exited with status 1 (expected exit status 0); its output:
sp_run, SP_ANY_EXIT: returned "out\n"
