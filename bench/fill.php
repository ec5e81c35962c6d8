<?php
// Fills a store with N sessions of 200 B through the handler given by -d (bench/fpm.sh, growth figures).
//   php -d session.save_handler=... -d session.save_path=... bench/fill.php N PREFIX
[$_, $n, $prefix] = $argv + [null, 1000, 'fill'];
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.gc_probability', '0');
$payload = str_repeat('x', 160);
for ($i = 0; $i < (int) $n; $i++) {
    session_id(sprintf('%s%026d', $prefix, $i));
    if (!session_start()) {
        fwrite(STDERR, "fill: session_start failed at $i\n");
        exit(1);
    }
    $_SESSION['p'] = $payload;
    session_write_close();
}
