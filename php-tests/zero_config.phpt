--TEST--
Zero configuration: empty save_path uses session_proxy.sqlite in a private session_proxy-<uid> directory (0700) of sys_temp_dir, a plain directory uses DIR/session_proxy.sqlite, files are private
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

// umask 0 in the children: the database must be private because the extension says so, not thanks to a umask.
$write = 'umask(0); session_id("zeroconf1"); var_dump(session_start()); $_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1; session_write_close(); echo "n=", $_SESSION["n"], "\n";';
$read = 'session_id("zeroconf1"); session_start(); echo "read n=", $_SESSION["n"] ?? "none", "\n";';

function listing(string $dir): string
{
    return implode(' ', array_diff(scandir($dir), ['.', '..']));
}

/** "ok" when $dir holds session_proxy.sqlite and at most its -wal/-shm/-locks companions. */
function db_only(string $dir): string
{
    $l = array_diff(scandir($dir), ['.', '..']);
    $ok = in_array('session_proxy.sqlite', $l, true)
        && !array_diff($l, ['session_proxy.sqlite', 'session_proxy.sqlite-wal', 'session_proxy.sqlite-shm', 'session_proxy.sqlite-locks']);
    return $ok ? 'session_proxy.sqlite (and at most its -wal/-shm/-locks)' : 'UNEXPECTED: ' . implode(' ', $l);
}

function modes(string $dir): string
{
    $open = [];
    foreach (array_diff(scandir($dir), ['.', '..']) as $e) {
        if (fileperms("$dir/$e") & 0077) {
            $open[] = sprintf('%s is %o', $e, fileperms("$dir/$e") & 0777);
        }
    }
    return $open ? 'NOT PRIVATE: ' . implode(', ', $open) : 'no group/other bits on any file';
}

echo "== empty save_path, sys_temp_dir set\n";
$tmp = sp_tmpdir('zeroconf-tmp');
$ini = ['session.save_path' => '', 'sys_temp_dir' => $tmp];
echo 'loading the extension alone creates nothing: ';
sp_child('echo sys_get_temp_dir() === ' . var_export($tmp, true) . ' ? "" : "sys_temp_dir not applied\n";', $ini);
echo var_export(listing($tmp) === '', true), "\n";
echo sp_child($write, $ini);
echo sp_child($write, $ini);
echo sp_child($read, $ini);
// Not in the shared temp dir itself (anyone could plant the file there): in a directory of this user's.
$uid = trim((string) shell_exec('id -u'));
echo 'temp dir holds: ', str_replace($uid, '<uid>', listing($tmp)), ', mode ', sprintf('%04o', fileperms("$tmp/session_proxy-$uid") & 07777), "\n";
echo 'files: ', db_only("$tmp/session_proxy-$uid"), "\n";
echo 'modes: ', modes("$tmp/session_proxy-$uid"), "\n";

echo "== plain absolute directory\n";
$dir = sp_tmpdir('zeroconf-dir');
echo sp_child($write, ['session.save_path' => $dir]);
// With a trailing slash it is the same database.
echo sp_child($read, ['session.save_path' => "$dir/"]);
echo 'files: ', db_only($dir), "\n";
echo 'modes: ', modes($dir), "\n";
// ... and the sys_temp_dir database was not touched by it.
echo sp_child($read, $ini);
?>
--EXPECT--
== empty save_path, sys_temp_dir set
loading the extension alone creates nothing: true
bool(true)
n=1
bool(true)
n=2
read n=2
temp dir holds: session_proxy-<uid>, mode 0700
files: session_proxy.sqlite (and at most its -wal/-shm/-locks)
modes: no group/other bits on any file
== plain absolute directory
bool(true)
n=1
read n=1
files: session_proxy.sqlite (and at most its -wal/-shm/-locks)
modes: no group/other bits on any file
read n=2
