--TEST--
Unusable storage on both engines: clean failure naming the path, never a crash, existing data left intact
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

$d = sp_tmpdir('badstorage');
file_put_contents("$d/regular", "not a directory\n");
$corrupt = random_bytes(16384);
file_put_contents("$d/corrupt.sqlite", $corrupt);
chmod("$d/corrupt.sqlite", 0600); // private, as a database must be: what is wrong with it is its bytes
mkdir("$d/adir");
mkdir("$d/adir/inner");
$before = array_values(array_diff(scandir($d), ['.', '..']));

$warnings = [];
set_error_handler(function (int $no, string $msg) use (&$warnings) {
    $warnings[] = $msg;
    return true;
});
$show = fn (string $s) => str_replace($d, 'DIR', $s);

// save_path ("DIR" = the test's directory) => what it is.
$cases = [
    'sqlite://DIR/nope/s.sqlite' => 'sqlite: directory does not exist',
    'DIR/nope' => 'plain directory that does not exist',
    'sqlite://DIR/regular/s.sqlite' => 'sqlite: parent is a regular file',
    'DIR/regular' => 'plain directory that is a regular file',
    'sqlite://DIR/adir' => 'sqlite: database path is a directory',
    'sqlite://DIR/corrupt.sqlite' => 'sqlite: corrupt database (random bytes)',
    'sqlite:///proc/session_proxy_phpt.sqlite' => 'sqlite: under /proc (not creatable, even for root)',
    'sqlite:///proc/self/sp.sqlite' => 'sqlite: under /proc/self',
    'files://DIR/nope' => 'files: directory does not exist',
    'files://DIR/regular/sub' => 'files: parent is a regular file',
    'files://DIR/regular' => 'files: path is a regular file',
    'files:///proc/self' => 'files: /proc/self (not writable, even for root)',
    'files:///proc' => 'files: /proc (passes the access check, creating a file fails)',
];
foreach ($cases as $path => $what) {
    $path = str_replace('DIR', $d, $path);
    sp_use($path);
    $warnings = [];
    session_id('badstorage1');
    $started = session_start();
    $active = session_status() === PHP_SESSION_ACTIVE;
    if ($active) {
        session_abort();
    }
    echo "== $what\n";
    echo 'start=', var_export($started, true), ' active=', var_export($active, true), "\n";
    foreach ($warnings as $w) {
        echo $show($w), "\n";
    }
}

// Nothing was added, changed or removed in the test directory.
echo "== afterwards\n";
echo 'directory unchanged: ', var_export(array_values(array_diff(scandir($d), ['.', '..'])) === $before, true), "\n";
echo 'corrupt file bytes unchanged: ', var_export(file_get_contents("$d/corrupt.sqlite") === $corrupt, true), "\n";
echo 'regular file unchanged: ', var_export(file_get_contents("$d/regular") === "not a directory\n", true), "\n";
echo 'nothing created inside adir: ', var_export(array_values(array_diff(scandir("$d/adir"), ['.', '..'])) === ['inner'], true), "\n";

// Write-time failure: the file size limit (RLIMIT_FSIZE, which binds root too) stops a 2 MiB write.
// The request must get a warning at write, finish normally, and the stored session must stay as it was.
$code = <<<'PHP'
session_id('bigwrite1');
$ok = session_start();
echo 'start=', var_export($ok, true), ' v=', var_export($_SESSION['v'] ?? null, true), "\n";
$_SESSION['v'] = $argv[1] === 'big' ? str_repeat('x', 2 << 20) : 'old';
session_write_close();
echo "done\n";
PHP;
$script = sp_script($code);
foreach (sp_engines('badstorage-w') as $engine => $dsn) {
    echo "== write-time failure, $engine\n";
    $ini = ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '2000'];
    $dir = $engine === 'files' ? substr($dsn, strlen('files://')) : dirname(substr($dsn, strlen('sqlite://')));
    $showw = fn (string $s) => str_replace($dir, 'DIR', $s);
    echo $showw(sp_run(sp_php_cmd($script, $ini) . ' small'));
    echo $showw(sp_run("trap '' XFSZ; ulimit -f 256; exec " . sp_php_cmd($script, $ini) . ' big'));
    echo $showw(sp_run(sp_php_cmd($script, $ini) . ' small'));
    echo 'files: ', implode(' ', array_diff(scandir($dir), ['.', '..'])), "\n";
}
?>
--EXPECTF--
== sqlite: directory does not exist
start=false active=false
session_start(): session_proxy: cannot open sqlite://DIR/nope/s.sqlite: directory DIR/nope does not exist
session_start(): Failed to initialize storage module: session_proxy (path: sqlite://DIR/nope/s.sqlite)
== plain directory that does not exist
start=false active=false
session_start(): session_proxy: cannot open sqlite://DIR/nope/session_proxy.sqlite: directory DIR/nope does not exist
session_start(): Failed to initialize storage module: session_proxy (path: DIR/nope)
== sqlite: parent is a regular file
start=false active=false
session_start(): session_proxy: cannot open sqlite://DIR/regular/s.sqlite: %SDIR/regular %Snot a directory%S
session_start(): Failed to initialize storage module: session_proxy (path: sqlite://DIR/regular/s.sqlite)
== plain directory that is a regular file
start=false active=false
session_start(): session_proxy: cannot open sqlite://DIR/regular/session_proxy.sqlite: %SDIR/regular %Snot a directory%S
session_start(): Failed to initialize storage module: session_proxy (path: DIR/regular)
== sqlite: database path is a directory
start=false active=false
session_start(): session_proxy: cannot open sqlite://DIR/adir: DIR/adir is a directory, not a database file
session_start(): Failed to initialize storage module: session_proxy (path: sqlite://DIR/adir)
== sqlite: corrupt database (random bytes)
start=false active=false
session_start(): session_proxy: cannot open sqlite://DIR/corrupt.sqlite: %Snot a database%S
session_start(): Failed to initialize storage module: session_proxy (path: sqlite://DIR/corrupt.sqlite)
== sqlite: under /proc (not creatable, even for root)
start=false active=false
session_start(): session_proxy: cannot open sqlite:///proc/session_proxy_phpt.sqlite: cannot create /proc/session_proxy_phpt.sqlite (is the directory writable?): %s
session_start(): Failed to initialize storage module: session_proxy (path: sqlite:///proc/session_proxy_phpt.sqlite)
== sqlite: under /proc/self
start=false active=false
session_start(): session_proxy: cannot open sqlite:///proc/self/sp.sqlite: cannot create /proc/self/sp.sqlite (is the directory writable?): %s
session_start(): Failed to initialize storage module: session_proxy (path: sqlite:///proc/self/sp.sqlite)
== files: directory does not exist
start=false active=false
session_start(): session_proxy: cannot open files://DIR/nope: directory DIR/nope is not accessible: No such file or directory (os error 2)
session_start(): Failed to initialize storage module: session_proxy (path: files://DIR/nope)
== files: parent is a regular file
start=false active=false
session_start(): session_proxy: cannot open files://DIR/regular/sub: directory DIR/regular/sub is not accessible: Not a directory (os error 20)
session_start(): Failed to initialize storage module: session_proxy (path: files://DIR/regular/sub)
== files: path is a regular file
start=false active=false
session_start(): session_proxy: cannot open files://DIR/regular: DIR/regular is not a directory
session_start(): Failed to initialize storage module: session_proxy (path: files://DIR/regular)
== files: /proc/self (not writable, even for root)
start=false active=false
session_start(): session_proxy: cannot open files:///proc/self: directory /proc/self is not writable
session_start(): Failed to initialize storage module: session_proxy (path: files:///proc/self)
== files: /proc (passes the access check, creating a file fails)
start=false active=false
session_start(): session_proxy: cannot lock session badsto… in files:///proc: %Scannot create /proc/sess_badstorage1: %s
session_start(): Failed to read session data: session_proxy (path: files:///proc)
== afterwards
directory unchanged: true
corrupt file bytes unchanged: true
regular file unchanged: true
nothing created inside adir: true
== write-time failure, sqlite
start=true v=NULL
done
start=true v='old'

Warning: session_write_close(): session_proxy: cannot write session bigwri… (%d bytes) to sqlite://DIR/sessions.sqlite: %s; the stored session is unchanged in %s on line %d

Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (sqlite://DIR/sessions.sqlite) in %s on line %d
done
start=true v='old'
done
files: files sessions.sqlite sessions.sqlite-locks sessions.sqlite-shm sessions.sqlite-wal
== write-time failure, files
start=true v=NULL
done
start=true v='old'

Warning: session_write_close(): session_proxy: cannot write session bigwri… (%d bytes) to files://DIR: %s; the stored session is unchanged in %s on line %d

Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (files://DIR) in %s on line %d
done
start=true v='old'
done
files: sess_bigwrite1
