--TEST--
Round trip on both engines: values written in one request are read in the next, binary-safe
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';
foreach (sp_engines('roundtrip') as $engine => $dsn) {
    $bin = "nul\0byte, invalid utf-8 \xff\xfe\xc3\x28, and more";
    sp_cycle($dsn, 'roundtrip1', function () use ($bin) {
        $_SESSION['n'] = 1;
        $_SESSION['bin'] = $bin;
    });
    // A separate process reads what this one wrote.
    $out = sp_child(
        'session_id("roundtrip1"); session_start(); echo json_encode([$_SESSION["n"], bin2hex($_SESSION["bin"])]);',
        ['session.save_path' => $dsn]
    );
    [$n, $hex] = json_decode($out, true);
    echo "$engine: n=$n binary-intact=", var_export(hex2bin($hex) === $bin, true), "\n";
}
?>
--EXPECT--
sqlite: n=1 binary-intact=true
files: n=1 binary-intact=true
