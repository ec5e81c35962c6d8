--TEST--
Hostile input through SessionProxy\Handler's methods (where PHP does not filter ids) and in DSNs: ids with ../, NUL, quotes, 10 KiB, unicode are refused with a warning and touch nothing; unicode, injection-looking and huge DSNs give the documented result
--INI--
memory_limit=256M
--FILE--
<?php
require __DIR__ . '/inc/lifecycle.inc';

$warnings = [];
set_error_handler(function (int $no, string $msg) use (&$warnings) {
    $warnings[] = $msg;
    return true;
});

// Ids a framework might pass straight from a cookie. "victim" is a real session; several ids are
// built to reach it if anything truncated at NUL, trimmed, decoded or case-folded them.
$ids = [
    '../victim' => '../victim',
    '../../etc/passwd' => '../../etc/passwd',
    'victim\0junk (NUL truncation)' => "victim\0junk",
    '\0' => "\0",
    'victim + space' => 'victim ',
    'space + victim' => ' victim',
    'victim\n' => "victim\n",
    'SQL: victim\' OR \'1\'=\'1' => "victim' OR '1'='1",
    'SQL: x\'; DELETE FROM sessions;--' => "x'; DELETE FROM sessions;--",
    'SQL: %' => '%',
    'percent-encoded victim' => '%76ictim',
    'unicode vïctim' => 'vïctim',
    'fullwidth ｖictim' => 'ｖictim',
    'sess_victim' => 'sess_victim',
    '257 chars' => str_repeat('a', 257),
    '10 KiB' => str_repeat('a', 10240),
    'empty' => '',
];

foreach (sp_engines('hostile-class') as $engine => $dsn) {
    echo "== $engine\n";
    $h = new SessionProxy\Handler($dsn);
    $h->open('', 'PHPSESSID');
    $h->read('victim');
    $h->write('victim', 'v|s:6:"intact";');
    $h->close();
    $stored = fn () => $engine === 'sqlite'
        ? array_column(sp_sql(sp_dsn_path($dsn), 'SELECT id FROM sessions ORDER BY id'), 'id')
        : array_values(array_diff(scandir(sp_dsn_path($dsn)), ['.', '..']));
    $before = $stored();
    echo 'stored before: ', json_encode($before), "\n";

    $h = new SessionProxy\Handler($dsn);
    $h->open('', 'PHPSESSID');
    foreach ($ids as $label => $id) {
        $res = [];
        $reasons = [];
        foreach (['read' => [$id], 'write' => [$id, 'v|s:6:"HACKED";'], 'updateTimestamp' => [$id, 'x'],
            'destroy' => [$id], 'validateId' => [$id]] as $method => $args) {
            $warnings = [];
            $r = $h->$method(...$args);
            $res[] = $method . '=' . var_export($r, true) . '/' . count($warnings) . 'w';
            foreach ($warnings as $w) {
                $prefix = "SessionProxy\\Handler::$method(): session_proxy: rejected session id: ";
                $reasons[] = str_starts_with($w, $prefix) ? substr($w, strlen($prefix)) : "UNEXPECTED $w";
            }
        }
        echo "$label: ", implode(' ', $res), "\n  ", implode("\n  ", array_unique($reasons)), "\n";
    }
    $h->close();
    echo 'stored after: ', json_encode($stored()), ', unchanged: ', sp_yn($stored() === $before), "\n";
    $h = new SessionProxy\Handler($dsn);
    echo 'victim reads: ', json_encode($h->read('victim')), "\n";
    $h->close();
}

// Raw payloads through the class (no session encoding around them): stored and read back byte for byte.
echo "== raw payloads through the class\n";
$payloads = ['0 B' => '', '1 B' => 'x', 'NUL' => "\0", 'invalid UTF-8' => "\xff\xfe\xc3\x28", '16 MiB random' => random_bytes(16 << 20)];
foreach (sp_engines('hostile-raw') as $engine => $dsn) {
    $res = [];
    foreach ($payloads as $label => $p) {
        $id = 'raw' . substr(md5($label), 0, 8);
        $h = new SessionProxy\Handler($dsn);
        $w = $h->read($id) === '' && $h->write($id, $p);
        $h->close();
        $h = new SessionProxy\Handler($dsn);
        $back = $h->read($id);
        $h->close();
        $res[] = "$label " . ($w && is_string($back) && strlen($back) === strlen($p) && sha1($back) === sha1($p) ? 'intact' : 'DIFFERENT');
    }
    echo "$engine: ", implode(', ', $res), "\n";
}
unset($payloads, $back);

// The native handler: a 10 KiB id set with session_id() (no strict mode: PHP passes it through).
echo "== native, 10 KiB id\n";
foreach (sp_engines('hostile-native') as $engine => $dsn) {
    sp_use($dsn, ['session.use_strict_mode' => '0']);
    $warnings = [];
    session_id(str_repeat('b', 10240));
    $ok = session_start();
    echo "$engine: start=", var_export($ok, true), ' ', json_encode(array_map(fn ($w) => str_replace($dsn, 'DSN', $w), $warnings)), "\n";
}

// DSNs. "DIR" is a fresh directory; every case is a new handler writing one session.
echo "== DSNs\n";
$d = sp_tmpdir('hostile-dsn');
mkdir("$d/été");
mkdir("$d/日本");
mkdir("$d/a;rm -rf x");
$dsns = [
    'unicode file name' => 'sqlite://DIR/sëssions-日本.sqlite',
    'unicode directory' => 'files://DIR/日本',
    'percent-encoded unicode' => 'files://DIR/%C3%A9t%C3%A9',
    'SQL in the file name' => "sqlite://DIR/x'; DROP TABLE sessions;--.sqlite",
    'shell in the directory name' => 'files://DIR/a;rm -rf x',
    'quote and hash' => 'sqlite://DIR/"a#b".sqlite',
    'escaped newline' => 'sqlite://DIR/a%0Ab.sqlite',
    'escaped tab' => 'files://DIR/%09',
    'escaped ..' => 'files://DIR/%2E%2E',
    'escaped slash-dot-dot' => 'sqlite://DIR/x%2F..%2Fy.sqlite',
    'huge option value' => 'sqlite://DIR/s.sqlite?busy_timeout=' . str_repeat('9', 5000),
    'u64 overflow' => 'sqlite://DIR/s.sqlite?busy_timeout=18446744073709551617',
    'negative depth' => 'files://DIR?depth=-1',
    'mode with setuid bits' => 'files://DIR?mode=04600',
    'unicode option value' => 'sqlite://DIR/s.sqlite?synchronous=ｆｕｌｌ',
    'unicode scheme (Cyrillic е)' => 'sqlitе://DIR/s.sqlite',
    'fullwidth slashes' => 'sqlite:／／DIR/s.sqlite',
    'invalid UTF-8' => "sqlite://DIR/\xff.sqlite",
    'SQL in an option' => "sqlite://DIR/s.sqlite?synchronous=normal';--",
    '100 options' => 'sqlite://DIR/s.sqlite?' . implode('&', array_fill(0, 100, 'a=1')),
];
foreach ($dsns as $label => $raw) {
    $dsn = str_replace('DIR', $d, $raw);
    $warnings = [];
    $before = sp_tree($d);
    try {
        $h = new SessionProxy\Handler($dsn);
        $ok = $h->read('hostiledsn1') === '' && $h->write('hostiledsn1', 'k|i:1;');
        $h->close();
        $new = array_values(array_diff(sp_tree($d), $before));
        echo "$label: works", $ok ? '' : ' BUT FAILED', ', created ', json_encode($new, JSON_UNESCAPED_UNICODE), "\n";
    } catch (SessionProxy\Exception $e) {
        $msg = str_replace([$d, str_repeat('9', 5000)], ['DIR', '9{5000}'], $e->getMessage());
        $msg = preg_replace(['/; accepted forms: .*$/', '/it is \d+ bytes long/'], ['', 'it is N bytes long'], $msg);
        echo "$label: refused: ", $msg, "\n";
        if (sp_tree($d) !== $before) {
            echo "  BUT CREATED ", json_encode(array_values(array_diff(sp_tree($d), $before))), "\n";
        }
    }
    foreach ($warnings as $w) {
        echo "  warning: ", str_replace($d, 'DIR', $w), "\n";
    }
}

// The native handler refuses a save_path that is not UTF-8 rather than opening a different file.
echo "== native, save_path not UTF-8\n";
$warnings = [];
sp_use("sqlite://$d/\xff.sqlite");
var_dump(session_start());
foreach ($warnings as $w) {
    echo str_replace($d, 'DIR', preg_replace('/; accepted forms: .*$/', '', $w)), "\n";
}
echo 'created: ', json_encode(array_values(preg_grep('/\.sqlite$/', array_diff(scandir($d), ['.', '..']))), JSON_UNESCAPED_UNICODE), "\n";

// Ports, hosts and schemes of engines that may or may not be built: always refused with the
// exception (bad port, bad host), never a crash, never a password in the message.
echo "== network DSNs with bad values\n";
foreach ([
    'redis://127.0.0.1:99999', 'redis://127.0.0.1:-1', 'redis://127.0.0.1:port', 'redis://:hunter2@[::1', 'memcached://h:0',
    'memcached://user:hunter2@h:65536', 'rediss://' . str_repeat('h', 300) . ':6379?auth=hunter2&timeout=-5',
] as $dsn) {
    try {
        new SessionProxy\Handler($dsn);
        echo "accepted: $dsn\n";
    } catch (SessionProxy\Exception $e) {
        echo 'refused, password hidden: ', sp_yn(!str_contains($e->getMessage(), 'hunter2')), "\n";
    }
}
?>
--EXPECT--
== sqlite
stored before: ["victim"]
../victim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x2e at offset 0)
../../etc/passwd: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x2e at offset 0)
victim\0junk (NUL truncation): read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x00 at offset 6)
\0: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x00 at offset 0)
victim + space: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x20 at offset 6)
space + victim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x20 at offset 0)
victim\n: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x0a at offset 6)
SQL: victim' OR '1'='1: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x27 at offset 6)
SQL: x'; DELETE FROM sessions;--: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x27 at offset 1)
SQL: %: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x25 at offset 0)
percent-encoded victim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x25 at offset 0)
unicode vïctim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0xc3 at offset 1)
fullwidth ｖictim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0xef at offset 0)
sess_victim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x5f at offset 4)
257 chars: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id is 257 bytes long (at most 256)
10 KiB: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id is 10240 bytes long (at most 256)
empty: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id is empty
stored after: ["victim"], unchanged: yes
victim reads: "v|s:6:\"intact\";"
== files
stored before: ["sess_victim"]
../victim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x2e at offset 0)
../../etc/passwd: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x2e at offset 0)
victim\0junk (NUL truncation): read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x00 at offset 6)
\0: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x00 at offset 0)
victim + space: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x20 at offset 6)
space + victim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x20 at offset 0)
victim\n: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x0a at offset 6)
SQL: victim' OR '1'='1: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x27 at offset 6)
SQL: x'; DELETE FROM sessions;--: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x27 at offset 1)
SQL: %: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x25 at offset 0)
percent-encoded victim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x25 at offset 0)
unicode vïctim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0xc3 at offset 1)
fullwidth ｖictim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0xef at offset 0)
sess_victim: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id contains a character outside [a-zA-Z0-9,-] (byte 0x5f at offset 4)
257 chars: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id is 257 bytes long (at most 256)
10 KiB: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id is 10240 bytes long (at most 256)
empty: read=false/1w write=false/1w updateTimestamp=false/1w destroy=false/1w validateId=false/0w
  session id is empty
stored after: ["sess_victim"], unchanged: yes
victim reads: "v|s:6:\"intact\";"
== raw payloads through the class
sqlite: 0 B intact, 1 B intact, NUL intact, invalid UTF-8 intact, 16 MiB random intact
files: 0 B intact, 1 B intact, NUL intact, invalid UTF-8 intact, 16 MiB random intact
== native, 10 KiB id
sqlite: start=false ["session_start(): session_proxy: rejected session id: session id is 10240 bytes long (at most 256)","session_start(): Failed to read session data: session_proxy (path: DSN)"]
files: start=false ["session_start(): session_proxy: rejected session id: session id is 10240 bytes long (at most 256)","session_start(): Failed to read session data: session_proxy (path: DSN)"]
== DSNs
unicode file name: works, created ["sëssions-日本.sqlite","sëssions-日本.sqlite-locks","sëssions-日本.sqlite-shm","sëssions-日本.sqlite-wal"]
unicode directory: works, created ["日本\/sess_hostiledsn1"]
percent-encoded unicode: works, created ["été\/sess_hostiledsn1"]
SQL in the file name: works, created ["x'; DROP TABLE sessions;--.sqlite","x'; DROP TABLE sessions;--.sqlite-locks","x'; DROP TABLE sessions;--.sqlite-shm","x'; DROP TABLE sessions;--.sqlite-wal"]
shell in the directory name: works, created ["a;rm -rf x\/sess_hostiledsn1"]
quote and hash: works, created ["\"a#b\".sqlite","\"a#b\".sqlite-locks","\"a#b\".sqlite-shm","\"a#b\".sqlite-wal"]
escaped newline: refused: session_proxy: invalid session.save_path "sqlite://DIR/a%0Ab.sqlite": "DIR/a%0Ab.sqlite" decodes to a control character
escaped tab: refused: session_proxy: invalid session.save_path "files://DIR/%09": "DIR/%09" decodes to a control character
escaped ..: refused: session_proxy: invalid session.save_path "files://DIR/%2E%2E": path "DIR/.." contains ".."
escaped slash-dot-dot: refused: session_proxy: invalid session.save_path "sqlite://DIR/x%2F..%2Fy.sqlite": path "DIR/x/../y.sqlite" contains ".."
huge option value: refused: session_proxy: invalid session.save_path "sqlite://DIR/s.sqlite?busy_timeout=9{5000}": it is N bytes long (at most 4096)
u64 overflow: refused: session_proxy: invalid session.save_path "sqlite://DIR/s.sqlite?busy_timeout=18446744073709551617": option busy_timeout="18446744073709551617" must be an integer from 0 to 600000
negative depth: refused: session_proxy: invalid session.save_path "files://DIR?depth=-1": option depth="-1" must be an integer from 0 to 8
mode with setuid bits: refused: session_proxy: invalid session.save_path "files://DIR?mode=04600": option mode="04600" must be octal permission bits including 0600
unicode option value: refused: session_proxy: invalid session.save_path "sqlite://DIR/s.sqlite?synchronous=ｆｕｌｌ": option synchronous="ｆｕｌｌ" must be normal or full
unicode scheme (Cyrillic е): refused: session_proxy: invalid session.save_path "sqlitе://DIR/s.sqlite": unknown scheme "sqlitе"
fullwidth slashes: refused: session_proxy: invalid session.save_path "sqlite:／／DIR/s.sqlite": it is neither a DSN (scheme://...) nor an absolute directory
invalid UTF-8: refused: session_proxy: the DSN is not valid UTF-8
SQL in an option: refused: session_proxy: invalid session.save_path "sqlite://DIR/s.sqlite?synchronous=normal\';--": option synchronous="normal';--" must be normal or full
100 options: refused: session_proxy: invalid session.save_path "sqlite://DIR/s.sqlite?a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1&a=1": option "a" is given twice
== native, save_path not UTF-8
bool(false)
session_start(): session_proxy: invalid session.save_path "sqlite://DIR/�.sqlite": it is not valid UTF-8
session_start(): Failed to initialize storage module: session_proxy (path: sqlite://DIR/�.sqlite)
created: ["\"a#b\".sqlite","sëssions-日本.sqlite","x'; DROP TABLE sessions;--.sqlite"]
== network DSNs with bad values
refused, password hidden: yes
refused, password hidden: yes
refused, password hidden: yes
refused, password hidden: yes
refused, password hidden: yes
refused, password hidden: yes
refused, password hidden: yes
