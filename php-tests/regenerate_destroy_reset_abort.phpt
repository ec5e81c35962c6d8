--TEST--
session_regenerate_id(false/true), session_destroy(), session_reset(), session_abort(): same observable results as PHP's own files handler, on both engines
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

// The scenario, run once per handler in a child process. stored() looks at storage directly;
// peek() reads a session in a new request cycle that writes nothing.
$scenario = <<<'PHP'
ob_start(); // printed output must not count as headers sent
function yn(bool $b): string { return $b ? 'yes' : 'no'; }
function stored(string $id): string {
    if (PROBE[0] === 'files') {
        clearstatcache();
        return yn(file_exists(PROBE[1] . "/sess_$id"));
    }
    $db = new SQLite3(PROBE[1], SQLITE3_OPEN_READONLY);
    $db->busyTimeout(10000);
    $st = $db->prepare('SELECT COUNT(*) FROM sessions WHERE id = ?');
    $st->bindValue(1, $id);
    $n = $st->execute()->fetchArray(SQLITE3_NUM)[0];
    $db->close();
    return yn($n > 0);
}
function peek(string $id): string {
    session_id($id);
    if (!session_start(['read_and_close' => true])) {
        return 'start failed';
    }
    $s = json_encode($_SESSION);
    $_SESSION = [];
    return $s;
}
function put(string $id, array $data): void {
    session_id($id);
    session_start();
    $_SESSION = $data;
    session_write_close();
}
$fresh = fn (string $id) => preg_match('/^[0-9a-f]{32}$/', $id) ? 'a new id' : "unexpected id \"$id\"";

echo "-- regenerate_id(false), changed after regenerating\n";
put('rgkeep', ['v' => 'old']);
session_id('rgkeep');
session_start();
var_dump(session_regenerate_id(false));
$new = session_id();
echo "now: ", $fresh($new), "\n";
$_SESSION['v'] = 'new';
session_write_close();
echo "old id: ", peek('rgkeep'), "\n";
echo "new id: ", peek($new), "\n";

echo "-- regenerate_id(false), changed before regenerating (the old id gets the data of that moment)\n";
put('rgkeep2', ['v' => 'old']);
session_id('rgkeep2');
session_start();
$_SESSION['v'] = 'changed';
session_regenerate_id(false);
$new = session_id();
$_SESSION['after'] = 1;
session_write_close();
echo "old id: ", peek('rgkeep2'), "\n";
echo "new id: ", peek($new), "\n";

echo "-- regenerate_id(true)\n";
put('rgdel', ['v' => 'data']);
session_id('rgdel');
session_start();
var_dump(session_regenerate_id(true));
$new = session_id();
echo "now: ", $fresh($new), "; old id stored while the request runs: ", stored('rgdel'), "\n";
$_SESSION['more'] = 2;
session_write_close();
echo "old id stored: ", stored('rgdel'), "; new id stored: ", stored($new), "\n";
echo "old id: ", peek('rgdel'), "\n";
echo "new id: ", peek($new), "\n";

echo "-- session_destroy()\n";
put('dstr', ['v' => 'x']);
session_id('dstr');
session_start();
echo "stored before: ", stored('dstr'), "\n";
var_dump(session_destroy());
echo "active: ", yn(session_status() === PHP_SESSION_ACTIVE), "; stored: ", stored('dstr'),
    "; \$_SESSION in memory: ", json_encode($_SESSION), "\n";
var_dump(@session_write_close());
echo "stored after write_close: ", stored('dstr'), "\n";
echo "read again: ", peek('dstr'), "\n";

echo "-- session_reset()\n";
put('rst', ['v' => 1, 'w' => 'keep']);
session_id('rst');
session_start();
$_SESSION['v'] = 2;
$_SESSION['x'] = 3;
unset($_SESSION['w']);
var_dump(session_reset());
echo "after reset: ", json_encode($_SESSION), "\n";
$_SESSION['y'] = 4;
session_write_close();
echo "read again: ", peek('rst'), "\n";

echo "-- session_abort()\n";
put('abt', ['v' => 1]);
session_id('abt');
session_start();
$_SESSION['v'] = 2;
$_SESSION['x'] = 3;
var_dump(session_abort());
echo "active: ", yn(session_status() === PHP_SESSION_ACTIVE), "\n";
echo "read again: ", peek('abt'), "\n";
// The aborted request released its lock: this one writes at once.
session_id('abt');
session_start();
$_SESSION['v'] = 5;
session_write_close();
echo "after a new write: ", peek('abt'), "\n";
PHP;

$php = sp_tmpdir('rdra-php');
$runs = ['PHP files handler' => [
    'probe' => ['files', $php],
    'ini' => ['session.save_handler' => 'files', 'session.save_path' => sp_q($php)],
]];
foreach (sp_engines('rdra') as $engine => $dsn) {
    $runs["session_proxy $engine"] = [
        'probe' => [$engine, sp_dsn_path($dsn)],
        'ini' => ['session.save_path' => sp_q($dsn)],
    ];
}

$outputs = [];
foreach ($runs as $name => $run) {
    $code = 'const PROBE = ' . var_export($run['probe'], true) . ";\n" . $scenario;
    $out = sp_child($code, $run['ini'] + ['extension' => 'sqlite3']);
    // Warnings name the child's script, which differs per run.
    $outputs[$name] = preg_replace('~ in /\S+/child\w+\.php on line~', ' in child.php on line', $out);
}
$ref = $outputs['PHP files handler'];
echo $ref;
foreach ($outputs as $name => $out) {
    if ($name === 'PHP files handler') {
        continue;
    }
    echo "== $name: identical to PHP's files handler: ", sp_yn($out === $ref), "\n";
    if ($out !== $ref) {
        $a = explode("\n", $ref);
        $b = explode("\n", $out);
        foreach ($b as $i => $line) {
            if (($a[$i] ?? null) !== $line) {
                echo "   line ", $i + 1, ": PHP files: ", $a[$i] ?? '(none)', "\n";
                echo "   line ", $i + 1, ": $name: $line\n";
            }
        }
    }
}
?>
--EXPECT--
-- regenerate_id(false), changed after regenerating
bool(true)
now: a new id
old id: {"v":"old"}
new id: {"v":"new"}
-- regenerate_id(false), changed before regenerating (the old id gets the data of that moment)
old id: {"v":"changed"}
new id: {"v":"changed","after":1}
-- regenerate_id(true)
bool(true)
now: a new id; old id stored while the request runs: no
old id stored: no; new id stored: yes
old id: []
new id: {"v":"data","more":2}
-- session_destroy()
stored before: yes
bool(true)
active: no; stored: no; $_SESSION in memory: {"v":"x"}
bool(false)
stored after write_close: no
read again: []
-- session_reset()
bool(true)
after reset: {"v":1,"w":"keep"}
read again: {"v":1,"w":"keep","y":4}
-- session_abort()
bool(true)
active: no
read again: {"v":1}
after a new write: {"v":5}
== session_proxy sqlite: identical to PHP's files handler: yes
== session_proxy files: identical to PHP's files handler: yes
