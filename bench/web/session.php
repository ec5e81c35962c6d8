<?php
// One request of the php-fpm benchmark (bench/fpm.sh): start the session (handler and save path come
// from the pool's INI), one change, optional work inside the session, write and close.
//   session.php            200 B of session data, no work
//   session.php?work=MS    MS milliseconds of work while the session (and its lock) is held
if (!session_start()) {
    http_response_code(500);
    exit("session_start failed\n");
}
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$_SESSION['p'] = str_repeat('x', 160);
if (isset($_GET['work'])) {
    usleep(1000 * (int) $_GET['work']);
}
$n = $_SESSION['n'];
session_write_close();
echo $n, "\n";
