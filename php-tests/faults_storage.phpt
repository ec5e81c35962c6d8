--TEST--
Faults: storage made read-only, removed, replaced or corrupted before or during a request, on both engines: a warning naming the cause, no crash, the stored session never silently lost or half-written, no stray temp file
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

// Read-only storage. chmod does not stop root, so as root the file or directory is made immutable
// (chattr +i: binds root too, on ext2/3/4, xfs, btrfs); otherwise its write bits are removed.
$GLOBALS['frozen'] = [];
register_shutdown_function(function () {
    foreach (array_reverse($GLOBALS['frozen']) as $p) {
        thaw($p);
    }
});
$asRoot = trim((string) shell_exec('id -u')) === '0';
function freeze(string $p): void
{
    global $asRoot;
    $GLOBALS['frozen'][] = $p;
    if ($asRoot) {
        exec('chattr +i ' . escapeshellarg($p) . ' 2>&1', $out, $rc);
        if ($rc !== 0) {
            echo "cannot make $p immutable: ", implode(' ', $out), "\n";
        }
    } else {
        chmod($p, is_dir($p) ? 0500 : 0400);
    }
}
function thaw(string $p): void
{
    global $asRoot;
    if ($asRoot) {
        exec('chattr -i ' . escapeshellarg($p) . ' 2>/dev/null');
    } else {
        @chmod($p, is_dir($p) ? 0700 : 0600);
    }
}

// The child: one session cycle on session "faultsid1" setting v=$argv[1]; $argv[2], if given, is a
// shell command run between read and write (the fault happens while the request holds the session).
// With $argv[1] === '-' it only reads (read_and_close, no lock) and prints what is stored.
$child = sp_script(<<<'PHP'
session_id('faultsid1');
if ($argv[1] === '-') {
    ini_set('session_proxy.locking', '0');
    $ok = session_start(['read_and_close' => true]);
    echo 'stored: ', $ok ? json_encode($_SESSION['v'] ?? null) : 'unreadable', "\n";
    exit;
}
$ok = session_start();
echo 'start=', json_encode($ok), ' v=', json_encode($_SESSION['v'] ?? null), "\n";
if ($ok) {
    $_SESSION['v'] = $argv[1];
    if (($argv[2] ?? '') !== '') {
        shell_exec($argv[2]);
    }
    session_write_close();
}
echo "end\n";
PHP);

/** Runs the child and prints its output, paths shown as DIR, blank lines and "in FILE on line N" dropped. */
function run(string $dsn, string $dir, string $value, string $mid = ''): void
{
    global $child;
    $out = sp_run(sp_php_cmd($child, ['session.save_path' => sp_q($dsn)]) . ' '
        . escapeshellarg($value) . ' ' . escapeshellarg($mid));
    $out = preg_replace('/ in \S+ on line \d+$/m', '', str_replace($dir, 'DIR', $out));
    foreach (preg_split('/\R/', trim($out)) as $line) {
        if ($line !== '') {
            echo "  $line\n";
        }
    }
}

/** Entries of $dir other than the engine's own files (a leftover temp file, a stray database). */
function stray(string $engine, string $dir): string
{
    if (!is_dir($dir)) {
        return 'directory gone';
    }
    $own = $engine === 'sqlite' ? ['sessions.sqlite', 'sessions.sqlite-wal', 'sessions.sqlite-shm', 'sessions.sqlite-locks', 'files'] : ['sess_faultsid1'];
    $left = array_diff(scandir($dir), ['.', '..'], $own);
    return $left ? implode(' ', $left) : 'none';
}

// label => [engines, before the request, during the request (between read and write), after].
// With SQLite, a read-only directory or a database file made read-only mid-request does not stop a
// write: it goes to the database's -wal file, which exists already (and is checkpointed later), so the
// session is stored, and reported so.
$scenarios = [
    'file read-only before the request' => ['both', fn ($f) => freeze($f['file']), '', fn ($f) => thaw($f['file'])],
    'directory read-only before the request' => ['both', fn ($f) => freeze($f['dir']), '', fn ($f) => thaw($f['dir'])],
    'file made read-only during the request' => ['both', null, 'FREEZE_FILE', fn ($f) => thaw($f['file'])],
    'directory removed during the request' => ['both', null, 'RMDIR', null],
    'database replaced by another database during the request' => ['sqlite', null, 'REPLACE', null],
    'database replaced by garbage during the request' => ['sqlite', null, 'GARBAGE', null],
    'database pages corrupted' => ['sqlite', 'CORRUPT', '', null],
    'session file holds garbage' => ['files', 'GARBAGE_SESS', '', null],
    'session file replaced by a directory' => ['files', 'SESS_DIR', '', fn ($f) => rmdir($f['file'])],
];

$n = 0;
foreach ($scenarios as $label => [$only, $before, $mid, $after]) {
    foreach (['sqlite', 'files'] as $engine) {
        if ($only !== 'both' && $only !== $engine) {
            continue;
        }
        $dsn = sp_engines('faults' . ++$n)[$engine];
        $dir = $engine === 'sqlite' ? dirname(sp_dsn_path($dsn)) : sp_dsn_path($dsn);
        $f = ['dir' => $dir, 'file' => $engine === 'sqlite' ? "$dir/sessions.sqlite" : "$dir/sess_faultsid1"];
        echo "== $label [$engine]\n";
        run($dsn, $dir, 'old', '');
        $oldSum = md5_file($f['file']);

        if ($before === 'CORRUPT') {
            // Move everything into the main file, then overwrite pages 2..4 (the sessions table and
            // its indexes) with garbage.
            sp_sql_script($f['file'], '$db->exec("PRAGMA wal_checkpoint(TRUNCATE)"); return 1;');
            $h = fopen($f['file'], 'r+b');
            fseek($h, 4096);
            fwrite($h, str_repeat("\xde\xad\xbe\xef", 3 * 1024));
            fclose($h);
            $oldSum = md5_file($f['file']);
        } elseif ($before === 'GARBAGE_SESS') {
            file_put_contents($f['file'], "\x00garbage|not:a;session\xff");
            $oldSum = md5_file($f['file']);
        } elseif ($before === 'SESS_DIR') {
            unlink($f['file']);
            mkdir($f['file']);
        } elseif ($before) {
            $before($f);
        }

        $cmd = '';
        if ($mid === 'FREEZE_FILE') {
            $GLOBALS['frozen'][] = $f['file'];
            $cmd = $asRoot ? 'chattr +i ' . escapeshellarg($f['file']) : 'chmod 0400 ' . escapeshellarg($f['file']);
        } elseif ($mid === 'RMDIR') {
            $cmd = 'rm -rf ' . escapeshellarg($dir);
        } elseif ($mid === 'REPLACE') {
            // A restore done right: another database (its WAL folded in) moved over the file, the old
            // -wal/-shm removed with it.
            $other = sp_engines('faults-other' . $n)['sqlite'];
            run($other, dirname(sp_dsn_path($other)), 'restored', '');
            sp_sql_script(sp_dsn_path($other), '$db->exec("PRAGMA wal_checkpoint(TRUNCATE)"); return 1;');
            $cmd = 'mv ' . escapeshellarg(sp_dsn_path($other)) . ' ' . escapeshellarg($f['file'])
                . ' && rm -f ' . escapeshellarg($f['file'] . '-wal') . ' ' . escapeshellarg($f['file'] . '-shm');
        } elseif ($mid === 'GARBAGE') {
            // The whole database (its -wal/-shm too: SQLite would still read pages from them).
            $cmd = 'head -c 8192 /dev/urandom > ' . escapeshellarg("$dir/garbage") . ' && chmod 600 ' . escapeshellarg("$dir/garbage") . ' && mv ' . escapeshellarg("$dir/garbage")
                . ' ' . escapeshellarg($f['file']) . ' && rm -f ' . escapeshellarg($f['file'] . '-wal') . ' '
                . escapeshellarg($f['file'] . '-shm');
        }
        run($dsn, $dir, 'new', $cmd);
        clearstatcache();
        if ($before === 'CORRUPT') {
            echo '  file bytes unchanged by the handler: ', sp_yn(md5_file($f['file']) === $oldSum), "\n";
        } elseif ($before === 'GARBAGE_SESS') {
            // PHP cannot decode it and destroys the session (PHP's behaviour, through our destroy).
            echo '  session file removed: ', sp_yn(!file_exists($f['file'])), "\n";
        }
        if ($after) {
            $after($f);
        }
        echo '  after the fault is lifted:', "\n";
        run($dsn, $dir, '-');
        echo '  stray files: ', stray($engine, $dir), "\n";
        if ($mid === 'RMDIR') {
            mkdir($dir, 0700, true);
            echo '  directory recreated:', "\n";
            run($dsn, $dir, 'fresh');
            run($dsn, $dir, '-');
        }
    }
}
?>
--EXPECTF--
== file read-only before the request [sqlite]
  start=true v=null
  end
  Warning: session_start(): session_proxy: cannot lock session faults… in sqlite://DIR/sessions.sqlite: attempt to write a readonly database
  Warning: session_start(): Failed to read session data: session_proxy (path: sqlite://DIR/sessions.sqlite)
  start=false v=null
  end
  after the fault is lifted:
  stored: "old"
  stray files: none
== file read-only before the request [files]
  start=true v=null
  end
  Warning: session_start(): session_proxy: cannot lock session faults… in files://DIR: cannot open DIR/sess_faultsid1: %s
  Warning: session_start(): Failed to read session data: session_proxy (path: files://DIR)
  start=false v=null
  end
  after the fault is lifted:
  stored: "old"
  stray files: none
== directory read-only before the request [sqlite]
  start=true v=null
  end
  start=true v="old"
  end
  after the fault is lifted:
  stored: "new"
  stray files: none
== directory read-only before the request [files]
  start=true v=null
  end
  Warning: session_start(): session_proxy: cannot open files://DIR: directory DIR is not writable
  Warning: session_start(): Failed to initialize storage module: session_proxy (path: files://DIR)
  start=false v=null
  end
  after the fault is lifted:
  stored: "old"
  stray files: none
== file made read-only during the request [sqlite]
  start=true v=null
  end
  start=true v="old"
  end
  after the fault is lifted:
  stored: "new"
  stray files: none
== file made read-only during the request [files]
  start=true v=null
  end
  start=true v="old"
  Warning: session_write_close(): session_proxy: cannot write session faults… (12 bytes) to files://DIR: cannot write DIR/sess_faultsid1: %s; the stored session is unchanged
  Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (files://DIR)
  end
  after the fault is lifted:
  stored: "old"
  stray files: none
== directory removed during the request [sqlite]
  start=true v=null
  end
  start=true v="old"
  Warning: session_write_close(): session_proxy: cannot write session faults… (12 bytes) to sqlite://DIR/sessions.sqlite: the database file DIR/sessions.sqlite was removed or replaced while this request ran; the stored session is unchanged
  Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (sqlite://DIR/sessions.sqlite)
  end
  after the fault is lifted:
  Warning: session_start(): session_proxy: cannot open sqlite://DIR/sessions.sqlite: directory DIR does not exist
  Warning: session_start(): Failed to initialize storage module: session_proxy (path: sqlite://DIR/sessions.sqlite)
  stored: unreadable
  stray files: directory gone
  directory recreated:
  start=true v=null
  end
  stored: "fresh"
== directory removed during the request [files]
  start=true v=null
  end
  start=true v="old"
  Warning: session_write_close(): session_proxy: cannot write session faults… (12 bytes) to files://DIR: cannot write DIR/sess_faultsid1: No such file or directory (os error 2); the stored session is unchanged
  Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (files://DIR)
  end
  after the fault is lifted:
  Warning: session_start(): session_proxy: cannot open files://DIR: directory DIR is not accessible: No such file or directory (os error 2)
  Warning: session_start(): Failed to initialize storage module: session_proxy (path: files://DIR)
  stored: unreadable
  stray files: directory gone
  directory recreated:
  start=true v=null
  end
  stored: "fresh"
== database replaced by another database during the request [sqlite]
  start=true v=null
  end
  start=true v=null
  end
  start=true v="old"
  Warning: session_write_close(): session_proxy: cannot write session faults… (12 bytes) to sqlite://DIR/sessions.sqlite: the database file DIR/sessions.sqlite was removed or replaced while this request ran; the stored session is unchanged
  Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (sqlite://DIR/sessions.sqlite)
  end
  after the fault is lifted:
  stored: "restored"
  stray files: none
== database replaced by garbage during the request [sqlite]
  start=true v=null
  end
  start=true v="old"
  Warning: session_write_close(): session_proxy: cannot write session faults… (12 bytes) to sqlite://DIR/sessions.sqlite: the database file DIR/sessions.sqlite was removed or replaced while this request ran; the stored session is unchanged
  Warning: session_write_close(): Failed to write session data (session_proxy). Please verify that the current setting of session.save_path is correct (sqlite://DIR/sessions.sqlite)
  end
  after the fault is lifted:
  Warning: session_start(): session_proxy: cannot open sqlite://DIR/sessions.sqlite: file is not a database
  Warning: session_start(): Failed to initialize storage module: session_proxy (path: sqlite://DIR/sessions.sqlite)
  stored: unreadable
  stray files: none
== database pages corrupted [sqlite]
  start=true v=null
  end
  Warning: session_start(): session_proxy: cannot lock session faults… in sqlite://DIR/sessions.sqlite: database disk image is malformed
  Warning: session_start(): Failed to read session data: session_proxy (path: sqlite://DIR/sessions.sqlite)
  start=false v=null
  end
  file bytes unchanged by the handler: yes
  after the fault is lifted:
  Warning: session_start(): session_proxy: cannot read session faults… from sqlite://DIR/sessions.sqlite: database disk image is malformed
  Warning: session_start(): Failed to read session data: session_proxy (path: sqlite://DIR/sessions.sqlite)
  stored: unreadable
  stray files: none
== session file holds garbage [files]
  start=true v=null
  end
  Warning: session_start(): Failed to decode session object. Session has been destroyed
  start=false v=null
  end
  session file removed: yes
  after the fault is lifted:
  stored: null
  stray files: none
== session file replaced by a directory [files]
  start=true v=null
  end
  Warning: session_start(): session_proxy: cannot lock session faults… in files://DIR: cannot open DIR/sess_faultsid1: Is a directory (os error 21)
  Warning: session_start(): Failed to read session data: session_proxy (path: files://DIR)
  start=false v=null
  end
  after the fault is lifted:
  stored: null
  stray files: none
