--TEST--
Faults, recovery inside one long-lived PHP process (its pooled connections kept): storage made read-only, replaced by garbage, replaced by another database mid-request, or removed, on both engines; each fault fails its request with a warning, and once the store is fixed the next session_start() in the same process succeeds
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

// Everything runs in this process, one session after another, as a php-fpm worker serves requests: the
// engine's pooled connection (SQLite) and cached state must not keep a fault alive after the fix.
$GLOBALS['frozen'] = [];
register_shutdown_function(function () {
    foreach ($GLOBALS['frozen'] as $p) {
        thaw($p);
    }
});
$asRoot = function_exists('posix_getuid') ? posix_getuid() === 0 : trim(sp_run('id -u')) === '0';
/** Read-only: chmod does not stop root, so as root the file is made immutable (chattr +i). */
function freeze(string $p): void
{
    global $asRoot;
    $GLOBALS['frozen'][] = $p;
    if ($asRoot) {
        sp_run('chattr +i ' . escapeshellarg($p));
    } else {
        chmod($p, is_dir($p) ? 0500 : 0400);
    }
}
function thaw(string $p): void
{
    global $asRoot;
    clearstatcache();
    if (!file_exists($p)) {
        return;
    }
    if ($asRoot) {
        sp_run('chattr -i ' . escapeshellarg($p));
    } else {
        chmod($p, is_dir($p) ? 0700 : 0600);
    }
}

$GLOBALS['errors'] = [];
set_error_handler(function (int $no, string $msg): bool {
    $GLOBALS['errors'][] = $msg;
    return true;
});

/** One request on session $id: start, n++, ($mid between read and write), write; prints what happened. */
function request(string $label, string $dsn, string $dir, ?callable $mid = null): void
{
    $GLOBALS['errors'] = [];
    sp_use($dsn);
    session_id('onepid1');
    $ok = session_start();
    $n = $_SESSION['n'] ?? null;
    $wrote = null;
    if ($ok) {
        $_SESSION['n'] = ($n ?? 0) + 1;
        if ($mid) {
            $mid();
        }
        $wrote = session_write_close();
    }
    echo "  $label: start=", json_encode($ok), ' n=', json_encode($n), ' write=', json_encode($wrote), "\n";
    foreach ($GLOBALS['errors'] as $e) {
        echo '    ', str_replace($dir, 'DIR', $e), "\n";
    }
}

$pid = getmypid();
foreach (['sqlite', 'files'] as $engine) {
    echo "== $engine\n";
    $dsn = sp_engines("onepid-$engine")[$engine];
    $dir = $engine === 'sqlite' ? dirname(sp_dsn_path($dsn)) : sp_dsn_path($dsn);
    $file = $engine === 'sqlite' ? sp_dsn_path($dsn) : "$dir/sess_onepid1";
    // SQLite: the database and its -wal (where writes go). Not the -shm: this process has it mapped
    // shared and writable, and a write to a mapping of a file made immutable is a SIGBUS (the kernel's).
    $stored = $engine === 'sqlite' ? [$file, "$file-wal"] : [$file];
    request('first', $dsn, $dir);

    echo "-- read-only\n";
    foreach ($stored as $p) {
        freeze($p);
    }
    request('read-only', $dsn, $dir);
    foreach ($stored as $p) {
        thaw($p);
    }
    request('fixed', $dsn, $dir);

    if ($engine === 'sqlite') {
        echo "-- the database replaced by garbage\n";
        file_put_contents("$dir/garbage", str_repeat("\xde\xad\xbe\xef", 2048));
        chmod("$dir/garbage", 0600); // private, so the corruption is what is refused, not the mode
        rename("$dir/garbage", $file);
        @unlink("$file-wal");
        @unlink("$file-shm");
        request('garbage', $dsn, $dir);
        unlink($file);
        request('garbage removed', $dsn, $dir);

        echo "-- the database replaced by another one mid-request (a restore)\n";
        $other = sp_engines('onepid-other')['sqlite'];
        sp_cycle($other, 'onepid1', fn () => $_SESSION['n'] = 100);
        sp_sql_script(sp_dsn_path($other), '$db->exec("PRAGMA wal_checkpoint(TRUNCATE)"); return 1;');
        request('replaced', $dsn, $dir, function () use ($other, $file) {
            rename(sp_dsn_path($other), $file);
            @unlink("$file-wal");
            @unlink("$file-shm");
        });
        request('next', $dsn, $dir);
    }

    echo "-- the directory removed mid-request\n";
    request('removed', $dsn, $dir, fn () => sp_rmrf($dir));
    request('still gone', $dsn, $dir);
    mkdir($dir, 0700, true);
    request('recreated', $dsn, $dir);
    request('next', $dsn, $dir);
}
echo 'all in one process: ', var_export(getmypid() === $pid, true), "\n";
?>
--EXPECTF--
== sqlite
  first: start=true n=null write=true
-- read-only
  read-only: start=false n=null write=null
    session_start(): session_proxy: cannot lock session onepid… in sqlite://DIR/sessions.sqlite: %s
    session_start(): Failed to read session data: session_proxy (path: sqlite://DIR/sessions.sqlite)
  fixed: start=true n=1 write=true
-- the database replaced by garbage
  garbage: start=false n=null write=null
    session_start(): session_proxy: cannot open sqlite://DIR/sessions.sqlite: file is not a database
    session_start(): Failed to initialize storage module: session_proxy (path: sqlite://DIR/sessions.sqlite)
  garbage removed: start=true n=null write=true
-- the database replaced by another one mid-request (a restore)
  replaced: start=true n=1 write=true
    session_write_close(): session_proxy: cannot write session onepid… (6 bytes) to sqlite://DIR/sessions.sqlite: the database file DIR/sessions.sqlite was removed or replaced while this request ran; the stored session is unchanged
    session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (sqlite://DIR/sessions.sqlite)
  next: start=true n=100 write=true
-- the directory removed mid-request
  removed: start=true n=101 write=true
    session_write_close(): session_proxy: cannot write session onepid… (8 bytes) to sqlite://DIR/sessions.sqlite: the database file DIR/sessions.sqlite was removed or replaced while this request ran; the stored session is unchanged
    session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (sqlite://DIR/sessions.sqlite)
  still gone: start=false n=null write=null
    session_start(): session_proxy: cannot open sqlite://DIR/sessions.sqlite: directory DIR does not exist
    session_start(): Failed to initialize storage module: session_proxy (path: sqlite://DIR/sessions.sqlite)
  recreated: start=true n=null write=true
  next: start=true n=1 write=true
== files
  first: start=true n=null write=true
-- read-only
  read-only: start=false n=null write=null
    session_start(): session_proxy: cannot lock session onepid… in files://DIR: cannot open DIR/sess_onepid1: %s
    session_start(): Failed to read session data: session_proxy (path: files://DIR)
  fixed: start=true n=1 write=true
-- the directory removed mid-request
  removed: start=true n=2 write=true
    session_write_close(): session_proxy: cannot write session onepid… (6 bytes) to files://DIR: cannot write DIR/sess_onepid1: No such file or directory (os error 2); the stored session is unchanged
    session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (files://DIR)
  still gone: start=false n=null write=null
    session_start(): session_proxy: cannot lock session onepid… in files://DIR: cannot create DIR/sess_onepid1: No such file or directory (os error 2)
    session_start(): Failed to read session data: session_proxy (path: files://DIR)
  recreated: start=true n=null write=true
  next: start=true n=1 write=true
all in one process: true