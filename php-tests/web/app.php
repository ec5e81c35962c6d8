<?php
// Test app for the web tests (php-tests/fpm_*.phpt), served by nginx + php-fpm (scripts/services/web.sh).
//
//   app.php?a=ACTION&h=HANDLER&dsn=DSN[&user=NAME][&opt[KEY]=VALUE...]
//
// HANDLER: native - session.save_handler=session_proxy, session.save_path=DSN
//          class  - session_set_save_handler(new SessionProxy\Handler(DSN, opt), true)
// DSN:     sqlite:///abs/file.sqlite or files:///abs/dir, under sys_get_temp_dir() (each test passes its
//          own directory, so tests are parallel-safe), or redis://127.0.0.1:PORT?… / memcached://127.0.0.1:PORT?…
//          (each test passes its own key prefix; also several servers, redis-cluster:// and
//          redis-sentinel://127.0.0.1:PORT/MASTER); anything else is refused.
// ser:     session.serialize_handler for this request (php, php_serialize, php_binary, igbinary).
// Interleaving (optimistic tests; each a file name inside the system temp dir, waits bounded by 20 s):
//          wait_open=PATH waits for PATH before session_start(), sig_open=PATH writes PATH after it;
//          wait_write=PATH waits for PATH before the session is written, sig_done=PATH writes PATH
//          after session_write_close().
// opt:     class mode: the options array (locking, lock_wait_timeout, lock_expire, lock_timeout_action);
//          native mode: the same names set as session_proxy.* INI values for this request.
// ACTION:  hit     count++ (anonymous or logged in)
//          login   session_regenerate_id(true), then user=NAME (the rest of the data is kept)
//          whoami  the session's data, unchanged
//          logout  session_destroy() and the cookie removed
//          incr    n++ once, replies the value seen before (the race tests)
//          setkey  k<K> = V (k=K, v=V: default K) after work=MS of work inside the session (optimistic tests)
//          setref  $_SESSION = [seed => 1, a => &$x, b => &$x] with $x = [1]: two keys sharing a reference
//          isref   whether a and b are still one reference: appends 9 to a and replies b, unchanged data
//          hold    n += 1000 (never to be stored), then writes {"pid": worker pid} to the file sig=PATH
//                  (inside the system temp dir) and sleeps up to 20 s holding the session, to be killed
//          nap     n++, writes the file sig=PATH (optional) once the session is open, holds it ms=N
//                  milliseconds (at most 5000), then writes it
//          stats   no session: sleeps ms=N (at most 5000), then replies SessionProxy\stats() as "stats"
//                  (the counters of every worker of this pool); h and dsn are not needed
// rac=1 starts the session with read_and_close.
// Every reply also has "start_ms": how long session_start() took (the lock wait).
// Every reply is JSON: {"ok":..., "id": the session id, "pid": the php-fpm worker, ..., "errors": [...]};
// "errors" lists every warning/notice PHP raised, including those of the session write (the session is
// closed before the reply is built).
declare(strict_types=1);

require_once __DIR__ . '/sync.php';

$GLOBALS['errors'] = [];
set_error_handler(function (int $no, string $msg): bool {
    $lvl = [E_WARNING => 'Warning', E_NOTICE => 'Notice', E_DEPRECATED => 'Deprecated',
        E_USER_WARNING => 'Warning', E_USER_NOTICE => 'Notice', E_USER_DEPRECATED => 'Deprecated'][$no] ?? "E$no";
    $GLOBALS['errors'][] = "$lvl: $msg";
    return true;
});

function reply(array $r, int $status = 200): never
{
    $sync = $GLOBALS['sync'] ?? [];
    if (session_status() === PHP_SESSION_ACTIVE) {
        if ($status === 200) {
            sync_wait($sync['wait_write'] ?? null);
        }
        session_write_close();
    }
    sync_signal($sync['sig_done'] ?? null);
    $r += ['ok' => $status === 200, 'pid' => getmypid(), 'start_ms' => $GLOBALS['start_ms'] ?? null];
    $r['errors'] = $GLOBALS['errors'];
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($r, JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR), "\n";
    exit;
}

function fail(string $msg, int $status = 400): never
{
    reply(['ok' => false, 'error' => $msg], $status);
}

/**
 * The DSN, if it names a path strictly inside the system temp dir (no "..", no other schemes), or a
 * Redis / memcached server on the loopback address (the test servers).
 */
function checked_dsn(string $dsn): string
{
    $hosts = '127\.0\.0\.1:\d{1,5}(,127\.0\.0\.1:\d{1,5})*';
    if (preg_match("~^(redis|memcached|redis-cluster)://$hosts(\\?[A-Za-z0-9_.:=&%-]*)?$~", $dsn)
        || preg_match("~^redis-sentinel://$hosts/[A-Za-z0-9_-]+(\\?[A-Za-z0-9_.:=&%-]*)?$~", $dsn)) {
        return $dsn;
    }
    if (!preg_match('~^(sqlite|files)://(/[^?#]*)(\?[^#]*)?$~', $dsn, $m)) {
        fail("dsn must be sqlite:///abs/file, files:///abs/dir, redis://127.0.0.1:PORT?… or memcached://127.0.0.1:PORT?…, got \"$dsn\"");
    }
    $path = rawurldecode($m[2]);
    if (preg_match('~(^|/)\.\.?(/|$)~', $path) || str_contains($path, "\0")) {
        fail("dsn path must not contain . or .. segments: \"$dsn\"");
    }
    $tmp = rtrim(realpath(sys_get_temp_dir()) ?: sys_get_temp_dir(), '/') . '/';
    $dir = realpath($m[1] === 'sqlite' ? dirname($path) : $path);
    if ($dir === false || !str_starts_with($dir . '/', $tmp) || $dir . '/' === $tmp) {
        fail("dsn path must be an existing directory inside $tmp: \"$dsn\"");
    }
    return $dsn;
}

$action = (string) ($_GET['a'] ?? '');
$ms = max(0, min(5000, (int) ($_GET['ms'] ?? 0)));
if ($action === 'stats') {
    usleep($ms * 1000);
    reply(['stats' => SessionProxy\stats()]);
}
$mode = (string) ($_GET['h'] ?? 'native');
$dsn = checked_dsn((string) ($_GET['dsn'] ?? ''));
$opt = [];
foreach ((array) ($_GET['opt'] ?? []) as $k => $v) {
    if (!in_array($k, ['locking', 'lock_wait_timeout', 'lock_expire', 'lock_timeout_action', 'merge_conflict'], true)) {
        fail("unknown option \"$k\"");
    }
    $opt[$k] = is_numeric($v) ? (int) $v : (string) $v;
}

// Production-like session settings: cookies only, strict mode (unknown ids are replaced), lazy write.
foreach ([
    'session.use_strict_mode' => '1',
    'session.use_cookies' => '1',
    'session.use_only_cookies' => '1',
    'session.cookie_httponly' => '1',
    'session.cookie_samesite' => 'Lax',
    'session.lazy_write' => '1',
    'session.gc_probability' => '0',
] as $k => $v) {
    ini_set($k, $v);
}

$ser = (string) ($_GET['ser'] ?? '');
if ($ser !== '') {
    if (!in_array($ser, ['php', 'php_serialize', 'php_binary', 'igbinary'], true)) {
        fail("ser must be php, php_serialize, php_binary or igbinary, got \"$ser\"");
    }
    if (ini_set('session.serialize_handler', $ser) === false) {
        fail("ini_set(session.serialize_handler, $ser) failed: is the serializer loaded?", 500);
    }
}

if ($mode === 'native') {
    if (ini_set('session.save_handler', 'session_proxy') === false) {
        fail('ini_set(session.save_handler, session_proxy) failed: is the extension loaded?', 500);
    }
    ini_set('session.save_path', $dsn);
    foreach ($opt as $k => $v) {
        if (ini_set("session_proxy.$k", (string) $v) === false) {
            fail("ini_set(session_proxy.$k) refused \"$v\"", 500);
        }
    }
} elseif ($mode === 'class') {
    if (!class_exists('SessionProxy\Handler')) {
        fail('class SessionProxy\Handler does not exist in this build of session_proxy', 500);
    }
    try {
        $handler = new SessionProxy\Handler($dsn, $opt);
    } catch (Throwable $e) {
        fail('new SessionProxy\Handler() threw ' . get_class($e) . ': ' . $e->getMessage(), 500);
    }
    if (!session_set_save_handler($handler, true)) {
        fail('session_set_save_handler() refused SessionProxy\Handler', 500);
    }
} else {
    fail("h must be native or class, got \"$mode\"");
}

if (!in_array($action, ['hit', 'login', 'whoami', 'logout', 'incr', 'hold', 'setkey', 'nap', 'setref', 'isref'], true)) {
    fail("unknown action \"$action\"");
}
$sig = null;
if ($action === 'hold' || ($action === 'nap' && isset($_GET['sig']))) {
    $sig = (string) ($_GET['sig'] ?? '');
    if (!sync_in_tmp($sig)) {
        fail("sig must be a file name in an existing directory inside " . sys_get_temp_dir() . ": \"$sig\"");
    }
}
/** A file name inside the system temp dir from the query (or null), refused otherwise. */
function sync_path(string $name): ?string
{
    if (!isset($_GET[$name])) {
        return null;
    }
    $p = (string) $_GET[$name];
    if (!sync_in_tmp($p)) {
        fail("$name must be a file name in an existing directory inside " . sys_get_temp_dir() . ": \"$p\"");
    }
    return $p;
}
function sync_wait(?string $p): void
{
    if ($p !== null && !sync_wait_for($p, 20)) {
        fail("waited 20 s for $p", 500);
    }
}
function sync_signal(?string $p): void
{
    if ($p !== null) {
        file_put_contents("$p.tmp", (string) getmypid());
        rename("$p.tmp", $p);
    }
}
$sync = [];
foreach (['wait_open', 'sig_open', 'wait_write', 'sig_done'] as $name) {
    $sync[$name] = sync_path($name);
}
sync_wait($sync['wait_open']);
try {
    $t0 = microtime(true);
    // rac=1: session_start(['read_and_close' => true]), the read-only start that never waits.
    $started = ($_GET['rac'] ?? '') === '1' ? session_start(['read_and_close' => true]) : session_start();
    $GLOBALS['start_ms'] = round((microtime(true) - $t0) * 1000, 1);
} catch (Throwable $e) {
    fail('session_start() threw ' . get_class($e) . ': ' . $e->getMessage(), 500);
}
if (!$started) {
    fail('session_start() returned false', 500);
}
sync_signal($sync['sig_open']);

switch ($action) {
    case 'hit':
        $_SESSION['count'] = ($_SESSION['count'] ?? 0) + 1;
        reply(['id' => session_id(), 'user' => $_SESSION['user'] ?? null, 'count' => $_SESSION['count']]);
    case 'login':
        $old = session_id();
        $regenerated = session_regenerate_id(true);
        $_SESSION['user'] = (string) ($_GET['user'] ?? '');
        reply(['old' => $old, 'id' => session_id(), 'regenerated' => $regenerated, 'data' => $_SESSION]);
    case 'whoami':
        reply(['id' => session_id(), 'data' => $_SESSION]);
    case 'logout':
        $id = session_id();
        $_SESSION = [];
        $destroyed = session_destroy();
        $p = session_get_cookie_params();
        setcookie(session_name(), '', ['expires' => 1, 'path' => $p['path'], 'httponly' => true, 'samesite' => 'Lax']);
        reply(['id' => $id, 'destroyed' => $destroyed]);
    case 'hold':
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1000;
        file_put_contents("$sig.tmp", json_encode(['pid' => getmypid()]));
        rename("$sig.tmp", $sig);
        for ($i = 0; $i < 200; $i++) {
            usleep(100000);
        }
        reply(['id' => session_id()]);
    case 'nap':
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        if ($sig !== null) {
            file_put_contents("$sig.tmp", json_encode(['pid' => getmypid()]));
            rename("$sig.tmp", $sig);
        }
        usleep($ms * 1000);
        reply(['id' => session_id(), 'n' => $_SESSION['n']]);
    case 'setkey':
        // k<K> = V (V defaults to K), after work=MS milliseconds of work inside the session.
        $k = (string) ($_GET['k'] ?? '');
        if (!preg_match('~^[A-Za-z0-9]{1,16}$~', $k)) {
            fail('k must be 1-16 letters or digits');
        }
        $_SESSION["k$k"] = (string) ($_GET['v'] ?? $k);
        usleep(1000 * min(2000, max(0, (int) ($_GET['work'] ?? 0))));
        reply(['id' => session_id()]);
    case 'setref':
        $x = [1];
        $_SESSION = ['seed' => 1];
        $_SESSION['a'] = &$x;
        $_SESSION['b'] = &$x;
        reply(['id' => session_id()]);
    case 'isref':
        $b = $_SESSION['b'] ?? null;
        $_SESSION['a'][] = 9;
        $shared = ($_SESSION['b'] ?? null) !== $b;
        session_abort();
        reply(['id' => session_id(), 'shared' => $shared, 'data' => $_SESSION]);
    case 'incr':
        $before = $_SESSION['n'] ?? 0;
        $_SESSION['n'] = $before + 1;
        reply(['id' => session_id(), 'before' => $before]);
}
