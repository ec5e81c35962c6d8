<?php
// One run of bench/optimistic.sh: php bench/optimistic.php <iterations> <payload-bytes>, with the save
// handler, save path and session_proxy.locking given by -d. The cycle of bench/cycle.php (session_id,
// session_start, change a value, session_write_close; 100 sessions in turn). Prints
// "<cycles/s> <round trips per cycle>" (round trips from SessionProxy\stats(), "-" for other handlers).
[, $iterations, $bytes] = $argv + [null, 5000, 200];
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.gc_probability', '0');
$payload = str_repeat('x', max(0, (int) $bytes - 40));
$run = function (int $n) use ($payload) {
    for ($i = 0; $i < $n; $i++) {
        session_id(sprintf('bench%027d', $i % 100));
        if (!session_start()) {
            fwrite(STDERR, "session_start failed\n");
            exit(1);
        }
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        $_SESSION['p'] = $payload;
        session_write_close();
    }
};
$trips = fn () => function_exists('SessionProxy\stats') ? array_sum(array_column(SessionProxy\stats(), 'round_trips')) : null;
$run(200); // warm up: create the sessions, open the connection
$before = $trips();
$t = hrtime(true);
$run((int) $iterations);
$secs = (hrtime(true) - $t) / 1e9;
$after = $trips();
printf("%.0f %s\n", $iterations / $secs, $before === null || ini_get('session.save_handler') !== 'session_proxy' ? '-' : sprintf('%.2f', ($after - $before) / $iterations));
