--TEST--
use_strict_mode=1: unknown and expired ids are replaced by a new id, live ids are accepted, a new id stores nothing until data is written
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

const STRICT = ['session.use_strict_mode' => '1'];

/** Everything in storage: file names in the directory, or the rows of both SQLite tables. */
function storage(string $engine, string $dsn): string
{
    if ($engine === 'files') {
        return 'files: [' . implode(', ', sp_tree(sp_dsn_path($dsn))) . ']';
    }
    $s = sp_sql(sp_dsn_path($dsn), 'SELECT COUNT(*) AS n FROM sessions')[0]['n'] ?? '?';
    $l = sp_sql(sp_dsn_path($dsn), 'SELECT COUNT(*) AS n FROM session_locks')[0]['n'] ?? '?';
    return "sessions rows: $s, session_locks rows: $l";
}

$engines = sp_engines('strict');
// Written now, read after more than gc_maxlifetime=1 s below.
foreach ($engines as $engine => $dsn) {
    sp_cycle($dsn, 'strictexpired', function () { $_SESSION['v'] = 'stale'; });
}
$expiredAt = microtime(true);

foreach ($engines as $engine => $dsn) {
    echo "== $engine\n";

    // A new session without an id: create_sid gives one; after session_abort nothing is stored.
    sp_use($dsn, STRICT);
    session_id('');
    $_SESSION = [];
    var_dump(session_start());
    $fresh = session_id();
    echo "new id: ", preg_match('/^[0-9a-f]{32}$/', $fresh) ? '32 hex characters' : "unexpected \"$fresh\"", "\n";
    session_abort();
    echo "stored after start + abort: ", sp_yn(sp_stored($dsn, $fresh)), "\n";
    // files: the file made to lock it stays (a PHP files-handler request may be waiting on it) as a
    // lock-only placeholder, which is no session.
    echo str_replace($fresh, '<new id>', storage($engine, $dsn)), "\n";
    // Once data is written, the new session is stored.
    session_id('');
    session_start();
    $second = session_id();
    $_SESSION['w'] = 1;
    session_write_close();
    echo "second new id differs: ", sp_yn($second !== $fresh), ", stored after writing data: ", sp_yn(sp_stored($dsn, $second)), "\n";
    // ... and since nothing was stored, strict mode does not accept that id afterwards.
    $r = sp_cycle($dsn, $fresh, null, STRICT);
    echo "aborted id offered again: ", session_id() === $fresh ? 'accepted' : 'replaced', "\n";
    session_id('');

    // An id chosen by the client that the store has never seen: replaced by a new one.
    $r = sp_child_value(
        'session_id("attackerchosenid"); $ok = session_start(); $id = session_id();'
        . '$_SESSION["v"] = "planted"; session_write_close();'
        . 'return [$ok, $id];',
        ['session.save_path' => sp_q($dsn)] + STRICT
    );
    [$ok, $given] = $r ?? [false, ''];
    echo "unknown id: started=", var_export($ok, true), ", id after start ",
        $given === 'attackerchosenid' ? 'is the client\'s' : (preg_match('/^[0-9a-f]{32}$/', $given) ? 'is a new 32-character id' : "is \"$given\""), "\n";
    echo "client's id stored: ", sp_yn(sp_stored($dsn, 'attackerchosenid')), "; new id stored: ", sp_yn(sp_stored($dsn, $given)), "\n";

    // A live id is accepted and its data read, in this process and in another one.
    $r = sp_cycle($dsn, $given, function () { $_SESSION['n'] = 1; }, STRICT);
    echo "live id: same id after start: ", sp_yn(session_id() === $given), ", v=", $r['data']['v'] ?? '(none)', "\n";
    $r = sp_child_read($dsn, $given, STRICT);
    echo "live id in another process: same id: ", sp_yn(($r['id'] ?? '') === $given),
        ", data=", json_encode($r['data'] ?? null), "\n";
    session_id('');
}

// An id whose session expired (gc_maxlifetime=1, last written > 1 s ago) is not live: replaced.
$d = $expiredAt + 2.2 - microtime(true);
if ($d > 0) {
    usleep((int) ($d * 1e6));
}
foreach ($engines as $engine => $dsn) {
    $r = sp_child_read($dsn, 'strictexpired', STRICT + ['session.gc_maxlifetime' => '1']);
    echo "$engine: expired id: ", ($r['id'] ?? '') === 'strictexpired' ? 'accepted' : 'replaced',
        ", data=", json_encode($r['data'] ?? null), "\n";
    // Without strict mode the same id is kept, and its data is still expired.
    $r = sp_child_read($dsn, 'strictexpired', ['session.gc_maxlifetime' => '1']);
    echo "$engine: expired id, strict mode off: ", ($r['id'] ?? '') === 'strictexpired' ? 'accepted' : 'replaced',
        ", data=", json_encode($r['data'] ?? null), "\n";
}
?>
--EXPECT--
== sqlite
bool(true)
new id: 32 hex characters
stored after start + abort: no
sessions rows: 1, session_locks rows: 0
second new id differs: yes, stored after writing data: yes
aborted id offered again: replaced
unknown id: started=true, id after start is a new 32-character id
client's id stored: no; new id stored: yes
live id: same id after start: yes, v=planted
live id in another process: same id: yes, data={"v":"planted","n":1}
== files
bool(true)
new id: 32 hex characters
stored after start + abort: no
files: [sess_<new id> (lock only), sess_strictexpired]
second new id differs: yes, stored after writing data: yes
aborted id offered again: replaced
unknown id: started=true, id after start is a new 32-character id
client's id stored: no; new id stored: yes
live id: same id after start: yes, v=planted
live id in another process: same id: yes, data={"v":"planted","n":1}
sqlite: expired id: replaced, data=[]
sqlite: expired id, strict mode off: accepted, data=[]
files: expired id: replaced, data=[]
files: expired id, strict mode off: accepted, data=[]
