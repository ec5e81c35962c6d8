--TEST--
Memcached engine vs the real php-memcached (Debian php8.2-memcached) on the same 3 servers: same placement (ketama) and keys, sessions written by either are read by the other (ours bound to a user, so marked in their client flags), locks exclude each other
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';

$ports = [mc_port(1), mc_port(2), mc_port(3)];
$dsn = mc_dsn($ports, '', $prefix);
$pm = pm_ini($ports, $prefix);
$sig = sp_tmpdir('mc-compat-sig');
$ids = array_map(fn ($i) => "compat$i" . bin2hex(random_bytes(8)), range(1, 30));

// php-memcached writes 30 sessions; session_proxy (no replicas: one server per session) reads them,
// and writes them bound to a user (the per-user index's mark in the items' client flags).
$w = pm_run('pm-writer', '
    foreach ($P["ids"] as $i => $id) { session_id($id); session_start(); $_SESSION["by"] = "pm"; $_SESSION["i"] = $i; session_write_close(); }
    lk_done([]);
', ['ids' => $ids], $pm);
lk_print_errors('pm-writer', $w, $dsn);
$r = lk_run('sp-reader', '
    $ok = 0;
    foreach ($P["ids"] as $i => $id) { session_id($id); session_start(); $ok += (int) (($_SESSION["by"] ?? "") === "pm" && $_SESSION["i"] === $i); $_SESSION["by"] = "sp"; SessionProxy\set_user("compat-user"); session_write_close(); }
    lk_done(["ok" => $ok]);
', ['ids' => $ids], ['session.save_path' => $dsn]);
lk_print_errors('sp-reader', $r, $dsn);
echo 'session_proxy read what php-memcached wrote: ', $r['ok'], " of 30\n";
// Each session is on exactly one server, the same one for both handlers, and spread over all three.
$where = [];
foreach ($ids as $id) {
    $on = array_keys(array_filter($ports, fn ($p) => mc_get($p, $prefix . $id) !== null));
    $where[] = count($on) === 1 ? $on[0] : -1;
}
echo 'each on one server: ', lk_check(!in_array(-1, $where, true), json_encode($where)), "\n";
echo 'servers used: ', count(array_unique($where)), "\n";
// Each written bound: its client flags carry the mark (bit 31) beside the TTL it was written with.
$marked = 0;
foreach ($ids as $k => $id) {
    $f = preg_match('~ f(\d+)~', mc_raw($ports[$where[$k]] ?? $ports[0], "mg {$prefix}{$id} f"), $m) ? (int) $m[1] : -1;
    $marked += (int) ($f >= 0 && ($f & 0x80000000) !== 0);
}
echo "bound, and marked so: $marked of 30\n";
$r = pm_run('pm-reader', '
    $ok = 0;
    foreach ($P["ids"] as $i => $id) { session_id($id); session_start(); $ok += (int) (($_SESSION["by"] ?? "") === "sp" && $_SESSION["i"] === $i); session_write_close(); }
    lk_done(["ok" => $ok]);
', ['ids' => $ids], $pm);
lk_print_errors('pm-reader', $r, $dsn);
echo 'php-memcached read what session_proxy wrote: ', $r['ok'], " of 30\n";

// php-memcached holds the lock: session_proxy waits, then times out.
$h = pm_spawn('
    session_id($P["id"]); session_start(); lk_signal($P["sig"] . "/pm-locked"); lk_await($P["sig"] . "/pm-go");
    $_SESSION["by"] = "pm-holder"; session_write_close(); lk_done([]);
', ['id' => $ids[0], 'sig' => $sig], $pm);
lk_wait_signal("$sig/pm-locked");
$r = lk_run('sp', 'session_id($P["id"]); $ok = session_start(); lk_done(["ok" => $ok]);', ['id' => $ids[0]],
    ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '300']);
echo 'session_proxy while php-memcached holds the lock: ', var_export($r['ok'], true), "\n";
lk_signal_parent("$sig/pm-go");
lk_result('pm-holder', sp_wait($h));
$r = lk_run('sp', 'session_id($P["id"]); $ok = session_start(); $by = $_SESSION["by"] ?? null; session_write_close(); lk_done(["ok" => $ok, "by" => $by]);',
    ['id' => $ids[0]], ['session.save_path' => $dsn, 'session_proxy.lock_wait_timeout' => '2000']);
echo 'after php-memcached released: ', var_export($r['ok'], true), ', saw ', $r['by'], "\n";

// session_proxy holds the lock: php-memcached's add fails and it gives up (5 retries).
$h = lk_spawn('
    session_id($P["id"]); session_start(); lk_signal($P["sig"] . "/sp-locked"); lk_await($P["sig"] . "/sp-go");
    $_SESSION["by"] = "sp-holder"; session_write_close(); lk_done([]);
', ['id' => $ids[1], 'sig' => $sig], ['session.save_path' => $dsn]);
lk_wait_signal("$sig/sp-locked");
$r = pm_run('pm', 'session_id($P["id"]); $ok = session_start(); lk_done(["ok" => $ok]);', ['id' => $ids[1]], $pm);
echo 'php-memcached while session_proxy holds the lock: ', var_export($r['ok'], true), "\n";
lk_signal_parent("$sig/sp-go");
$rh = lk_result('sp-holder', sp_wait($h));
lk_print_errors('sp-holder', $rh, $dsn);
$r = pm_run('pm', 'session_id($P["id"]); $ok = session_start(); $by = $_SESSION["by"] ?? null; session_write_close(); lk_done(["ok" => $ok, "by" => $by]);', ['id' => $ids[1]], $pm);
echo 'after session_proxy released: ', var_export($r['ok'], true), ', saw ', $r['by'], "\n";
lk_print_errors('pm', $r, $dsn);
?>
--EXPECT--
pm-writer: no errors
sp-reader: no errors
session_proxy read what php-memcached wrote: 30 of 30
each on one server: yes
servers used: 3
bound, and marked so: 30 of 30
pm-reader: no errors
php-memcached read what session_proxy wrote: 30 of 30
session_proxy while php-memcached holds the lock: false
after php-memcached released: true, saw pm-holder
php-memcached while session_proxy holds the lock: false
sp-holder: no errors
after session_proxy released: true, saw sp-holder
pm: no errors
