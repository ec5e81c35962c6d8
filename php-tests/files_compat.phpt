--TEST--
files engine and PHP's own files handler read each other's sessions (flat and depth=2 layouts); session files are 0600
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

umask(0022);
$data = ['user' => 'alice', 'n' => 42, 'bin' => "\0\xff\xfe", 'list' => [1, 2, 3]];
$php = ['session.save_handler' => 'files'];

/** One write by PHP's files handler in this process. */
function php_files_write(string $savePath, string $id, array $data): void
{
    sp_use($savePath, ['session.save_handler' => 'files']);
    session_id($id);
    session_start();
    $_SESSION = $data;
    session_write_close();
}

function perms(string $path): string
{
    clearstatcache();
    return file_exists($path) ? sprintf('%04o', fileperms($path) & 0777) : 'missing';
}

function same(?array $r, array $data): string
{
    return ($r['ok'] ?? false) && ($r['data'] ?? null) === $data ? 'same data' : 'DIFFERENT: ' . json_encode($r);
}

// --- flat layout --------------------------------------------------------------------------------
$dir = sp_tmpdir('compat-flat');
$dsn = "files://$dir";

php_files_write($dir, 'fromphp', $data);
echo "PHP wrote sess_fromphp: ", sp_yn(is_file("$dir/sess_fromphp")), "\n";
echo "session_proxy reads it in another process: ", same(sp_child_read($dsn, 'fromphp'), $data), "\n";

sp_cycle($dsn, 'fromproxy', function () use ($data) { $_SESSION = $data; });
echo "session_proxy wrote sess_fromproxy: ", sp_yn(is_file("$dir/sess_fromproxy")), ", mode ", perms("$dir/sess_fromproxy"), "\n";
echo "PHP's handler reads it in another process: ",
    same(sp_child_read($dir, 'fromproxy', $php + ['session.save_path' => sp_q($dir)]), $data), "\n";
echo "same bytes as PHP writes: ", sp_yn(file_get_contents("$dir/sess_fromproxy") === file_get_contents("$dir/sess_fromphp")), "\n";

// A session PHP wrote, updated by session_proxy, read by PHP again.
sp_cycle($dsn, 'fromphp', function () { $_SESSION['n']++; });
$r = sp_child_read($dir, 'fromphp', $php + ['session.save_path' => sp_q($dir)]);
echo "PHP reads session_proxy's update: n=", $r['data']['n'] ?? '?', ", user=", $r['data']['user'] ?? '?', "\n";
echo "mode after session_proxy rewrote PHP's file: ", perms("$dir/sess_fromphp"), "\n";
echo "files in the directory: ", json_encode(sp_tree($dir), JSON_UNESCAPED_SLASHES), "\n";

// mode=0640 is honoured.
$dir640 = sp_tmpdir('compat-mode');
sp_cycle("files://$dir640?mode=0640", 'modeid', function () { $_SESSION['v'] = 1; });
echo "mode=0640: ", perms("$dir640/sess_modeid"), "\n";

// --- depth=2: PHP's "2;DIR" ------------------------------------------------------------------
$deep = sp_tmpdir('compat-deep');
$deepDsn = "files://$deep?depth=2";
mkdir("$deep/a/b", 0700, true); // PHP's handler does not create these itself
php_files_write("2;$deep", 'abphp', $data);
echo "PHP wrote a/b/sess_abphp: ", sp_yn(is_file("$deep/a/b/sess_abphp")), "\n";
echo "session_proxy (depth=2) reads it in another process: ", same(sp_child_read($deepDsn, 'abphp'), $data), "\n";

sp_cycle($deepDsn, 'abproxy', function () use ($data) { $_SESSION = $data; });
echo "session_proxy wrote a/b/sess_abproxy: ", sp_yn(is_file("$deep/a/b/sess_abproxy")), ", mode ", perms("$deep/a/b/sess_abproxy"), "\n";
echo "PHP's handler (2;DIR) reads it in another process: ",
    same(sp_child_read($deep, 'abproxy', $php + ['session.save_path' => sp_q("2;$deep")]), $data), "\n";

// session_proxy creates the sub-directories PHP needs; PHP then reads the session there.
sp_cycle($deepDsn, 'xyproxy', function () use ($data) { $_SESSION = $data; });
echo "session_proxy created x/y/sess_xyproxy: ", sp_yn(is_file("$deep/x/y/sess_xyproxy")), "\n";
echo "PHP's handler reads it: ", same(sp_child_read($deep, 'xyproxy', $php + ['session.save_path' => sp_q("2;$deep")]), $data), "\n";
echo "files in the tree: ", json_encode(sp_tree($deep), JSON_UNESCAPED_SLASHES), "\n";

// gc with depth=2 finds the nested files (PHP's handler leaves gc of nested dirs to cron).
sp_use($deepDsn, ['session.gc_maxlifetime' => '1']);
touch("$deep/a/b/sess_abphp", time() - 100);
touch("$deep/x/y/sess_xyproxy", time() - 100);
touch("$deep/a/b/sess_abproxy"); // fresh: kept
session_id('abgc');
session_start();
echo "gc with depth=2 deleted: ", var_export(session_gc(), true), "\n";
session_abort();
echo "files in the tree: ", json_encode(sp_tree($deep), JSON_UNESCAPED_SLASHES), "\n";
?>
--EXPECT--
PHP wrote sess_fromphp: yes
session_proxy reads it in another process: same data
session_proxy wrote sess_fromproxy: yes, mode 0600
PHP's handler reads it in another process: same data
same bytes as PHP writes: yes
PHP reads session_proxy's update: n=43, user=alice
mode after session_proxy rewrote PHP's file: 0600
files in the directory: ["sess_fromphp","sess_fromproxy"]
mode=0640: 0640
PHP wrote a/b/sess_abphp: yes
session_proxy (depth=2) reads it in another process: same data
session_proxy wrote a/b/sess_abproxy: yes, mode 0600
PHP's handler (2;DIR) reads it in another process: same data
session_proxy created x/y/sess_xyproxy: yes
PHP's handler reads it: same data
files in the tree: ["a","a/b","a/b/sess_abphp","a/b/sess_abproxy","x","x/y","x/y/sess_xyproxy"]
gc with depth=2 deleted: 2
files in the tree: ["a","a/b","a/b/sess_abgc (lock only)","a/b/sess_abproxy","x","x/y"]
