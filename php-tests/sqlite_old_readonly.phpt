--TEST--
SQLite: a database made before session versions, on storage we may only read (an immutable file), is still read; a change to it is refused with a warning that says why, and the file keeps its session; once it can be written, the same PHP process's next request migrates it and writes
--FILE--
<?php
$so = getenv('SESSION_PROXY_SO');
$dir = sys_get_temp_dir() . '/sp-old-ro-' . getmypid();
@mkdir($dir, 0700);
$db = "$dir/s.sqlite";
@unlink($db);
// The schema of the versions before the version column (issue 11), in WAL mode as ours always is.
$make = <<<'PY'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA journal_mode=WAL")
c.executescript("""CREATE TABLE sessions (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, user_id TEXT);
CREATE INDEX sessions_updated_at ON sessions(updated_at);
CREATE TABLE session_locks (id TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID;""")
c.execute("INSERT INTO sessions VALUES ('oldreadonly1', ?, ?, ?, NULL)", (b'n|i:7;', time.time(), time.time()))
c.commit(); c.close()
PY;
exec('python3 -c ' . escapeshellarg($make) . ' ' . escapeshellarg($db) . ' 2>&1', $out, $rc);
if ($rc !== 0) { echo "cannot make the old database: ", implode(' ', $out), "\n"; }
chmod($db, 0600);
exec('chattr +i ' . escapeshellarg($db) . ' 2>&1', $out, $rc);
if ($rc !== 0) { echo "cannot make $db immutable (needs root): ", implode(' ', $out), "\n"; }
register_shutdown_function(function () use ($db, $dir) {
    exec('chattr -i ' . escapeshellarg($db));
    foreach (glob("$dir/*") as $f) { @unlink($f); }
    @rmdir($dir);
});

function run(string $so, string $db, string $ini, string $code): void
{
    $cmd = PHP_BINARY . ' -n -d extension=' . escapeshellarg($so)
        . ' -d session.save_handler=session_proxy -d session.use_strict_mode=0 -d session.gc_probability=0'
        . ' -d display_errors=stderr -d html_errors=0'
        . ' -d ' . escapeshellarg("session.save_path=sqlite://$db") . " $ini -r " . escapeshellarg($code) . ' 2>&1';
    foreach (explode("\n", trim((string) shell_exec($cmd))) as $l) {
        if (trim($l) !== '') { echo '  ', str_replace($db, 'DB', trim($l)), "\n"; }
    }
}

echo "== read with locking off\n";
run($so, $db, '-d session_proxy.locking=0', 'session_id("oldreadonly1"); var_dump(session_start(), $_SESSION); session_write_close();');
echo "== a change with locking off\n";
run($so, $db, '-d session_proxy.locking=0', 'session_id("oldreadonly1"); session_start(); $_SESSION["n"] = 8; session_write_close();');
echo "== read_and_close\n";
run($so, $db, '', 'session_id("oldreadonly1"); var_dump(session_start(["read_and_close" => true]), $_SESSION);');
echo "== with locking on\n";
run($so, $db, '', 'session_id("oldreadonly1"); var_dump(session_start());');
echo "== after: the file as it was\n";
exec('chattr -i ' . escapeshellarg($db));
$check = 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute("SELECT data FROM sessions WHERE id=\'oldreadonly1\'").fetchone()[0].decode(), len(c.execute("PRAGMA table_info(sessions)").fetchall()))';
echo '  ', trim((string) shell_exec('python3 -c ' . escapeshellarg($check) . ' ' . escapeshellarg($db) . ' 2>&1')), "\n";
echo "== one process: read-only for its first request, writable before its second\n";
exec('chattr +i ' . escapeshellarg($db));
// The read-only store is not kept for the next request (not pooled): that one opens the file
// again, migrates it and writes.
$db_q = var_export($db, true);
run($so, $db, '-d session_proxy.locking=0 -d session.use_cookies=0 -d session.cache_limiter=', <<<PHP
    session_id("oldreadonly1"); session_start(); echo "first: n=", \$_SESSION["n"], "\\n"; session_write_close();
    exec("chattr -i " . escapeshellarg($db_q));
    session_id("oldreadonly1"); session_start(); \$_SESSION["n"] = 9; var_dump(session_write_close());
    PHP);
echo '  ', trim((string) shell_exec('python3 -c ' . escapeshellarg($check) . ' ' . escapeshellarg($db) . ' 2>&1')), "\n";
?>
--EXPECTF--
== read with locking off
  bool(true)
  array(1) {
  ["n"]=>
  int(7)
  }
  Warning: session_write_close(): session_proxy: cannot update the timestamp of session oldrea… in sqlite://DB: DB is read-only and was made before session versions: it is only read; open it once with write access to add them in Command line code on line 1
  Warning: session_write_close(): Failed to write session data (session_proxy). %s
== a change with locking off
  Warning: session_write_close(): session_proxy: cannot write session oldrea… (6 bytes) to sqlite://DB: DB is read-only and was made before session versions: it is only read; open it once with write access to add them; the stored session is unchanged in Command line code on line 1
  Warning: session_write_close(): Failed to write session data (session_proxy). %s
== read_and_close
  bool(true)
  array(1) {
  ["n"]=>
  int(7)
  }
== with locking on
  Warning: session_start(): session_proxy: cannot lock session oldrea… in sqlite://DB: attempt to write a readonly database in Command line code on line 1
  Warning: session_start(): Failed to read session data: session_proxy (path: sqlite://DB) in Command line code on line 1
  bool(false)
== after: the file as it was
  n|i:7; 5
== one process: read-only for its first request, writable before its second
  first: n=7
  Warning: session_write_close(): session_proxy: cannot update the timestamp of session oldrea… in sqlite://DB: DB is read-only and was made before session versions: it is only read; open it once with write access to add them in Command line code on line 1
  Warning: session_write_close(): Failed to write session data (session_proxy). %s
  bool(true)
  n|i:9; 7
