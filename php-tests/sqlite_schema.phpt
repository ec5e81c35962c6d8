--TEST--
SQLite engine: the database has exactly the documented schema (gc finds idle sessions by the gc_bucket index, the minute of updated_at, set by a write that moves a session into another minute), and a row's data column holds exactly the encoded session bytes
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

$dsn = sp_engines('schema')['sqlite'];
$db = sp_dsn_path($dsn);

$value = ['user' => 'bob', 'bin' => "\0\x01\xff\xfe\xc3\x28", 'n' => 7, 'f' => 1.5, 'nested' => ['a' => [true, null]]];
$encoded = [];
$t0 = microtime(true);
foreach (['php', 'php_binary', 'php_serialize'] as $handler) {
    $id = 'schema-' . str_replace('_', '-', $handler);
    sp_use($dsn, ['session.serialize_handler' => $handler]);
    session_id($id);
    session_start();
    $_SESSION = $value;
    $encoded[$id] = session_encode();
    session_write_close();
}
ini_restore('session.serialize_handler');
$t1 = microtime(true);

$schema = sp_sql_script($db, '
    $out = [];
    $r = $db->query("SELECT type, name, tbl_name FROM sqlite_master ORDER BY type, name");
    while ($row = $r->fetchArray(SQLITE3_NUM)) { $out["objects"][] = implode(" ", $row); }
    foreach (["sessions", "session_locks"] as $t) {
        $r = $db->query("PRAGMA table_info($t)");
        while ($c = $r->fetchArray(SQLITE3_ASSOC)) {
            $out["columns"][$t][] = sprintf("%s %s%s%s%s", $c["name"], $c["type"], $c["notnull"] ? " NOT NULL" : "",
                $c["pk"] ? " PRIMARY KEY" : "", $c["dflt_value"] !== null ? " DEFAULT " . $c["dflt_value"] : "");
        }
    }
    $r = $db->query("PRAGMA index_info(sessions_gc_bucket)");
    while ($c = $r->fetchArray(SQLITE3_ASSOC)) { $out["index"][] = $c["name"]; }
    $out["journal_mode"] = $db->querySingle("PRAGMA journal_mode");
    return $out;
');
echo "schema objects:\n";
foreach ($schema['objects'] ?? [] as $o) {
    echo "  $o\n";
}
foreach ($schema['columns'] ?? [] as $t => $cols) {
    echo "$t columns:\n";
    foreach ($cols as $c) {
        echo "  $c\n";
    }
}
echo "sessions_gc_bucket indexes: ", implode(', ', $schema['index'] ?? []), "\n";
echo "journal_mode: ", $schema['journal_mode'] ?? '?', "\n";

// The stored rows, exactly.
$rows = sp_sql($db, 'SELECT id, data, typeof(data) AS t, created_at, updated_at, typeof(created_at) AS tc,
    typeof(updated_at) AS tu, user_id, gc_bucket = CAST(updated_at / 60 AS INTEGER) AS minute FROM sessions ORDER BY id');
foreach ($rows ?? [] as $row) {
    $id = $row['id'];
    printf(
        "%s: data is %s, %s; created_at %s %s, updated_at %s %s; user_id %s; gc_bucket the minute of updated_at: %s\n",
        $id,
        $row['t'],
        $row['data'] === ($encoded[$id] ?? null) ? 'byte-identical to session_encode()' : 'DIFFERENT: ' . bin2hex($row['data']),
        $row['tc'],
        $row['created_at'] >= $t0 - 1 && $row['created_at'] <= $t1 + 1 ? 'now' : 'WRONG ' . $row['created_at'],
        $row['tu'],
        $row['updated_at'] === $row['created_at'] ? '= created_at' : 'WRONG ' . $row['updated_at'],
        var_export($row['user_id'], true),
        sp_yn($row['minute'] === 1)
    );
}
echo "session_locks rows after the requests: ", json_encode(sp_sql($db, 'SELECT * FROM session_locks')), "\n";

// During a request the lock is no row: it is a kernel lock on a byte of the empty, private file
// <database>-locks, which another process meets (it times out); a rewrite keeps created_at.
$before = sp_sql($db, 'SELECT created_at, updated_at FROM sessions WHERE id = ?', ['schema-php'])[0];
usleep(50000);
sp_use($dsn);
session_id('schema-php');
session_start();
$lock = sp_sql($db, 'SELECT id, owner, expires_at FROM session_locks');
clearstatcache();
echo "lock rows during a request: ", count($lock ?? []), "; ", basename($db), "-locks: ",
    is_file("$db-locks") ? sprintf('%d bytes, mode %o', filesize("$db-locks"), fileperms("$db-locks") & 0777) : 'missing', "\n";
$other = sp_child_value('session_id("schema-php"); $m = []; '
    . 'set_error_handler(function ($n, $s) use (&$m) { $m[] = $s; return true; }); $ok = session_start(); '
    . 'return [$ok, preg_match("/timed out after 200 ms .*waiting for the lock/", implode("\\n", $m))];',
    ['session.save_path' => sp_q($dsn), 'session_proxy.lock_wait_timeout' => '200']);
echo "another process meanwhile: session_start ", var_export($other[0] ?? null, true), ", timed out waiting for the lock: ",
    sp_yn(($other[1] ?? 0) === 1), "\n";
$_SESSION['n'] = 8;
$enc = session_encode();
session_write_close();
$after = sp_sql($db, 'SELECT data, created_at, updated_at, gc_bucket = CAST(updated_at / 60 AS INTEGER) AS minute FROM sessions WHERE id = ?', ['schema-php'])[0];
echo "rewrite: data = session_encode(): ", sp_yn($after['data'] === $enc), "; created_at kept: ",
    sp_yn($after['created_at'] === $before['created_at']), "; updated_at advanced: ", sp_yn($after['updated_at'] > $before['updated_at']),
    "; gc_bucket the minute of updated_at: ", sp_yn($after['minute'] === 1), "\n";
echo "session_locks rows after: ", json_encode(sp_sql($db, 'SELECT * FROM session_locks')), "\n";
echo "rows: ", json_encode(array_column(sp_sql($db, 'SELECT id FROM sessions ORDER BY id') ?? [], 'id')), "\n";
?>
--EXPECT--
schema objects:
  index sessions_gc_bucket sessions
  index sqlite_autoindex_sessions_1 sessions
  table session_locks session_locks
  table sessions sessions
sessions columns:
  id TEXT NOT NULL PRIMARY KEY
  data BLOB NOT NULL
  created_at REAL NOT NULL
  updated_at REAL NOT NULL
  user_id TEXT
  version INTEGER NOT NULL DEFAULT 0
  gc_bucket INTEGER
session_locks columns:
  id TEXT NOT NULL PRIMARY KEY
  owner TEXT NOT NULL
  expires_at REAL NOT NULL
sessions_gc_bucket indexes: gc_bucket
journal_mode: wal
schema-php: data is blob, byte-identical to session_encode(); created_at real now, updated_at real = created_at; user_id NULL; gc_bucket the minute of updated_at: yes
schema-php-binary: data is blob, byte-identical to session_encode(); created_at real now, updated_at real = created_at; user_id NULL; gc_bucket the minute of updated_at: yes
schema-php-serialize: data is blob, byte-identical to session_encode(); created_at real now, updated_at real = created_at; user_id NULL; gc_bucket the minute of updated_at: yes
session_locks rows after the requests: []
lock rows during a request: 0; sessions.sqlite-locks: 0 bytes, mode 600
another process meanwhile: session_start false, timed out waiting for the lock: yes
rewrite: data = session_encode(): yes; created_at kept: yes; updated_at advanced: yes; gc_bucket the minute of updated_at: yes
session_locks rows after: []
rows: ["schema-php","schema-php-binary","schema-php-serialize"]
