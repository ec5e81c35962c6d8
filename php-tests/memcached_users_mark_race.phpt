--TEST--
Memcached engine, per-user index under concurrency (three servers, a replica each, a CPU burner alongside): six processes write one session with locking off while another binds it to a user, round after round on fresh sessions; the mark that a binding sets by CAS races their writes, yet no session is ever taken for one whose binding was lost (none reads empty after its first write), and each ends bound, listed and marked once written again
--FILE--
<?php
require_once __DIR__ . '/inc/memcached.inc';

$ports = [mc_port(1), mc_port(2), mc_port(3)];
$dsn = mc_dsn($ports, 'replicas=1', $prefix);
$ini = ['session.save_path' => $dsn, 'session_proxy.locking' => '0'];
$burner = lk_burner(120);
$sig = sp_tmpdir('mc-mark-race');
$rounds = 6;
$lost = 0;
$errors = [];
$listed = 0;
$marked = 0;
for ($r = 0; $r < $rounds; $r++) {
    $id = "markrace$r" . bin2hex(random_bytes(6));
    $user = "alice-$r-" . bin2hex(random_bytes(3));
    lk_run('seed', 'session_id($P["id"]); session_start(); $_SESSION["seed"] = 1; session_write_close(); lk_done([]);', ['id' => $id], $ini);
    $writers = [];
    foreach (range(1, 6) as $w) {
        $writers[] = lk_spawn('
            lk_await($P["go"]);
            $empty = 0;
            for ($i = 0; $i < 40; $i++) {
                session_id($P["id"]); session_start();
                $empty += (int) !isset($_SESSION["seed"]);
                $_SESSION["seed"] = 1; $_SESSION["w" . $P["w"]] = $i;
                session_write_close();
            }
            lk_done(["empty" => $empty]);
        ', ['id' => $id, 'w' => $w, 'go' => "$sig/go$r"], $ini);
    }
    $binder = lk_spawn('
        lk_await($P["go"]);
        usleep(random_int(0, 20000));
        session_id($P["id"]); session_start(); SessionProxy\set_user($P["user"]); $_SESSION["seed"] = 1; session_write_close();
        lk_done([]);
    ', ['id' => $id, 'user' => $user, 'go' => "$sig/go$r"], $ini);
    lk_signal_parent("$sig/go$r");
    foreach ($writers as $k => $p) {
        $res = lk_result("writer $k", sp_wait($p));
        $lost += (int) ($res['empty'] ?? 1);
        foreach ($res['errors'] ?? [] as $e) { $errors[] = $e[1]; }
    }
    $res = lk_result('binder', sp_wait($binder));
    foreach ($res['errors'] ?? [] as $e) { $errors[] = $e[1]; }
    // Written once more after the race: bound (its read finds the user item), so marked.
    $after = lk_run('after', '
        session_id($P["id"]); session_start(); $seed = $_SESSION["seed"] ?? null; $_SESSION["after"] = 1; session_write_close();
        lk_done(["seed" => $seed, "listed" => array_map(fn($s) => $s["current"], SessionProxy\user_sessions($P["user"]) ?: [])]);
    ', ['id' => $id, 'user' => $user], $ini);
    $lost += (int) ($after['seed'] !== 1);
    $listed += (int) (count($after['listed']) === 1);
    foreach ($ports as $p) {
        if (preg_match('~^HD f(\d+)~', mc_raw($p, "mg {$prefix}{$id} f"), $m)) {
            $marked += (int) (((int) $m[1] & 0x80000000) !== 0);
        }
    }
}
lk_burner_stop($burner);
echo "sessions read empty after their first write: $lost\n";
echo "warnings: ", $errors ? json_encode(array_slice(array_unique($errors), 0, 3)) : 'none', "\n";
echo "bound and listed after the race: $listed of $rounds\n";
echo "copies marked: ", $marked === 2 * $rounds ? 'every one' : "$marked of " . 2 * $rounds, "\n";
?>
--EXPECT--
sessions read empty after their first write: 0
warnings: none
bound and listed after the race: 6 of 6
copies marked: every one
