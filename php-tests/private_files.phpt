--TEST--
Files another local user planted are refused, on both engines, with a warning naming the path, the owner, the mode and the fix: a planted database, a planted symlink, a foreign-owned WAL, a planted sess_ file, a planted zero-config directory; the zero-config database is in a private per-uid directory; a file we may not open says so; as root too
--SKIPIF--
<?php
if (trim((string) shell_exec('id -u')) !== '0') {
    die('skip creates two system users: needs root');
}
?>
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

// Two system users of this test's own, unique names (parallel runs), removed when the test ends. The
// victim is not root: root passes every permission check of the kernel and of PHP's own logic.
$users = [];
register_shutdown_function(function () use (&$users) {
    foreach ($users as $u) {
        exec('userdel ' . escapeshellarg($u) . ' 2>&1');
    }
});
function make_user(string $tag): array
{
    global $users;
    $name = 'sp' . $tag . bin2hex(random_bytes(4));
    exec('useradd -r -M -N -d /nonexistent -s /usr/sbin/nologin ' . escapeshellarg($name) . ' 2>&1', $out, $rc);
    if ($rc !== 0) {
        throw new RuntimeException("useradd $name failed: " . implode(' ', $out));
    }
    $users[] = $name;
    return ['name' => $name, 'uid' => (int) trim((string) shell_exec('id -u ' . escapeshellarg($name)))];
}
$attacker = make_user('a');
$victim = make_user('v');

// A shared area like /tmp: BASE (0711, only traversable) holds the extension and the child scripts
// (readable by the users), BASE/pub is world-writable with the sticky bit.
$base = sp_tmpdir('private');
chmod($base, 0711);
copy(sp_so(), "$base/session_proxy.so");
chmod("$base/session_proxy.so", 0644);
putenv("SESSION_PROXY_SO=$base/session_proxy.so");
$pub = "$base/pub";
mkdir($pub);
chmod($pub, 01777);

/** $s with the test's paths, users and uids replaced by BASE, ATTACKER/A, VICTIM/V; no blank lines. */
function norm(string $s): string
{
    global $base, $attacker, $victim;
    $s = str_replace(
        [$base, "uid {$attacker['uid']} ({$attacker['name']})", "uid {$victim['uid']} ({$victim['name']})",
            "chown {$victim['uid']} ", "session_proxy-{$victim['uid']}"],
        ['BASE', 'uid A (ATTACKER)', 'uid V (VICTIM)', 'chown V ', 'session_proxy-V'],
        $s
    );
    return preg_replace(['/ in \S+ on line \d+$/m', '/^\R/m'], '', trim($s));
}

/** Runs $code as $user (null: root) with $ini; returns its output, normalised. */
function run_as(?array $user, string $code, array $ini): string
{
    global $base;
    static $n = 0;
    $script = "$base/child" . ++$n . '.php';
    file_put_contents($script, "<?php\n$code");
    chmod($script, 0644);
    $cmd = ($user ? 'runuser -u ' . escapeshellarg($user['name']) . ' -- ' : '') . sp_php_cmd($script, $ini) . ' 2>&1';
    return norm((string) shell_exec($cmd)) . "\n";
}

// The victim's request: stores user=admin in session "victimsid1" (or prints what it could not do).
const VICTIM = '
    session_id("victimsid1");
    $ok = session_start();
    echo "start=", json_encode($ok), "\n";
    if ($ok) {
        $_SESSION["user"] = "admin";
        session_write_close();
    }
';
function victim(string $savePath, array $ini = []): void
{
    global $victim;
    echo run_as($victim, VICTIM, ['session.save_path' => sp_q($savePath)] + $ini);
}
/** The attacker makes $path (a file of theirs, mode $mode). */
function plant(string $path, int $mode, string $data = ''): void
{
    global $attacker;
    run_as($attacker, 'file_put_contents(' . var_export($path, true) . ', ' . var_export($data, true) . ');'
        . 'chmod(' . var_export($path, true) . ', ' . $mode . ');', []);
    clearstatcache();
    printf("planted %s: owner %s, mode %04o\n", norm($path),
        fileowner($path) === $attacker['uid'] ? 'ATTACKER' : fileowner($path), fileperms($path) & 07777);
}
/** The attacker's symlink $link to $target. */
function plant_link(string $target, string $link): void
{
    global $attacker;
    symlink($target, $link);
    exec('chown -h ' . escapeshellarg($attacker['name']) . ' ' . escapeshellarg($link));
}
function no_admin(string ...$paths): string
{
    $all = '';
    foreach ($paths as $p) {
        $all .= (string) @file_get_contents($p);
    }
    return str_contains($all, 'admin') ? 'NO: it holds the session' : 'yes';
}

echo "== zero config: another user made the victim's directory first\n";
mkdir("$base/tmp1");
chmod("$base/tmp1", 01777);
$dir = "$base/tmp1/session_proxy-{$victim['uid']}";
run_as($attacker, 'mkdir(' . var_export($dir, true) . '); chmod(' . var_export($dir, true) . ', 0777);', []);
plant("$dir/session_proxy.sqlite", 0666);
victim('', ['sys_temp_dir' => "$base/tmp1"]);
echo 'the planted database received nothing: ', no_admin("$dir/session_proxy.sqlite", "$dir/session_proxy.sqlite-wal"), "\n";

echo "== zero config: a clean temp dir\n";
mkdir("$base/tmp2");
chmod("$base/tmp2", 01777);
victim('', ['sys_temp_dir' => "$base/tmp2"]);
$dir = "$base/tmp2/session_proxy-{$victim['uid']}";
clearstatcache();
printf("directory: owner %s, mode %04o; database mode %04o\n", fileowner($dir) === $victim['uid'] ? 'VICTIM' : fileowner($dir),
    fileperms($dir) & 07777, fileperms("$dir/session_proxy.sqlite") & 07777);
echo run_as($attacker, 'var_dump(@file_get_contents(' . var_export("$dir/session_proxy.sqlite", true) . '));', []);

echo "== a database another user planted\n";
plant("$pub/shared.sqlite", 0666);
victim("sqlite://$pub/shared.sqlite");
echo 'the planted database received nothing: ', no_admin("$pub/shared.sqlite", "$pub/shared.sqlite-wal"), "\n";

echo "== a planted symlink\n";
plant("$pub/target.sqlite", 0666);
plant_link("$pub/target.sqlite", "$pub/link.sqlite");
victim("sqlite://$pub/link.sqlite");
echo 'the symlink target received nothing: ', no_admin("$pub/target.sqlite", "$pub/target.sqlite-wal"), "\n";

echo "== a foreign-owned WAL beside the victim's own database\n";
victim("sqlite://$pub/victim.sqlite");
// Folded into the database and its -wal/-shm removed, as SQLite does when the last connection closes...
sp_sql_script("$pub/victim.sqlite", '$db->exec("PRAGMA wal_checkpoint(TRUNCATE)"); return 1;');
@unlink("$pub/victim.sqlite-wal");
@unlink("$pub/victim.sqlite-shm");
// ... which is when another user can create them.
plant("$pub/victim.sqlite-wal", 0666);
victim("sqlite://$pub/victim.sqlite");
echo 'the planted WAL received nothing: ', no_admin("$pub/victim.sqlite-wal"), "\n";

echo "== the victim's own database, readable by everyone\n";
run_as($victim, 'chmod(' . var_export("$pub/victim.sqlite", true) . ', 0644);', []);
@unlink("$pub/victim.sqlite-wal");
victim("sqlite://$pub/victim.sqlite");

echo "== another user's private database: the warning says why it cannot be opened\n";
plant("$pub/theirs.sqlite", 0600);
victim("sqlite://$pub/theirs.sqlite");

echo "== files: a planted sess_ file and a planted symlink\n";
mkdir("$pub/files");
chmod("$pub/files", 01777);
plant("$pub/files/sess_victimsid1", 0666, 'user|s:5:"guest";');
victim("files://$pub/files");
echo 'the planted file received nothing: ', no_admin("$pub/files/sess_victimsid1"), "\n";
unlink("$pub/files/sess_victimsid1");
plant("$pub/files/target", 0666);
plant_link("$pub/files/target", "$pub/files/sess_victimsid1");
victim("files://$pub/files");
echo 'the symlink target received nothing: ', no_admin("$pub/files/target"), "\n";

echo "== as root: a planted database is refused too\n";
echo run_as(null, VICTIM, ['session.save_path' => sp_q("sqlite://$pub/shared.sqlite")]);
echo 'the planted database received nothing: ', no_admin("$pub/shared.sqlite", "$pub/shared.sqlite-wal"), "\n";
?>
--EXPECT--
== zero config: another user made the victim's directory first
planted BASE/tmp1/session_proxy-V/session_proxy.sqlite: owner ATTACKER, mode 0666
Warning: session_start(): session_proxy: cannot open sqlite://BASE/tmp1/session_proxy-V/session_proxy.sqlite: refusing directory BASE/tmp1/session_proxy-V: it is owned by uid A (ATTACKER), mode 0777, and this process runs as uid V (VICTIM); another user may have made it: remove it (or set session.save_path)
Warning: session_start(): Failed to initialize storage module: session_proxy (path: )
start=false
the planted database received nothing: yes
== zero config: a clean temp dir
start=true
directory: owner VICTIM, mode 0700; database mode 0600
bool(false)
== a database another user planted
planted BASE/pub/shared.sqlite: owner ATTACKER, mode 0666
Warning: session_start(): session_proxy: cannot open sqlite://BASE/pub/shared.sqlite: refusing BASE/pub/shared.sqlite: it is owned by uid A (ATTACKER), mode 0666, and this process runs as uid V (VICTIM); another user may have planted it: remove it, or if it is yours, `chown V BASE/pub/shared.sqlite` and `chmod 0600 BASE/pub/shared.sqlite`
Warning: session_start(): Failed to initialize storage module: session_proxy (path: sqlite://BASE/pub/shared.sqlite)
start=false
the planted database received nothing: yes
== a planted symlink
planted BASE/pub/target.sqlite: owner ATTACKER, mode 0666
Warning: session_start(): session_proxy: cannot open sqlite://BASE/pub/link.sqlite: refusing BASE/pub/link.sqlite: it is a symbolic link (to BASE/pub/target.sqlite, owned by uid A (ATTACKER)); symlinks are never followed: remove it
Warning: session_start(): Failed to initialize storage module: session_proxy (path: sqlite://BASE/pub/link.sqlite)
start=false
the symlink target received nothing: yes
== a foreign-owned WAL beside the victim's own database
start=true
planted BASE/pub/victim.sqlite-wal: owner ATTACKER, mode 0666
Warning: session_start(): session_proxy: cannot open sqlite://BASE/pub/victim.sqlite: refusing BASE/pub/victim.sqlite-wal: it is owned by uid A (ATTACKER), mode 0666, and this process runs as uid V (VICTIM); another user may have planted it: remove it, or if it is yours, `chown V BASE/pub/victim.sqlite-wal` and `chmod 0600 BASE/pub/victim.sqlite-wal`
Warning: session_start(): Failed to initialize storage module: session_proxy (path: sqlite://BASE/pub/victim.sqlite)
start=false
the planted WAL received nothing: yes
== the victim's own database, readable by everyone
Warning: session_start(): session_proxy: cannot open sqlite://BASE/pub/victim.sqlite: refusing BASE/pub/victim.sqlite: mode 0644 (owner uid V (VICTIM)) gives access beyond 0600; session data is secret: `chmod 0600 BASE/pub/victim.sqlite`
Warning: session_start(): Failed to initialize storage module: session_proxy (path: sqlite://BASE/pub/victim.sqlite)
start=false
== another user's private database: the warning says why it cannot be opened
planted BASE/pub/theirs.sqlite: owner ATTACKER, mode 0600
Warning: session_start(): session_proxy: cannot open sqlite://BASE/pub/theirs.sqlite: Permission denied (os error 13): BASE/pub/theirs.sqlite is owned by uid A (ATTACKER), mode 0600, and this process runs as uid V (VICTIM): give the file to the user PHP runs as (`chown`), or remove it
Warning: session_start(): Failed to initialize storage module: session_proxy (path: sqlite://BASE/pub/theirs.sqlite)
start=false
== files: a planted sess_ file and a planted symlink
planted BASE/pub/files/sess_victimsid1: owner ATTACKER, mode 0666
Warning: session_start(): session_proxy: cannot lock session victim… in files://BASE/pub/files: cannot open BASE/pub/files/sess_victimsid1: refusing BASE/pub/files/sess_victimsid1: it is owned by uid A (ATTACKER), mode 0666, and this process runs as uid V (VICTIM); another user may have planted it: remove it, or if it is yours, `chown V BASE/pub/files/sess_victimsid1` and `chmod 0600 BASE/pub/files/sess_victimsid1`
Warning: session_start(): Failed to read session data: session_proxy (path: files://BASE/pub/files)
start=false
the planted file received nothing: yes
planted BASE/pub/files/target: owner ATTACKER, mode 0666
Warning: session_start(): session_proxy: cannot lock session victim… in files://BASE/pub/files: cannot open BASE/pub/files/sess_victimsid1: refusing BASE/pub/files/sess_victimsid1: it is a symbolic link (to BASE/pub/files/target, owned by uid A (ATTACKER)); symlinks are never followed: remove it
Warning: session_start(): Failed to read session data: session_proxy (path: files://BASE/pub/files)
start=false
the symlink target received nothing: yes
== as root: a planted database is refused too
Warning: session_start(): session_proxy: cannot open sqlite://BASE/pub/shared.sqlite: refusing BASE/pub/shared.sqlite: it is owned by uid A (ATTACKER), mode 0666, and this process runs as uid 0 (root); another user may have planted it: remove it, or if it is yours, `chown 0 BASE/pub/shared.sqlite` and `chmod 0600 BASE/pub/shared.sqlite`
Warning: session_start(): Failed to initialize storage module: session_proxy (path: sqlite://BASE/pub/shared.sqlite)
start=false
the planted database received nothing: yes
