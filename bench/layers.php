<?php
// php bench/layers.php size <payload-bytes> <dir>
//   prints "<serialized bytes> <stored bytes>" for one session of the framework payload (bench/payload.php)
//   written through the files engine into <dir> (stored bytes = the file's size, i.e. what the layers
//   left for the engine to store). The cycles/s of the layers are bench/cycle.php's (its "framework,cpu").
require __DIR__ . '/payload.php';
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.gc_probability', '0');
if (($argv[1] ?? '') === 'size') {
    [, , $bytes, $dir] = $argv;
    ini_set('session.save_handler', 'session_proxy');
    ini_set('session.save_path', "files://$dir");
    $p = sp_payload((int) $bytes);
    session_id('sizeprobe0123456789abcdefghij');
    session_start();
    $_SESSION = $p;
    $plain = strlen(session_encode());
    session_write_close();
    $files = glob("$dir/sess_*");
    printf("%d %d\n", $plain, filesize($files[0]));
    exit;
}
fwrite(STDERR, "usage: php bench/layers.php size <payload-bytes> <dir>\n");
exit(2);
