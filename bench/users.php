<?php
// One run of the per-user index benchmark: php bench/users.php <iterations> <mode>
// with session.save_handler / session.save_path given by -d. The cycle of bench/cycle.php (200 B), over
// 100 sessions, each bound to one of 10 users or not:
//   none   not bound
//   login  bound once (SessionProxy\set_user in the warm-up), then unchanged: the common case
//   key    session_proxy.user_key = uid, $_SESSION['uid'] set and unchanged every cycle
//   every  SessionProxy\set_user() with the same user on every cycle
// Prints "cycles/s round-trips-per-cycle" (round trips from SessionProxy\stats(), 0 for local engines).
[$_, $iterations, $mode] = $argv + [null, 20000, 'none'];
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.gc_probability', '0');
if ($mode === 'key') {
    ini_set('session_proxy.user_key', 'uid');
}
$payload = str_repeat('x', 160);
$tag = bin2hex(random_bytes(3));
$ids = [];
for ($i = 0; $i < 100; $i++) {
    $ids[] = sprintf('benchu%s%022d', $tag, $i);
}
$run = function (int $n, bool $warm) use ($ids, $payload, $mode) {
    for ($i = 0; $i < $n; $i++) {
        session_id($ids[$i % 100]);
        if (!session_start()) {
            fwrite(STDERR, "session_start failed\n");
            exit(1);
        }
        $user = 'user' . ($i % 10);
        if ($mode === 'every' || ($mode === 'login' && $warm)) {
            SessionProxy\set_user($user);
        }
        if ($mode === 'key') {
            $_SESSION['uid'] = $user;
        }
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        $_SESSION['p'] = $payload;
        session_write_close();
    }
};
$trips = fn () => array_sum(array_map(fn ($e) => $e['round_trips'], SessionProxy\stats()));
$run(200, true);
$t0 = $trips();
$t = hrtime(true);
$run((int) $iterations, false);
$secs = (hrtime(true) - $t) / 1e9;
printf("%.0f %.2f\n", $iterations / $secs, ($trips() - $t0) / $iterations);
