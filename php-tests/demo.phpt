--TEST--
Demo: the Makefile's demo command serves demo/index.php on the zero-config SQLite default; the visit counter goes 1, 2 with the cookie, 1 without
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

$repo = dirname(__DIR__);
$tmp = sp_tmpdir('demo');

// The demo recipe from the Makefile: its "$(PHP) ..." command, continuation lines joined.
$make = file_get_contents("$repo/Makefile");
if (!preg_match('/^demo:.*\n((?:\t.*\n)+)/m', $make, $m)) {
    exit("no demo target in the Makefile\n");
}
$recipe = str_replace("\\\n\t", ' ', $m[1]);
if (!preg_match('/^\t(\$\(PHP\) .*)$/m', $recipe, $m)) {
    exit("no \$(PHP) command in the demo recipe\n");
}
$cmd = preg_replace('/\s+/', ' ', trim($m[1]));

// A free port: bind port 0, note what the kernel picked, release it for the server.
$probe = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
$port = (int) substr(strrchr(stream_socket_get_name($probe, false), ':'), 1);
fclose($probe);

$cmd = strtr($cmd, [
    '$(PHP)' => escapeshellarg(sp_php_binary()),
    '$(SO)' => escapeshellarg(sp_so()),
    '$(DEMO_HOST)' => '127.0.0.1',
    '$(DEMO_PORT)' => (string) $port,
]);
// Same command, with the system temp dir pointed at this test's directory.
$cmd = str_replace(' -S ', ' -d ' . escapeshellarg("sys_temp_dir=$tmp") . ' -S ', $cmd);
echo 'command: ', str_replace([sp_php_binary(), sp_so(), $tmp, (string) $port], ['PHP', 'SO', 'TMP', 'PORT'], $cmd), "\n";

$log = "$tmp/server.log";
$server = proc_open(['/bin/sh', '-c', "exec $cmd"], [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'w'], 2 => ['file', $log, 'w']], $pipes, $repo);
// If the test stops early: stop the server, then remove its directory (the helper's own cleanup ran first).
register_shutdown_function(function () use ($server, $tmp) {
    if (is_resource($server) && proc_get_status($server)['running']) {
        proc_terminate($server);
        proc_close($server);
    }
    sp_rmrf($tmp);
});

$deadline = microtime(true) + 15;
while (!($c = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 0.2))) {
    if (microtime(true) > $deadline || !proc_get_status($server)['running']) {
        exit("server did not start:\n" . @file_get_contents($log));
    }
    usleep(50000);
}
fclose($c);

function get(int $port, ?string $cookie): array
{
    $ctx = stream_context_create(['http' => [
        'header' => $cookie ? "Cookie: $cookie\r\n" : '',
        'timeout' => 10,
        'ignore_errors' => true,
    ]]);
    $body = file_get_contents("http://127.0.0.1:$port/", false, $ctx);
    $headers = $http_response_header ?? [];
    $set = null;
    foreach ($headers as $h) {
        if (preg_match('/^Set-Cookie:\s*(PHPSESSID=[^;]+)/i', $h, $m)) {
            $set = $m[1];
        }
    }
    return ['status' => $headers[0] ?? '(no response)', 'body' => $body, 'cookie' => $set];
}

$first = get($port, null);
echo "first:  {$first['status']} body=", json_encode($first['body']), ' cookie=', $first['cookie'] ? 'PHPSESSID' : 'none', "\n";
$second = get($port, $first['cookie']);
echo "second: {$second['status']} body=", json_encode($second['body']), "\n";
$third = get($port, null);
echo "third:  {$third['status']} body=", json_encode($third['body']), ' new session: ',
    var_export($third['cookie'] !== null && $third['cookie'] !== $first['cookie'], true), "\n";

$uid = trim((string) shell_exec('id -u'));
echo 'database in sys_temp_dir: ', var_export(is_file("$tmp/session_proxy-$uid/session_proxy.sqlite"), true), "\n";

proc_terminate($server);
for ($i = 0; $i < 100 && ($status = sp_proc_status($server, false)) === null; $i++) {
    usleep(20000);
}
// Stopped by the SIGTERM it was sent, not by a crash at shutdown.
echo 'server stopped: ', var_export(($status['signal'] ?? null) === 15, true), "\n";
proc_close($server);
$errors = preg_grep('/warning|error|fatal/i', file($log));
echo 'server log warnings: ', $errors ? implode('', $errors) : 'none', "\n";
?>
--EXPECT--
command: 'PHP' -n -d extension='SO' -d session.save_handler=session_proxy -d session.save_path= -d 'sys_temp_dir=TMP' -S 127.0.0.1:PORT -t demo demo/index.php
first:  HTTP/1.1 200 OK body="1\n" cookie=PHPSESSID
second: HTTP/1.1 200 OK body="2\n"
third:  HTTP/1.1 200 OK body="1\n" new session: true
database in sys_temp_dir: true
server stopped: true
server log warnings: none
