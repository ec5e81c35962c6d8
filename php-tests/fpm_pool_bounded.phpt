--TEST--
nginx + php-fpm, one worker serving many DSNs (a save_path per site): it keeps idle connections for the 8 most recently used only, so PostgreSQL connections and open SQLite files stay bounded instead of one per DSN ever served (which ran a PostgreSQL server out of connection slots); a DSN whose connection was closed connects again and its sessions are intact
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require_once __DIR__ . '/inc/pgsql.inc';

/** One users.php request on $dsn with the cookie $sid; its decoded reply. */
function pb_get(string $a, string $dsn, ?string $sid = null): array
{
    $url = web_url() . '/users.php?' . http_build_query(['a' => $a, 'dsn' => $dsn, 'user' => 'pool']);
    $ctx = stream_context_create(['http' => ['header' => $sid !== null ? "Cookie: PHPSESSID=$sid\r\n" : '', 'timeout' => 60, 'ignore_errors' => true]]);
    $j = json_decode((string) @file_get_contents($url, false, $ctx), true);
    if (!is_array($j) || $j['errors'] || !$j['ok']) {
        echo "$a on $dsn: FAILED: ", json_encode($j), "\n";
        exit(1);
    }
    return $j;
}

/** What worker $pid holds open: [SQLite databases under $dir, TCP connections to PostgreSQL]. */
function pb_held(int $pid, string $dir): array
{
    $sqlite = 0;
    $sockets = [];
    foreach (glob("/proc/$pid/fd/*") as $fd) {
        $t = (string) @readlink($fd);
        if (str_starts_with($t, "$dir/") && str_ends_with($t, '.sqlite')) {
            $sqlite++;
        } elseif (preg_match('/^socket:\[(\d+)\]$/', $t, $m)) {
            $sockets[$m[1]] = true;
        }
    }
    $pg = 0;
    $port = sprintf('%04X', (int) pg_env('SP_PG_PORT'));
    foreach (array_slice(file("/proc/$pid/net/tcp"), 1) as $line) {
        $f = preg_split('/\s+/', trim($line));
        // rem_address is "IP:PORT" in hex; the inode is the tenth field.
        if (str_ends_with($f[2], ":$port") && isset($sockets[$f[9]])) {
            $pg++;
        }
    }
    return [$sqlite, $pg];
}

web_private('poolbound', 1);
$dir = sp_tmpdir('poolbound');
$pg = $sqlite = [];
for ($i = 0; $i < 12; $i++) {
    $pg[$i] = pg_dsn(pg_table("poolbound$i"));
    $sqlite[$i] = "sqlite://$dir/s$i.sqlite";
}
$first = pb_get('login', $pg[0]);
$pid = (int) $first['pid'];
for ($i = 1; $i < 12; $i++) {
    $pid = pb_get('login', $pg[$i])['pid'] === $pid ? $pid : -1;
}
[$s, $p] = pb_held($pid, $dir);
echo "12 PostgreSQL DSNs served by one worker: it holds $p connections to PostgreSQL\n";
for ($i = 0; $i < 12; $i++) {
    $pid = pb_get('login', $sqlite[$i])['pid'] === $pid ? $pid : -1;
}
[$s, $p] = pb_held($pid, $dir);
echo "then 12 SQLite DSNs: $s databases open, $p connections to PostgreSQL\n";
echo "all served by the same worker: ", web_yes($pid > 0), "\n";
$again = pb_get('whoami', $pg[0], $first['id']);
echo "the first PostgreSQL DSN again, with its cookie: ", web_data($again['data'] ?? null), ($again['id'] === $first['id'] ? ' (same id)' : ' (new id)'), "\n";
[$s, $p] = pb_held($pid, $dir);
echo "now: $s databases open, $p connection to PostgreSQL\n";
?>
--EXPECT--
12 PostgreSQL DSNs served by one worker: it holds 8 connections to PostgreSQL
then 12 SQLite DSNs: 8 databases open, 0 connections to PostgreSQL
all served by the same worker: yes
the first PostgreSQL DSN again, with its cookie: {"n":1} (same id)
now: 7 databases open, 1 connection to PostgreSQL
