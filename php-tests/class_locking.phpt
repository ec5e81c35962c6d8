--TEST--
SessionProxy\Handler locking: options override the INI, unset options follow it, and read()/write() without open()/close() (as Laravel calls them) lock and release
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

foreach (sp_engines('clslock') as $engine => $dsn) {
    echo "== $engine\n";
    $sig = sp_tmpdir('clslock-sig');
    $id = 'clslock1';
    lk_seed($dsn, $id, ['n' => 1]);

    // A: the class, used the way Laravel does (read ... write, no open/close): holds the lock between.
    $a = lk_spawn('
        $h = new SessionProxy\Handler($P["dsn"]);
        $data = $h->read($P["id"]);
        lk_signal($P["sig"] . "/a-locked");
        lk_await($P["sig"] . "/release");
        $ok = $h->write($P["id"], "n|i:2;");
        lk_signal($P["sig"] . "/a-wrote");
        lk_await($P["sig"] . "/exit");
        lk_done(["read" => $data, "wrote" => $ok]);
    ', ['id' => $id, 'sig' => $sig, 'dsn' => $dsn], ['session.save_path' => $dsn]);
    lk_wait_signal("$sig/a-locked");

    $try = '
        session_set_save_handler(new SessionProxy\Handler($P["dsn"], $P["opts"]), true);
        session_id($P["id"]);
        $t = microtime(true);
        $ok = session_start();
        lk_done(["ok" => $ok, "s" => microtime(true) - $t, "data" => $_SESSION]);
    ';
    $cases = [
        'option lock_wait_timeout=200 over INI 30000' => [['lock_wait_timeout' => 200], ['session_proxy.lock_wait_timeout' => '30000']],
        'no option, INI 200' => [[], ['session_proxy.lock_wait_timeout' => '200']],
        'option readonly over INI fail' => [['lock_wait_timeout' => 200, 'lock_timeout_action' => 'readonly'], ['session_proxy.lock_timeout_action' => 'fail']],
    ];
    foreach ($cases as $label => [$opts, $ini]) {
        $r = lk_run('B', $try, ['id' => $id, 'dsn' => $dsn, 'opts' => $opts], $ini);
        echo "$label: start=", var_export($r['ok'] ?? null, true), ' quick=', lk_check(($r['s'] ?? 99) < 3.0, lk_s($r['s'] ?? 99)),
            ' data=', json_encode($r['data'] ?? null), "\n";
        foreach (lk_errors($r, $dsn) as $e) {
            echo '  ', $e, "\n";
        }
    }

    // write() released the lock although A is still running and never called close().
    lk_signal_parent("$sig/release");
    lk_wait_signal("$sig/a-wrote");
    $r = lk_run('C', $try, ['id' => $id, 'dsn' => $dsn, 'opts' => ['lock_wait_timeout' => 2000]]);
    echo 'after write(), before A exits: start=', var_export($r['ok'] ?? null, true), ' data=', json_encode($r['data'] ?? null), "\n";
    lk_signal_parent("$sig/exit");
    $ra = lk_result('A', sp_wait($a));
    echo 'A read ', json_encode($ra['read'] ?? null), ', wrote ', var_export($ra['wrote'] ?? null, true), "\n";
}
?>
--EXPECTF--
== sqlite
option lock_wait_timeout=200 over INI 30000: start=false quick=yes data=[]
  Warning: SessionProxy\Handler::read(): session_proxy: timed out after 200 ms (session_proxy.lock_wait_timeout) waiting for the lock on session clsloc… held by another request in <DSN>
  Warning: session_start(): Failed to read session data: user (path: %s)
no option, INI 200: start=false quick=yes data=[]
  Warning: SessionProxy\Handler::read(): session_proxy: timed out after 200 ms (session_proxy.lock_wait_timeout) waiting for the lock on session clsloc… held by another request in <DSN>
  Warning: session_start(): Failed to read session data: user (path: %s)
option readonly over INI fail: start=true quick=yes data={"n":1}
  Notice: SessionProxy\Handler::read(): session_proxy: timed out after 200 ms (session_proxy.lock_wait_timeout) waiting for the lock on session clsloc… held by another request in <DSN>; opened read-only, its changes will not be saved
after write(), before A exits: start=true data={"n":2}
A read "n|i:1;", wrote true
== files
option lock_wait_timeout=200 over INI 30000: start=false quick=yes data=[]
  Warning: SessionProxy\Handler::read(): session_proxy: timed out after 200 ms (session_proxy.lock_wait_timeout) waiting for the lock on session clsloc… held by another request in <DSN>
  Warning: session_start(): Failed to read session data: user (path: %s)
no option, INI 200: start=false quick=yes data=[]
  Warning: SessionProxy\Handler::read(): session_proxy: timed out after 200 ms (session_proxy.lock_wait_timeout) waiting for the lock on session clsloc… held by another request in <DSN>
  Warning: session_start(): Failed to read session data: user (path: %s)
option readonly over INI fail: start=true quick=yes data={"n":1}
  Notice: SessionProxy\Handler::read(): session_proxy: timed out after 200 ms (session_proxy.lock_wait_timeout) waiting for the lock on session clsloc… held by another request in <DSN>; opened read-only, its changes will not be saved
after write(), before A exits: start=true data={"n":2}
A read "n|i:1;", wrote true
