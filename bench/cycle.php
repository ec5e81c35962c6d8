<?php
// One benchmark run: php bench/cycle.php <iterations> <payload-bytes> [options]
// with session.save_handler / session.save_path given by -d. Prints cycles per second, then per
// option asked for (a comma-separated list, in this order):
//   trips      the round trips per cycle counted by SessionProxy\stats() ("-" for another handler);
//   cpu        this process's CPU µs per cycle (what a layer adds on the PHP side; less sensitive
//              than the wall clock to other work on a shared machine).
// and "framework" stores the Laravel-style payload of bench/payload.php instead of a string;
// "new" makes every cycle a new session (no id given: the handler's create_sid draws one, as for a
// request without a cookie) instead of rotating over 100 existing ones.
// A cycle is what a request does: session_id, session_start (open+read, lock), change a value,
// session_write_close (write, unlock, close). Ids rotate over 100 sessions so the data is real.
[$_, $iterations, $bytes, $options] = $argv + [null, 20000, 200, ''];
$opt = array_flip(array_filter(explode(',', $options)));
$roundTrips = fn () => ini_get('session.save_handler') === 'session_proxy'
    ? array_sum(array_column(SessionProxy\stats(), 'round_trips')) : null;
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.gc_probability', '0');
if (isset($opt['framework'])) {
    require __DIR__ . '/payload.php';
    $payload = sp_payload((int) $bytes);
} else {
    $payload = str_repeat('x', max(0, (int) $bytes - 40));
}
$ids = [];
for ($i = 0; $i < 100; $i++) {
    $ids[] = sprintf('bench%027d', $i);
}
$new = isset($opt['new']);
$run = function (int $n) use ($ids, $payload, $new) {
    for ($i = 0; $i < $n; $i++) {
        session_id($new ? '' : $ids[$i % 100]);
        if (!session_start()) {
            fwrite(STDERR, "session_start failed at cycle $i: " . (error_get_last()['message'] ?? 'no warning') . "\n");
            exit(1);
        }
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        $_SESSION['p'] = $payload;
        session_write_close();
    }
};
$cpu = function (): float {
    $u = getrusage();
    return $u['ru_utime.tv_sec'] + $u['ru_utime.tv_usec'] / 1e6 + $u['ru_stime.tv_sec'] + $u['ru_stime.tv_usec'] / 1e6;
};
$run(200); // warm up: create the sessions, open the connection
$before = isset($opt['trips']) ? $roundTrips() : null;
$c = $cpu();
$t = hrtime(true);
$run((int) $iterations);
$secs = (hrtime(true) - $t) / 1e9;
$out = [sprintf('%.0f', $iterations / $secs)];
if (isset($opt['trips'])) {
    $after = $roundTrips();
    $out[] = $before === null ? '-' : sprintf('%.2f', ($after - $before) / $iterations);
}
if (isset($opt['cpu'])) {
    $out[] = sprintf('%.1f', ($cpu() - $c) * 1e6 / $iterations);
}
echo implode(' ', $out), "\n";
