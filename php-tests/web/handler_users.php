<?php
// Test app of the per-user index through SessionProxy\Handler (php-tests/fpm_class_users.phpt): a
// framework-style session service (as Symfony's NativeSessionStorage or Laravel's Store set it up:
// `new SessionProxy\Handler(...)` + session_set_save_handler) using the Handler's own index methods,
// served by nginx + php-fpm beside app.php and users.php (whose DSN checks it shares).
//
//   handler_users.php?a=ACTION&dsn=DSN&user=NAME[&opt[locking]=…][&handle=H][&ms=N&sig=PATH]
//
// ACTION:  login   session_regenerate_id(true), $handler->setUser(user), n = 1
//          whoami  the session's data, unchanged
//          list    $handler->userSessions(user)
//          others  $handler->destroyUserSessions(user, true): log out the other devices
//          all     $handler->destroyUserSessions(user)
//          end     $handler->destroySessionHandle(handle)
//          count   $handler->countActive(600)
//          regen   session_regenerate_id(true) (no setUser), n++
//          nap     n++, writes the file sig=PATH once the session is open, holds it ms=N ms (or until
//                  the file go=PATH exists, 30 s at most), writes
declare(strict_types=1);

require_once __DIR__ . '/sync.php';

$GLOBALS['errors'] = [];
set_error_handler(function (int $no, string $msg): bool {
    $GLOBALS['errors'][] = ($no === E_NOTICE || $no === E_USER_NOTICE ? 'Notice: ' : 'Warning: ') . $msg;
    return true;
});

/** The framework's session service: one handler, registered once, its index methods exposed. */
final class SessionService
{
    public function __construct(public readonly SessionProxy\Handler $handler)
    {
        session_set_save_handler($handler, true);
    }

    public function start(): void
    {
        session_start();
    }

    public function loginAs(string $user): void
    {
        session_regenerate_id(true);
        $this->handler->setUser($user);
        $_SESSION['n'] = 1;
    }
}

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
        && str_starts_with(realpath($m[1] === 'sqlite' ? dirname($m[2]) : $m[2]) . '/', rtrim(realpath(sys_get_temp_dir()), '/') . '/'));
if (!$ok) {
    reply(['ok' => false, 'error' => "bad dsn \"$dsn\""]);
}
foreach ([
    'session.use_strict_mode' => '1', 'session.use_cookies' => '1', 'session.use_only_cookies' => '1',
    'session.lazy_write' => '1', 'session.gc_probability' => '0',
] as $k => $v) {
    ini_set($k, $v);
}
$opt = [];
foreach ((array) ($_GET['opt'] ?? []) as $k => $v) {
    if ($k !== 'locking') {
        reply(['ok' => false, 'error' => "bad option $k"]);
    }
    $opt['locking'] = $v === 'optimistic' ? 'optimistic' : (bool) $v;
}
try {
    $svc = new SessionService(new SessionProxy\Handler($dsn, $opt));
} catch (Throwable $e) {
    reply(['ok' => false, 'error' => get_class($e) . ': ' . $e->getMessage()]);
}
$h = $svc->handler;
$user = (string) ($_GET['user'] ?? '');
$action = (string) ($_GET['a'] ?? '');
$svc->start();
switch ($action) {
    case 'login':
        $svc->loginAs($user);
        reply(['id' => session_id()]);
    case 'whoami':
        reply(['id' => session_id(), 'data' => $_SESSION]);
    case 'list':
        reply(['id' => session_id(), 'list' => $h->userSessions($user)]);
    case 'others':
        reply(['id' => session_id(), 'ended' => $h->destroyUserSessions($user, true)]);
    case 'all':
        reply(['id' => session_id(), 'ended' => $h->destroyUserSessions($user)]);
    case 'end':
        reply(['id' => session_id(), 'ended' => $h->destroySessionHandle((string) ($_GET['handle'] ?? ''))]);
    case 'count':
        reply(['id' => session_id(), 'count' => $h->countActive(600)]);
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
}
reply(['ok' => false, 'error' => "unknown action \"$action\""]);
