--TEST--
Binary safety on both engines: empty, 1-byte, NUL, invalid UTF-8, all 256 byte values and a 16 MiB random value, read back intact by another process
--INI--
memory_limit=512M
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

$values = [
    'empty' => '',
    'one' => 'x',
    'nuls' => "\0\0\0",
    'nulinside' => "a\0b\0\0c",
    'badutf8' => "\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\x80",
    'allbytes' => implode('', array_map('chr', range(0, 255))),
    'random16mib' => random_bytes(16 * 1024 * 1024),
];

foreach (sp_engines('binary') as $engine => $dsn) {
    echo "== $engine\n";
    // Each value in its own session, written in this process.
    foreach ($values as $name => $v) {
        sp_cycle($dsn, "bin-$name", function () use ($v) {
            $_SESSION['v'] = $v;
        });
    }
    // A session whose whole encoded payload is 0 bytes: it held data, then every key was removed.
    sp_cycle($dsn, 'bin-emptied', function () {
        $_SESSION['gone'] = str_repeat('z', 100);
    });
    sp_cycle($dsn, 'bin-emptied', function () {
        $_SESSION = [];
    });

    // Another process reads every session and reports length and sha1 of what it found.
    $code = '$out = [];'
        . 'foreach (' . var_export(array_keys($values), true) . ' as $name) {'
        . '  session_id("bin-$name");'
        . '  if (!session_start(["read_and_close" => true])) { $out[$name] = "start failed"; continue; }'
        . '  $v = $_SESSION["v"] ?? null;'
        . '  $out[$name] = is_string($v) ? [strlen($v), sha1($v)] : ["missing", array_keys($_SESSION)];'
        . '  $_SESSION = [];'
        . '}'
        . 'session_id("bin-emptied"); session_start(["read_and_close" => true]);'
        . '$out["emptied"] = [count($_SESSION), strlen(session_encode())];'
        . 'return $out;';
    $seen = sp_child_value($code, ['session.save_path' => sp_q($dsn), 'memory_limit' => '512M']);
    foreach ($values as $name => $v) {
        $got = $seen[$name] ?? 'no result';
        $ok = $got === [strlen($v), sha1($v)];
        printf("%-13s %9d bytes: %s\n", $name, strlen($v), $ok ? 'intact' : 'DIFFERENT ' . json_encode($got));
    }
    echo "emptied session: ", json_encode($seen['emptied'] ?? null), "\n";

    // The stored bytes are exactly the encoded session (serialize handler "php": key|serialized).
    $raw = $engine === 'files'
        ? file_get_contents(sp_dsn_path($dsn) . '/sess_bin-random16mib')
        : (sp_sql(sp_dsn_path($dsn), 'SELECT data FROM sessions WHERE id = ?', ['bin-random16mib'])[0]['data'] ?? '');
    $expect = 'v|' . serialize($values['random16mib']);
    echo "stored 16 MiB payload is the encoded session: ", sp_yn(strlen($raw) === strlen($expect) && sha1($raw) === sha1($expect)), "\n";
}
?>
--EXPECT--
== sqlite
empty                 0 bytes: intact
one                   1 bytes: intact
nuls                  3 bytes: intact
nulinside             6 bytes: intact
badutf8              14 bytes: intact
allbytes            256 bytes: intact
random16mib    16777216 bytes: intact
emptied session: [0,0]
stored 16 MiB payload is the encoded session: yes
== files
empty                 0 bytes: intact
one                   1 bytes: intact
nuls                  3 bytes: intact
nulinside             6 bytes: intact
badutf8              14 bytes: intact
allbytes            256 bytes: intact
random16mib    16777216 bytes: intact
emptied session: [0,0]
stored 16 MiB payload is the encoded session: yes
