<?php
// Test app of the per-user session index (php-tests/fpm_users.phpt), served by nginx + php-fpm beside
// app.php, whose DSN checks and settings it shares (native save handler only):
//
//   users.php?a=ACTION&dsn=DSN&user=NAME[&opt[locking]=…][&opt[track_client]=0|1][&life=S][&ms=N&sig=PATH]
//
// ACTION:  login   session_regenerate_id(true), SessionProxy\set_user(user), n = 1 (with listed=1: then
//                  the number of the user's sessions listed in the same request, as 'listed')
//          plain   session_regenerate_id(true), n = 1 (not bound)
//          whoami  the session's data, unchanged
//          list    SessionProxy\user_sessions(user) from this request's session
//          others  SessionProxy\destroy_user_sessions(user, true): log out the other devices
//          regen   session_regenerate_id(true) (no set_user), n++
//          nap     n++, writes the file sig=PATH once the session is open, holds it ms=N ms (or until
//                  the file go=PATH exists, 30 s at most), writes
//          gc      session_gc() with session.gc_maxlifetime = life
// life: session.gc_maxlifetime for this request (seconds).
declare(strict_types=1);

require_once __DIR__ . '/sync.php';

$GLOBALS['errors'] = [];
set_error_handler(function (int $no, string $msg): bool {
    $GLOBALS['errors'][] = ($no === E_NOTICE || $no === E_USER_NOTICE ? 'Notice: ' : 'Warning: ') . $msg;
    return true;
});

function reply(array $r): never
{
    if (session_status() === PHP_SESSION_ACTIVE) {
        session_write_close();
    }
    $r += ['ok' => true, 'pid' => getmypid()];
    $r['errors'] = $GLOBALS['errors'];
    header('Content-Type: application/json');
    echo json_encode($r, JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR), "\n";
    exit;
}

$dsn = (string) ($_GET['dsn'] ?? '');
$ok = preg_match('~^(redis|memcached)://127\.0\.0\.1:\d{1,5}(,127\.0\.0\.1:\d{1,5})*(\?[A-Za-z0-9_.:=&%-]*)?$~', $dsn)
    || (preg_match('~^(sqlite|files)://(/[^?#]*)$~', $dsn, $m) && !str_contains($m[2], '..')
        && str_starts_with(realpath($m[1] === 'sqlite' ? dirname($m[2]) : $m[2]) . '/', rtrim(realpath(sys_get_temp_dir()), '/') . '/'))
    || preg_match('~^(pgsql|mysql)://[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)?@127\.0\.0\.1:\d{1,5}/[A-Za-z0-9_]+(\?[A-Za-z0-9_.:=&%-]*)?$~', $dsn);
if (!$ok) {
    reply(['ok' => false, 'error' => "bad dsn \"$dsn\""]);
}
foreach ([
    'session.use_strict_mode' => '1', 'session.use_cookies' => '1', 'session.use_only_cookies' => '1',
    'session.lazy_write' => '1', 'session.gc_probability' => '0',
    'session.save_handler' => 'session_proxy', 'session.save_path' => $dsn,
] as $k => $v) {
    ini_set($k, $v);
}
if (isset($_GET['life'])) {
    ini_set('session.gc_maxlifetime', (string) max(1, (int) $_GET['life']));
}
foreach ((array) ($_GET['opt'] ?? []) as $k => $v) {
    if (!in_array($k, ['locking', 'track_client'], true) || ini_set("session_proxy.$k", (string) $v) === false) {
        reply(['ok' => false, 'error' => "bad option $k"]);
    }
}
$user = (string) ($_GET['user'] ?? '');
$action = (string) ($_GET['a'] ?? '');
session_start();
switch ($action) {
    case 'login':
        session_regenerate_id(true);
        SessionProxy\set_user($user);
        $_SESSION['n'] = 1;
        if (isset($_GET['listed'])) {
            // The user's sessions listed right after this write, in this request: a list request of
            // its own can come later than a 1 s lifetime on a loaded machine.
            session_write_close();
            session_start();
            reply(['id' => session_id(), 'listed' => count(SessionProxy\user_sessions($user) ?: [])]);
        }
        reply(['id' => session_id()]);
    case 'plain':
        session_regenerate_id(true);
        $_SESSION['n'] = 1;
        reply(['id' => session_id()]);
    case 'whoami':
        reply(['id' => session_id(), 'data' => $_SESSION]);
    case 'list':
        $t0 = microtime(true);
        $l = SessionProxy\user_sessions($user);
        reply(['id' => session_id(), 'list' => $l, 'list_ms' => round((microtime(true) - $t0) * 1000, 1)]);
    case 'others':
        reply(['id' => session_id(), 'ended' => SessionProxy\destroy_user_sessions($user, true)]);
    case 'regen':
        $old = session_id();
        session_regenerate_id(true);
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        reply(['old' => $old, 'id' => session_id()]);
    case 'nap':
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        $sig = (string) ($_GET['sig'] ?? '');
        if (sync_in_tmp($sig)) {
            file_put_contents($sig, (string) getmypid());
        }
        // go=PATH: held until that file exists (the test's cue, so that its step comes first however
        // slow the machine is), 30 s at most; else for ms=N ms.
        $go = (string) ($_GET['go'] ?? '');
        if (sync_in_tmp($go)) {
            sync_wait_for($go, 30);
        } else {
            usleep(1000 * max(0, min(5000, (int) ($_GET['ms'] ?? 0))));
        }
        $_SESSION['late'] = 'written after the logout';
        reply(['id' => session_id()]);
    case 'gc':
        reply(['id' => session_id(), 'gc' => session_gc()]);
}
reply(['ok' => false, 'error' => "unknown action \"$action\""]);
