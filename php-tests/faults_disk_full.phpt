--TEST--
Faults: a full disk (a size-limited tmpfs) and a read-only file system (remounted ro) on both engines: a warning naming the cause, the old session intact, no temp file left, writes work again once there is room, also within one PHP process
--SKIPIF--
<?php
// Needs a private mount namespace (root or CAP_SYS_ADMIN): the tmpfs is seen by this test's processes only.
$d = sys_get_temp_dir() . '/sp-phpt-mntprobe-' . getmypid();
@mkdir($d);
exec('unshare -m sh -c ' . escapeshellarg('mount -t tmpfs -o size=64k tmpfs ' . escapeshellarg($d)) . ' 2>&1', $out, $rc);
@rmdir($d);
if ($rc !== 0) {
    die('skip cannot mount a tmpfs in a private mount namespace: ' . implode(' ', $out));
}
?>
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

// The child: one session cycle on session "fullsid1" storing $argv[1] random bytes (or "-": only read,
// printing the size and a hash of what is stored).
$child = sp_script(<<<'PHP'
session_id('fullsid1');
if ($argv[1] === '-') {
    ini_set('session_proxy.locking', '0');
    $ok = session_start(['read_and_close' => true]);
    echo 'stored: ', $ok ? (isset($_SESSION['v']) ? strlen($_SESSION['v']) . ' bytes, tag ' . $_SESSION['tag'] : 'nothing') : 'unreadable', "\n";
    exit;
}
$ok = session_start();
echo 'start=', json_encode($ok), "\n";
if ($ok) {
    $_SESSION['v'] = random_bytes((int) $argv[1]);
    $_SESSION['tag'] = $argv[2];
    session_write_close();
}
echo "end\n";
PHP);

// The same faults in ONE PHP process (its pooled connection kept): a session stored, the disk filled by
// the process itself up to 64 KiB, a 200 KiB write refused, the filler removed, the next request's
// write stored. $argv[1]: the mount point.
$one = sp_script(<<<'PHP'
function req(string $label, int $bytes): void
{
    session_id('onefull1');
    $ok = session_start();
    echo "$label: start=", json_encode($ok);
    if ($ok) {
        $_SESSION['v'] = str_repeat('v', $bytes);
        // PHP 8.2's session_write_close() returns true even when the write failed: the warnings say it.
        $wrote = session_write_close();
        echo ' write=', json_encode($wrote);
    }
    echo "\n";
}
function stored(): void
{
    ini_set('session_proxy.locking', '0');
    session_id('onefull1');
    $ok = session_start(['read_and_close' => true]);
    echo 'stored: ', $ok ? strlen($_SESSION['v'] ?? '') . ' bytes' : 'unreadable', "\n";
    ini_set('session_proxy.locking', '1');
}
$pid = getmypid();
req('first', 20000);
$h = fopen("$argv[1]/filler", 'wb');
fwrite($h, str_repeat("\0", (int) disk_free_space($argv[1]) - 64 * 1024));
fclose($h);
req('disk full', 200000);
stored();
unlink("$argv[1]/filler");
req('room again', 200000);
stored();
echo 'one process: ', var_export(getmypid() === $pid, true), "\n";
PHP);

foreach (['sqlite', 'files'] as $engine) {
    echo "== $engine\n";
    $mnt = sp_tmpdir("full-$engine");
    $mnt1 = sp_tmpdir("full1-$engine");
    $dsn1 = $engine === 'sqlite' ? "sqlite://$mnt1/s.sqlite" : "files://$mnt1";
    $dsn = $engine === 'sqlite' ? "sqlite://$mnt/s.sqlite" : "files://$mnt/files";
    $php = fn (string ...$args) => sp_php_cmd($child, ['session.save_path' => sp_q($dsn)])
        . implode('', array_map(fn ($a) => ' ' . escapeshellarg($a), $args)) . ' 2>&1 || echo "child PHP: exit status $?"';
    $m = escapeshellarg($mnt);
    // Everything runs in one shell inside a private mount namespace; the tmpfs goes with it. 2 MiB: a
    // files-engine write needs room for the session twice while it runs (its redo journal and the file).
    $script = implode("\n", [
        'set -u',
        "mount -t tmpfs -o size=2m,mode=0700 tmpfs $m || exit 1",
        "mkdir $m/files",
        'echo "-- a 20 KiB session is stored"',
        $php('20000', 'old'),
        $php('-'),
        'echo "-- the disk is filled up to 128 KiB; a 512 KiB write must fail"',
        "avail=\$(df --output=avail -k $m | tail -1)",
        "head -c \$(( (avail - 128) * 1024 )) /dev/zero > $m/filler",
        $php('524288', 'new'),
        $php('-'),
        "echo \"entries: [\$(ls -A $m | grep -v '^filler\$' | xargs)]\"",
        "echo \"files/: [\$(ls -A $m/files | xargs)]\"",
        'echo "-- room again"',
        "rm $m/filler",
        $php('524288', 'new'),
        $php('-'),
        'echo "-- one PHP process: a session stored, the disk filled, a write refused, room again"',
        'mount -t tmpfs -o size=1m,mode=0700 tmpfs ' . escapeshellarg($mnt1) . ' || exit 1',
        sp_php_cmd($one, ['session.save_path' => sp_q($dsn1)]) . ' ' . escapeshellarg($mnt1) . ' 2>&1 || echo "child PHP: exit status $?"',
        'echo "-- the file system is remounted read-only"',
        "mount -o remount,ro $m || exit 1",
        $php('1000', 'ro'),
        $php('-'),
        "echo \"files/: [\$(ls -A $m/files | xargs)]\"",
    ]);
    $out = sp_run('unshare -m sh -c ' . escapeshellarg($script));
    $out = preg_replace('/ in \S+ on line \d+$/m', '', str_replace([$mnt1, $mnt], ['MNT1', 'MNT'], $out));
    foreach (preg_split('/\R/', trim($out)) as $line) {
        if ($line !== '') {
            echo "$line\n";
        }
    }
}
?>
--EXPECT--
== sqlite
-- a 20 KiB session is stored
start=true
end
stored: 20000 bytes, tag old
-- the disk is filled up to 128 KiB; a 512 KiB write must fail
start=true
Warning: session_write_close(): session_proxy: cannot write session fullsi… (524316 bytes) to sqlite://MNT/s.sqlite: database or disk is full; the stored session is unchanged
Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (sqlite://MNT/s.sqlite)
end
stored: 20000 bytes, tag old
entries: [files s.sqlite s.sqlite-locks s.sqlite-shm s.sqlite-wal]
files/: []
-- room again
start=true
end
stored: 524288 bytes, tag new
-- one PHP process: a session stored, the disk filled, a write refused, room again
first: start=true write=true
disk full: start=true
Warning: session_write_close(): session_proxy: cannot write session oneful… (200014 bytes) to sqlite://MNT1/s.sqlite: database or disk is full; the stored session is unchanged
Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (sqlite://MNT1/s.sqlite)
 write=true
stored: 20000 bytes
room again: start=true write=true
stored: 200000 bytes
one process: true
-- the file system is remounted read-only
Warning: session_start(): session_proxy: cannot lock session fullsi… in sqlite://MNT/s.sqlite: attempt to write a readonly database
Warning: session_start(): Failed to read session data: session_proxy (path: sqlite://MNT/s.sqlite)
start=false
end
stored: 524288 bytes, tag new
files/: []
== files
-- a 20 KiB session is stored
start=true
end
stored: 20000 bytes, tag old
-- the disk is filled up to 128 KiB; a 512 KiB write must fail
start=true
Warning: session_write_close(): session_proxy: cannot write session fullsi… (524316 bytes) to files://MNT/files: cannot write MNT/files/sess_fullsid1: No space left on device (os error 28); the stored session is unchanged
Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (files://MNT/files)
end
stored: 20000 bytes, tag old
entries: [files]
files/: [sess_fullsid1]
-- room again
start=true
end
stored: 524288 bytes, tag new
-- one PHP process: a session stored, the disk filled, a write refused, room again
first: start=true write=true
disk full: start=true
Warning: session_write_close(): session_proxy: cannot write session oneful… (200014 bytes) to files://MNT1: cannot write MNT1/sess_onefull1: No space left on device (os error 28); the stored session is unchanged
Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (files://MNT1)
 write=true
stored: 20000 bytes
room again: start=true write=true
stored: 200000 bytes
one process: true
-- the file system is remounted read-only
Warning: session_start(): session_proxy: cannot open files://MNT/files: directory MNT/files is not writable
Warning: session_start(): Failed to initialize storage module: session_proxy (path: files://MNT/files)
start=false
end
Warning: session_start(): session_proxy: cannot open files://MNT/files: directory MNT/files is not writable
Warning: session_start(): Failed to initialize storage module: session_proxy (path: files://MNT/files)
stored: unreadable
files/: [sess_fullsid1]
