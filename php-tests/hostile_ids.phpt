--TEST--
Hostile session ids on both engines: a fresh valid id or a clean failure, never a file outside the configured directory
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

// Engines live two levels down, so a path traversal that escaped them would still land in $root.
$root = sp_tmpdir('hostile');
$base = "$root/p1/p2";
mkdir("$base/fl", 0700, true);
mkdir("$base/fd");
mkdir("$base/sq");
$engines = [
    'sqlite' => "sqlite://$base/sq/s.sqlite",
    'files' => "files://$base/fl",
    'files-depth2' => "files://$base/fd?depth=2",
];
$passwd = @md5_file('/etc/passwd');

$ids = [
    '../../etc/passwd' => '../../etc/passwd',
    '..' => '..',
    'a/b' => 'a/b',
    'a\0b' => "a\0b",
    'a b' => 'a b',
    'a\tb' => "a\tb",
    'sql quote' => "x'; DROP TABLE sessions;--",
    '300 a' => str_repeat('a', 300),
    'empty' => '',
];

$warnings = [];
set_error_handler(function (int $no, string $msg) use (&$warnings) {
    $warnings[] = $msg;
    return true;
});

$fresh = array_fill_keys(array_keys($engines), 0);
foreach ([0, 1] as $strict) {
    echo "== use_strict_mode=$strict\n";
    foreach ($ids as $label => $id) {
        $results = [];
        foreach ($engines as $engine => $dsn) {
            sp_use($dsn, ['session.use_strict_mode' => (string) $strict]);
            $warnings = [];
            session_id($id);
            $ok = session_start();
            $now = session_id();
            if ($ok) {
                $_SESSION['n'] = 1;
                session_write_close();
                $valid = preg_match('/^[a-zA-Z0-9,-]{22,256}$/', $now) && $now !== $id;
                $r = $valid ? 'fresh id' : 'STARTED WITH ID ' . json_encode($now);
                $fresh[$engine] += $valid ? 1 : 0;
            } else {
                // Ours, then PHP's "Failed to read session data".
                $ours = $warnings[0] ?? '';
                $php = $warnings[1] ?? '';
                $r = 'failed: ' . (str_starts_with($ours, 'session_start(): session_proxy: rejected session id: ')
                    ? substr($ours, strlen('session_start(): session_proxy: rejected session id: '))
                    : 'UNEXPECTED ' . json_encode($ours));
                if ($php !== "session_start(): Failed to read session data: session_proxy (path: $dsn)") {
                    $r .= ' / PHP said ' . json_encode($php);
                }
                if (session_status() !== PHP_SESSION_NONE || $now !== '') {
                    $r .= ' / session left in a bad state';
                }
                array_splice($warnings, 0, 2);
            }
            if ($ok && $warnings) {
                $r .= ' / warnings: ' . json_encode($warnings);
            } elseif (!$ok && $warnings) {
                $r .= ' / more warnings: ' . json_encode($warnings);
            }
            $results[$engine] = $r;
            session_id('');
        }
        if (count(array_unique($results)) === 1) {
            echo "$label: ", reset($results), "\n";
        } else {
            foreach ($results as $engine => $r) {
                echo "$label [$engine]: $r\n";
            }
        }
    }
}

// Valid but unusual ids are kept and round-trip: PHP's whole alphabet, and the longest id whose
// sess_<id> file name fits in a file name (255 bytes) on the files engines; 256 (PHP's maximum) on SQLite.
echo "== valid edge ids keep their id and round-trip\n";
sp_use($engines['sqlite'], ['session.use_strict_mode' => '0']);
foreach (['alphabet' => 'az,AZ-09' . str_repeat('x', 24), '250 chars' => str_repeat('c', 250), '256 chars' => str_repeat('b', 256)] as $label => $id) {
    foreach ($engines as $engine => $dsn) {
        if ($label === '256 chars' && $engine !== 'sqlite') {
            continue;
        }
        $warnings = [];
        $w = sp_cycle($dsn, $id, function () use ($id) { $_SESSION['mine'] = $id; }, ['session.use_strict_mode' => '0']);
        $r = sp_cycle($dsn, $id, null, ['session.use_strict_mode' => '0']);
        $ok = $w['started'] && $r['started'] && ($r['data']['mine'] ?? null) === $id;
        echo "$label [$engine]: ", $ok ? 'ok' : 'FAILED', $warnings ? ' ' . implode(' | ', array_map(fn ($m) => str_replace($root, 'ROOT', preg_replace('/[bc]{40,}/', '...', $m)), $warnings)) : '', "\n";
        $fresh[$engine] += $ok ? 1 : 0;
    }
}

// Only expected names, only where expected.
function tree(string $dir, string $prefix = ''): array
{
    $out = [];
    foreach (array_diff(scandir($dir), ['.', '..']) as $e) {
        $out[] = $prefix . $e . (is_dir("$dir/$e") ? '/' : '');
        if (is_dir("$dir/$e")) {
            $out = array_merge($out, tree("$dir/$e", "$prefix$e/"));
        }
    }
    return $out;
}
echo "== afterwards\n";
echo 'root holds only p1/p2/{fd,fl,sq}: ', var_export(array_values(array_filter(tree($root), fn ($p) => substr_count(rtrim($p, '/'), '/') < 3))
    === ['p1/', 'p1/p2/', 'p1/p2/fd/', 'p1/p2/fl/', 'p1/p2/sq/'], true), "\n";
$sq = tree("$base/sq");
echo 'sqlite dir: the database and at most its -wal/-shm/-locks: ', var_export(in_array('s.sqlite', $sq, true)
    && !array_diff($sq, ['s.sqlite', 's.sqlite-wal', 's.sqlite-shm', 's.sqlite-locks']), true), "\n";
$fl = tree("$base/fl");
echo 'files dir: only sess_ files: ', var_export(count(preg_grep('/^sess_[a-zA-Z0-9,-]+$/', $fl)) === count($fl), true),
    ', one per fresh session: ', var_export(count($fl) === $fresh['files'], true), "\n";
$bad = [];
$n = 0;
foreach (tree("$base/fd") as $p) {
    if (preg_match('#^[a-zA-Z0-9,-]/$#', $p) || preg_match('#^[a-zA-Z0-9,-]/[a-zA-Z0-9,-]/$#', $p)) {
        continue;
    }
    if (preg_match('#^([a-zA-Z0-9,-])/([a-zA-Z0-9,-])/sess_\1\2[a-zA-Z0-9,-]*$#', $p)) {
        $n++;
        continue;
    }
    $bad[] = $p;
}
echo 'files depth=2 dir: unexpected entries: ', json_encode($bad), ', one per fresh session: ', var_export($n === $fresh['files-depth2'], true), "\n";
echo 'fresh sessions: ', json_encode($fresh), "\n";
echo '/etc/passwd untouched: ', var_export(@md5_file('/etc/passwd') === $passwd, true), "\n";
?>
--EXPECT--
== use_strict_mode=0
../../etc/passwd: failed: session id contains a character outside [a-zA-Z0-9,-] (byte 0x2e at offset 0)
..: failed: session id contains a character outside [a-zA-Z0-9,-] (byte 0x2e at offset 0)
a/b: failed: session id contains a character outside [a-zA-Z0-9,-] (byte 0x2f at offset 1)
a\0b: failed: session id contains a character outside [a-zA-Z0-9,-] (byte 0x00 at offset 1)
a b: fresh id
a\tb: fresh id
sql quote: fresh id
300 a: failed: session id is 300 bytes long (at most 256)
empty: fresh id
== use_strict_mode=1
../../etc/passwd: fresh id
..: fresh id
a/b: fresh id
a\0b: fresh id
a b: fresh id
a\tb: fresh id
sql quote: fresh id
300 a: fresh id
empty: fresh id
== valid edge ids keep their id and round-trip
alphabet [sqlite]: ok
alphabet [files]: ok
alphabet [files-depth2]: ok
250 chars [sqlite]: ok
250 chars [files]: ok
250 chars [files-depth2]: ok
256 chars [sqlite]: ok
== afterwards
root holds only p1/p2/{fd,fl,sq}: true
sqlite dir: the database and at most its -wal/-shm/-locks: true
files dir: only sess_ files: true, one per fresh session: true
files depth=2 dir: unexpected entries: [], one per fresh session: true
fresh sessions: {"sqlite":16,"files":15,"files-depth2":15}
/etc/passwd untouched: true
