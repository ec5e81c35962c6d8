--TEST--
Per-user session index on SQLite, files and PostgreSQL (its native table; Symfony's keeps none): three sessions of one user listed with the current flag, "log out other devices", one by handle, regenerate keeps the binding, user_key, the class; hostile user names
--FILE--
<?php
require __DIR__ . '/inc/users.inc';
require_once __DIR__ . '/inc/pgsql.inc';
foreach (sp_engines('users-index') + ['pgsql' => pg_dsn(pg_table('ui'))] as $engine => $dsn) {
    us_scenario($engine, $dsn, 'ui');
    // count_active: SQLite counts from its index, files says it can't.
    sp_use($dsn);
    $c = SessionProxy\count_active(600);
    echo "$engine: count_active: ", is_int($c) && $c >= 4 ? 'a count' : var_export($c, true), "\n";
    // Hostile user names: a clear error, or stored safely and found again.
    sp_use($dsn);
    session_id('uihostile');
    session_start();
    SessionProxy\set_user('');
    SessionProxy\set_user(str_repeat('x', 1 << 20));
    $names = ['../../etc/passwd', "nul\0byte\xff", 'sess_uihostile', '*', 'PHPREDIS_SESSION:x', str_repeat('y', 1024)];
    $found = [];
    foreach ($names as $i => $u) {
        SessionProxy\set_user($u);
        $_SESSION['i'] = $i;
        session_write_close();
        $found[] = count(SessionProxy\user_sessions($u));
        session_id('uihostile');
        session_start();
    }
    session_write_close();
    echo "$engine: hostile names listed: ", implode(',', $found), "; data: ", json_encode(us_visit($dsn, 'uihostile')['data']), "\n";
    var_dump(SessionProxy\user_sessions(''));
    var_dump(SessionProxy\destroy_session_handle('not a handle'));
    if ($engine === 'files') {
        $dir = substr($dsn, strlen('files://'));
        $bad = array_filter(scandir($dir), fn($f) => !in_array($f, ['.', '..', '.sp-users']) && !str_starts_with($f, 'sess_'));
        echo "files: only sess_ files and the index: ", sp_yn(!$bad), "; nothing in the parent: ",
            sp_yn(!file_exists(dirname($dir) . '/etc')), "\n";
    }
}
// Expiry and gc remove entries.
foreach (sp_engines('users-expiry') + ['pgsql' => pg_dsn(pg_table('ue'))] as $engine => $dsn) {
    us_visit($dsn, 'uiexp1', function () { $_SESSION['n'] = 1; SessionProxy\set_user('erin'); }, ['session.gc_maxlifetime' => 1]);
    $before = count(us_list($dsn, 'erin'));
    sleep(2);
    ini_set('session.gc_maxlifetime', 1);
    $after = count(us_list($dsn, 'erin'));
    session_id('uiother');
    session_start();
    $gc = session_gc();
    session_write_close();
    echo "$engine: listed before expiry $before, after $after; gc collected ", $gc, "\n";
    ini_restore('session.gc_maxlifetime');
}
// Symfony's table has no user column: no index, said so.
sp_use(pg_dsn(pg_table('us'), 'schema=symfony'));
var_dump(SessionProxy\user_sessions('alice'));
?>
--EXPECTF--
sqlite: listed from jar2: current,other,other; keys handle,created,last_active,current; handles hide ids: yes; times now: yes
sqlite: destroyed 2; then jar1=[] jar2={"n":2} jar3=[] bob={"n":1}
sqlite: bob's handle: true, again: false; bob listed: 0
sqlite: after regenerate: current; old id stored: []
sqlite: user_key: bound 1, after unset 0
sqlite: class: listed 1, ended 1, then 0
sqlite: count_active: a count

Warning: SessionProxy\set_user(): session_proxy: invalid user name: the user name is empty in %s on line %d

Warning: SessionProxy\set_user(): session_proxy: invalid user name: the user name is 1048576 bytes long (at most 1024) in %s on line %d
sqlite: hostile names listed: 1,1,1,1,1,1; data: {"i":5}

Warning: SessionProxy\user_sessions(): session_proxy: invalid user name: the user name is empty in %s on line %d
bool(false)

Warning: SessionProxy\destroy_session_handle(): session_proxy: not a session handle (use one from SessionProxy\user_sessions()) in %s on line %d
bool(false)
files: listed from jar2: current,other,other; keys handle,created,last_active,current; handles hide ids: yes; times now: yes
files: destroyed 2; then jar1=[] jar2={"n":2} jar3=[] bob={"n":1}
files: bob's handle: true, again: false; bob listed: 0
files: after regenerate: current; old id stored: []
files: user_key: bound 1, after unset 0
files: class: listed 1, ended 1, then 0

Warning: SessionProxy\count_active(): session_proxy: SessionProxy\count_active() is not available on files://%s: it would have to read every session (SQLite and PostgreSQL count from an index) in %s on line %d
files: count_active: false

Warning: SessionProxy\set_user(): session_proxy: invalid user name: the user name is empty in %s on line %d

Warning: SessionProxy\set_user(): session_proxy: invalid user name: the user name is 1048576 bytes long (at most 1024) in %s on line %d
files: hostile names listed: 1,1,1,1,1,1; data: {"i":5}

Warning: SessionProxy\user_sessions(): session_proxy: invalid user name: the user name is empty in %s on line %d
bool(false)

Warning: SessionProxy\destroy_session_handle(): session_proxy: not a session handle (use one from SessionProxy\user_sessions()) in %s on line %d
bool(false)
files: only sess_ files and the index: yes; nothing in the parent: yes
pgsql: listed from jar2: current,other,other; keys handle,created,last_active,current; handles hide ids: yes; times now: yes
pgsql: destroyed 2; then jar1=[] jar2={"n":2} jar3=[] bob={"n":1}
pgsql: bob's handle: true, again: false; bob listed: 0
pgsql: after regenerate: current; old id stored: []
pgsql: user_key: bound 1, after unset 0
pgsql: class: listed 1, ended 1, then 0
pgsql: count_active: a count

Warning: SessionProxy\set_user(): session_proxy: invalid user name: the user name is empty in %s on line %d

Warning: SessionProxy\set_user(): session_proxy: invalid user name: the user name is 1048576 bytes long (at most 1024) in %s on line %d
pgsql: hostile names listed: 1,1,1,1,1,1; data: {"i":5}

Warning: SessionProxy\user_sessions(): session_proxy: invalid user name: the user name is empty in %s on line %d
bool(false)

Warning: SessionProxy\destroy_session_handle(): session_proxy: not a session handle (use one from SessionProxy\user_sessions()) in %s on line %d
bool(false)
sqlite: listed before expiry 1, after 0; gc collected 1
files: listed before expiry 1, after 0; gc collected 1
pgsql: listed before expiry 1, after 0; gc collected 1

Warning: SessionProxy\user_sessions(): session_proxy: pgsql://127.0.0.1:%d/sp?table=phpt_us_%s keeps no per-user session index in %s on line %d
bool(false)
