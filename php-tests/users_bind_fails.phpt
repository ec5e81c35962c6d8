--TEST--
Per-user index on SQLite and files, the binding fails while the sessions still write (a trigger refuses SQLite's user_id change; a plain file stands where the files engine's .sp-users directory belongs): a login through set_user() (the functions and SessionProxy\Handler) and through session_proxy.user_key is not left logged in and unbound: the write fails with a warning naming the cause and the session is ended; an unbinding that fails only warns and keeps the session; once the index works again, logins bind
--FILE--
<?php
require __DIR__ . '/inc/users.inc';

foreach (sp_engines('users-bindfail') as $engine => $dsn) {
    $path = substr($dsn, strlen("$engine://"));
    $sql = fn (string $q) => sp_run('python3 -c ' . escapeshellarg('import sqlite3, sys; sqlite3.connect(sys.argv[1]).executescript(sys.argv[2])')
        . ' ' . escapeshellarg($path) . ' ' . escapeshellarg($q));
    $break = function () use ($engine, $path, $sql) {
        if ($engine === 'sqlite') {
            $sql("CREATE TRIGGER no_binding BEFORE UPDATE OF user_id ON sessions BEGIN SELECT RAISE(ABORT, 'binding refused by the test'); END;");
        } else {
            if (is_dir("$path/.sp-users")) {
                rename("$path/.sp-users", "$path/sp-users.kept");
            }
            file_put_contents("$path/.sp-users", 'not a directory');
        }
    };
    $mend = function () use ($engine, $path, $sql) {
        if ($engine === 'sqlite') {
            $sql('DROP TRIGGER no_binding;');
        } else {
            unlink("$path/.sp-users");
            if (is_dir("$path/sp-users.kept")) {
                rename("$path/sp-users.kept", "$path/.sp-users");
            }
        }
    };
    // The cause, as the warning names it: SQLite's message, or the files engine's path.
    $said = fn (string $w) => str_contains($w, 'binding it to its user failed')
        && str_contains($w, $engine === 'sqlite' ? 'binding refused by the test' : "$path/.sp-users")
        && str_contains($w, 'the session was ended');
    $warned = [];
    set_error_handler(function (int $no, string $msg) use (&$warned) { $warned[] = $msg; return true; });

    us_visit($dsn, 'bfanon', function () { $_SESSION['cart'] = 1; });
    us_visit($dsn, 'bfkey', function () { $_SESSION['cart'] = 1; });
    $break();

    // set_user() at login, on an existing anonymous session.
    sp_use($dsn);
    session_id('bfanon');
    session_start();
    SessionProxy\set_user('mallory');
    $_SESSION['login'] = 'mallory';
    session_write_close();
    // PHP's session_write_close() answers true whenever a session was active; its own warning says the write failed.
    echo "$engine: set_user: PHP warned the write failed: ", sp_yn((bool) preg_grep('~Failed to write session data~', $warned)),
        ", warned of the cause and the end: ", sp_yn((bool) array_filter($warned, $said)), "; next read: ",
        json_encode(us_visit($dsn, 'bfanon')['data']), "\n";

    // The class, on a new session.
    $warned = [];
    $h = new SessionProxy\Handler($dsn);
    $h->open('', 'PHPSESSID');
    $h->read('bfclass');
    $h->setUser('mallory');
    $ok = $h->write('bfclass', 'login|s:7:"mallory";');
    $h->close();
    echo "$engine: class: write ", var_export($ok, true), ", warned: ", sp_yn((bool) array_filter($warned, $said)),
        "; next read: ", json_encode(us_visit($dsn, 'bfclass')['data']), "\n";

    // user_key: the key's new value is the binding.
    $warned = [];
    $r = us_visit($dsn, 'bfkey', function () { $_SESSION['uid'] = 'mallory'; }, ['session_proxy.user_key' => 'uid']);
    echo "$engine: user_key: warned: ", sp_yn((bool) array_filter($warned, $said)), "; next read: ",
        json_encode(us_visit($dsn, 'bfkey')['data']), "\n";

    $mend();
    echo "$engine: listed while it failed: ", count(SessionProxy\user_sessions('mallory')), "\n";
    // Working again: a login binds; then an unbinding (user_key removed) that fails only warns.
    us_visit($dsn, 'bfkey', function () { $_SESSION['uid'] = 'mallory'; }, ['session_proxy.user_key' => 'uid']);
    echo "$engine: mended: listed ", count(SessionProxy\user_sessions('mallory')), "\n";
    $break();
    $warned = [];
    us_visit($dsn, 'bfkey', function () { unset($_SESSION['uid']); $_SESSION['cart'] = 2; }, ['session_proxy.user_key' => 'uid']);
    echo "$engine: failed unbinding: warned of the index: ", sp_yn((bool) preg_grep('~per-user session index .* failed for session~', $warned)),
        "; next read: ", json_encode(us_visit($dsn, 'bfkey')['data']), "\n";
    $mend();
    echo "$engine: still listed, so still ended by destroy_user_sessions: ", var_export(SessionProxy\destroy_user_sessions('mallory'), true), "\n";
    restore_error_handler();
    ini_restore('session_proxy.user_key');
}
?>
--EXPECT--
sqlite: set_user: PHP warned the write failed: yes, warned of the cause and the end: yes; next read: []
sqlite: class: write false, warned: yes; next read: []
sqlite: user_key: warned: yes; next read: []
sqlite: listed while it failed: 0
sqlite: mended: listed 1
sqlite: failed unbinding: warned of the index: yes; next read: {"cart":2}
sqlite: still listed, so still ended by destroy_user_sessions: 1
files: set_user: PHP warned the write failed: yes, warned of the cause and the end: yes; next read: []
files: class: write false, warned: yes; next read: []
files: user_key: warned: yes; next read: []
files: listed while it failed: 0
files: mended: listed 1
files: failed unbinding: warned of the index: yes; next read: {"cart":2}
files: still listed, so still ended by destroy_user_sessions: 1
