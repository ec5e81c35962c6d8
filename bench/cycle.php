<?php
// One benchmark run: php bench/cycle.php <iterations> <payload-bytes> [trips]
// with session.save_handler / session.save_path given by -d. Prints cycles per second; with "trips",
// also the round trips per cycle counted by SessionProxy\stats() ("-" for another handler).
// A cycle is what a request does: session_id, session_start (open+read, lock), change a value,
// session_write_close (write, unlock, close). Ids rotate over 100 sessions so the data is real.
[$_, $iterations, $bytes, $trips] = $argv + [null, 20000, 200, ''];
$roundTrips = fn () => ini_get('session.save_handler') === 'session_proxy'
    ? array_sum(array_column(SessionProxy\stats(), 'round_trips')) : null;
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.gc_probability', '0');
$payload = str_repeat('x', max(0, (int) $bytes - 40));
$ids = [];
for ($i = 0; $i < 100; $i++) {
    $ids[] = sprintf('bench%027d', $i);
}
$run = function (int $n) use ($ids, $payload) {
    for ($i = 0; $i < $n; $i++) {
        session_id($ids[$i % 100]);
        if (!session_start()) {
            fwrite(STDERR, "session_start failed\n");
            exit(1);
        }
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        $_SESSION['p'] = $payload;
        session_write_close();
    }
};
$run(200); // warm up: create the sessions, open the connection
$before = $trips === 'trips' ? $roundTrips() : null;
$t = hrtime(true);
$run((int) $iterations);
$secs = (hrtime(true) - $t) / 1e9;
if ($trips === 'trips') {
    $after = $roundTrips();
    printf("%.0f %s\n", $iterations / $secs, $before === null ? '-' : sprintf('%.2f', ($after - $before) / $iterations));
} else {
    printf("%.0f\n", $iterations / $secs);
}
