--TEST--
Malformed session.save_path: session_start() fails, the warning names the problem and lists the accepted forms, hides passwords, creates nothing
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

const ACCEPTED = 'accepted forms: "sqlite:///abs/path/file.sqlite[?busy_timeout=MS&synchronous=normal|full]", '
    . '"files:///abs/dir[?depth=N&mode=0600]", '
    . '"redis://[[user]:password@]host[:port][/db][?prefix=…&timeout=S&read_timeout=S&persistent=0|1&busy_poll=µS]", '
    . '"rediss://…[?ca=/ca.pem&cert=/c.pem&key=/k.pem&verify=full|ca|none]" (TLS), '
    . '"unix:///path/redis.sock[?db=N&prefix=…]", phpredis\' "tcp://host:port[?auth=…&database=N&prefix=…&timeout=S&weight=N]" '
    . '(or a comma list of them), "redis-cluster://host:port[,host:port…][?prefix=…]", '
    . '"rediss-cluster://…[?ca=…&cert=…&key=…&verify=…]" (TLS), '
    . '"redis-sentinel://host:port[,host:port…]/<master-name>[?db=N&prefix=…&sentinel_user=…&sentinel_password=…]", '
    . '"rediss-sentinel://…/<master-name>[?ca=…&cert=…&key=…&verify=…]" (TLS), '
    . 'phpredis\' cluster "seed[]=host:port&seed[]=host:port[&auth=…&prefix=…&timeout=S&read_timeout=S&persistent=0|1&failover=…]", '
    . '"memcached://host[:port][,host[:port]|,/unix.sock...][?prefix=P&replicas=N&timeout=MS&retry=MS&weights=W,...&lock_placement=compat|session&busy_poll=µS]", '
    . '"pgsql://[user[:password]@]host[:port][,host[:port]…]/dbname[?table=…&sslmode=disable|prefer|require|verify-full&sslrootcert=…&connect_timeout=S&lock=advisory|row&schema=native|symfony&create=auto|never]", "mysql://[user[:password]@]host[:port]/dbname[?…same options as pgsql…]", "mysql:///dbname?socket=/run/mysqld/mysqld.sock[&…]", an absolute directory (SQLite file session_proxy.sqlite inside it), '
    . 'or empty (SQLite file session_proxy.sqlite in session_proxy-<uid>, a private directory of the system temp dir)';

$d = sp_tmpdir('baddsn');
// Relative paths, if they were ever accepted, would land here too.
chdir($d);
$long = 'sqlite://' . $d . '/' . str_repeat('a', 5000) . '.sqlite';

// label => save_path ("DIR" stands for the test's own directory).
$cases = [
    'unknown scheme' => 'ftp://host/x',
    'unknown scheme with password' => 'mssql://root:hunter2@db/sessions',
    'relative name' => 'sessions',
    'relative directory' => 'var/lib/php/sessions',
    'scheme typo (one slash)' => 'sqlite:DIR/s.sqlite',
    'files handler N;/dir form' => '2;DIR',
    'sqlite relative file' => 'sqlite://s.sqlite',
    'files relative dir' => 'files://files',
    'sqlite names a directory' => 'sqlite://DIR/',
    'sqlite root' => 'sqlite:///',
    'sqlite ..' => 'sqlite://DIR/../s.sqlite',
    'plain dir ..' => 'DIR/sub/..',
    'files ..' => 'files://DIR/..',
    'busy_timeout not a number' => 'sqlite://DIR/s.sqlite?busy_timeout=abc',
    'busy_timeout negative' => 'sqlite://DIR/s.sqlite?busy_timeout=-1',
    'busy_timeout too large' => 'sqlite://DIR/s.sqlite?busy_timeout=600001',
    'synchronous unknown' => 'sqlite://DIR/s.sqlite?synchronous=off',
    'depth too large' => 'files://DIR?depth=9',
    'mode not octal' => 'files://DIR?mode=999',
    'mode without 0600' => 'files://DIR?mode=0400',
    'unknown sqlite option' => 'sqlite://DIR/s.sqlite?foo=1',
    'unknown files option' => 'files://DIR?table=x',
    'duplicate option' => 'sqlite://DIR/s.sqlite?busy_timeout=1&busy_timeout=2',
    'duplicate option, other case' => 'files://DIR?depth=1&DEPTH=2',
    'empty option value' => 'sqlite://DIR/s.sqlite?busy_timeout=',
    'option without value' => 'sqlite://DIR/s.sqlite?synchronous',
    'bad percent escape' => 'sqlite://DIR/x%zz.sqlite',
    'truncated percent escape' => 'sqlite://DIR/x.sqlite%4',
    '%00 in path' => 'sqlite://DIR/x%00.sqlite',
    '%00 in option' => 'files://DIR?mode=06%0000',
    '%ff in path' => 'files://DIR/x%ff',
    'control character' => "sqlite://DIR/x\n.sqlite",
    'over 4096 bytes' => $long,
    'redis with user and password' => 'redis://user:hunter2@127.0.0.1:6379/0?bogus=1',
    'redis with password only' => 'redis://:hunter2@127.0.0.1:99999',
    'tcp with auth option' => 'tcp://127.0.0.1:6379?auth=hunter2&database=x',
];

$warnings = [];
set_error_handler(function (int $no, string $msg) use (&$warnings) {
    $warnings[] = [$no, $msg];
    return true;
});
sp_use('');

$show = fn (string $s) => str_replace([$d, str_repeat('a', 5000), 'it is ' . strlen($long) . ' bytes'], ['DIR', 'a{5000}', 'it is LEN bytes'], $s);

foreach ($cases as $label => $path) {
    $path = str_replace('DIR', $d, $path);
    $warnings = [];
    if (ini_set('session.save_path', $path) === false) {
        echo "$label: ini_set refused the value\n";
        continue;
    }
    $started = session_start();
    $status = session_status();
    if ($status === PHP_SESSION_ACTIVE) {
        session_abort();
    }
    echo "$label: start=", var_export($started, true), ' active=', var_export($status === PHP_SESSION_ACTIVE, true), "\n";

    // Ours first, then PHP's own "Failed to initialize storage module" (its text, with the raw save_path).
    $ours = array_shift($warnings);
    $php = array_shift($warnings);
    foreach ($warnings as [$no, $msg]) {
        echo "  unexpected [$no]: ", $show($msg), "\n";
    }
    $prefix = 'session_start(): session_proxy: invalid session.save_path "';
    $suffix = '; ' . ACCEPTED;
    if ($ours === null || $ours[0] !== E_WARNING || !str_starts_with($ours[1], $prefix) || !str_ends_with($ours[1], $suffix)) {
        echo '  NOT OUR DSN WARNING: ', var_export($ours, true), "\n";
    } else {
        $body = substr($ours[1], strlen($prefix), -strlen($suffix));
        // The value as shown, then the reason (split at the last '": ' before the reason).
        $cut = strpos($body, '": ');
        $shown = substr($body, 0, $cut);
        $reason = substr($body, $cut + 3);
        if (str_contains($path, "\n")) {
            $shown = '(contains a control character, not shown)';
        }
        echo '  value:  ', $show($shown), "\n";
        echo '  reason: ', $show($reason), "\n";
        if (str_contains($path, 'hunter2')) {
            echo '  password in our warning: ', var_export(str_contains($ours[1], 'hunter2'), true), "\n";
        }
    }
    if ($php !== [E_WARNING, "session_start(): Failed to initialize storage module: session_proxy (path: $path)"]) {
        echo '  PHP follow-up missing or different: ', var_export($php, true), "\n";
    }
    $left = array_diff(scandir($d), ['.', '..']);
    if ($left) {
        echo '  created: ', implode(', ', $left), "\n";
    }
}
echo 'test directory still empty: ', var_export(array_diff(scandir($d), ['.', '..']) === [], true), "\n";
?>
--EXPECT--
unknown scheme: start=false active=false
  value:  ftp://host/x
  reason: unknown scheme "ftp"
unknown scheme with password: start=false active=false
  value:  mssql://root:***@db/sessions
  reason: unknown scheme "mssql"
  password in our warning: false
relative name: start=false active=false
  value:  sessions
  reason: it is neither a DSN (scheme://...) nor an absolute directory
relative directory: start=false active=false
  value:  var/lib/php/sessions
  reason: it is neither a DSN (scheme://...) nor an absolute directory
scheme typo (one slash): start=false active=false
  value:  sqlite:DIR/s.sqlite
  reason: it is neither a DSN (scheme://...) nor an absolute directory
files handler N;/dir form: start=false active=false
  value:  2;DIR
  reason: the "N;[MODE;]/dir" form of PHP's files handler is not accepted; write files:///dir?depth=N&mode=MODE
sqlite relative file: start=false active=false
  value:  sqlite://s.sqlite
  reason: path "s.sqlite" is not absolute
files relative dir: start=false active=false
  value:  files://files
  reason: path "files" is not absolute
sqlite names a directory: start=false active=false
  value:  sqlite://DIR/
  reason: DIR/ names a directory; sqlite:// takes a file path
sqlite root: start=false active=false
  value:  sqlite:///
  reason: / names a directory; sqlite:// takes a file path
sqlite ..: start=false active=false
  value:  sqlite://DIR/../s.sqlite
  reason: path "DIR/../s.sqlite" contains ".."
plain dir ..: start=false active=false
  value:  DIR/sub/..
  reason: path "DIR/sub/.." contains ".."
files ..: start=false active=false
  value:  files://DIR/..
  reason: path "DIR/.." contains ".."
busy_timeout not a number: start=false active=false
  value:  sqlite://DIR/s.sqlite?busy_timeout=abc
  reason: option busy_timeout="abc" must be an integer from 0 to 600000
busy_timeout negative: start=false active=false
  value:  sqlite://DIR/s.sqlite?busy_timeout=-1
  reason: option busy_timeout="-1" must be an integer from 0 to 600000
busy_timeout too large: start=false active=false
  value:  sqlite://DIR/s.sqlite?busy_timeout=600001
  reason: option busy_timeout="600001" must be an integer from 0 to 600000
synchronous unknown: start=false active=false
  value:  sqlite://DIR/s.sqlite?synchronous=off
  reason: option synchronous="off" must be normal or full
depth too large: start=false active=false
  value:  files://DIR?depth=9
  reason: option depth="9" must be an integer from 0 to 8
mode not octal: start=false active=false
  value:  files://DIR?mode=999
  reason: option mode="999" must be octal permission bits including 0600
mode without 0600: start=false active=false
  value:  files://DIR?mode=0400
  reason: option mode="0400" must be octal permission bits including 0600
unknown sqlite option: start=false active=false
  value:  sqlite://DIR/s.sqlite?foo=1
  reason: unknown option "foo" for sqlite:// (known: busy_timeout, synchronous)
unknown files option: start=false active=false
  value:  files://DIR?table=x
  reason: unknown option "table" for files:// (known: depth, mode)
duplicate option: start=false active=false
  value:  sqlite://DIR/s.sqlite?busy_timeout=1&busy_timeout=2
  reason: option "busy_timeout" is given twice
duplicate option, other case: start=false active=false
  value:  files://DIR?depth=1&DEPTH=2
  reason: option "depth" is given twice
empty option value: start=false active=false
  value:  sqlite://DIR/s.sqlite?busy_timeout=
  reason: option "busy_timeout" has an empty value
option without value: start=false active=false
  value:  sqlite://DIR/s.sqlite?synchronous
  reason: option "synchronous" has no value (write key=value)
bad percent escape: start=false active=false
  value:  sqlite://DIR/x%zz.sqlite
  reason: bad percent-escape in "DIR/x%zz.sqlite"
truncated percent escape: start=false active=false
  value:  sqlite://DIR/x.sqlite%4
  reason: bad percent-escape in "DIR/x.sqlite%4"
%00 in path: start=false active=false
  value:  sqlite://DIR/x%00.sqlite
  reason: "DIR/x%00.sqlite" decodes to a NUL byte
%00 in option: start=false active=false
  value:  files://DIR?mode=06%0000
  reason: "06%0000" decodes to a NUL byte
%ff in path: start=false active=false
  value:  files://DIR/x%ff
  reason: "DIR/x%ff" decodes to invalid UTF-8
control character: start=false active=false
  value:  (contains a control character, not shown)
  reason: it contains a control character
over 4096 bytes: start=false active=false
  value:  sqlite://DIR/a{5000}.sqlite
  reason: it is LEN bytes long (at most 4096)
redis with user and password: start=false active=false
  value:  redis://user:***@127.0.0.1:6379/0?bogus=1
  reason: unknown option "bogus" for redis:// (known: prefix, timeout, read_timeout, persistent, busy_poll)
  password in our warning: false
redis with password only: start=false active=false
  value:  redis://:***@127.0.0.1:99999
  reason: port "99999" must be an integer from 1 to 65535
  password in our warning: false
tcp with auth option: start=false active=false
  value:  tcp://127.0.0.1:6379?auth=***&database=x
  reason: option database="x" must be an integer from 0 to 65535
  password in our warning: false
test directory still empty: true
