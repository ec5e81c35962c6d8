<?php
// The test apps' cues (app.php, users.php, handler_users.php): files inside the system temp dir that a
// test writes or waits for, so that steps of a request and of the test come in a known order however
// slow the machine is. Only defines functions (a request to it does nothing).
declare(strict_types=1);

/** Whether $p is a plain file name in an existing directory inside the system temp dir. */
function sync_in_tmp(string $p): bool
{
    $tmp = rtrim(realpath(sys_get_temp_dir()) ?: sys_get_temp_dir(), '/') . '/';
    $dir = realpath(dirname($p));
    return $dir !== false && str_starts_with($dir . '/', $tmp) && preg_match('~^[A-Za-z0-9._-]+$~', basename($p)) === 1;
}

/** Waits until $p exists, $seconds at most; whether it does. */
function sync_wait_for(string $p, float $seconds): bool
{
    for ($end = microtime(true) + $seconds; !file_exists($p); usleep(2000)) {
        if (microtime(true) > $end) {
            return false;
        }
    }
    return true;
}
