--TEST--
Laravel 8 (Debian php-laravel-framework): Illuminate\Session\Store driven by new SessionProxy\Handler($dsn, $options) (Laravel calls only read/write/destroy, never open/close); put/get and flash data across requests (child processes), regenerate(true), invalidate(), sqlite and files
--FILE--
<?php
require __DIR__ . '/inc/frameworks.inc';

/** One request: a Store on the handler, started on $P['id'] (null: a new session), one step, saved. */
const LV_REQUEST = <<<'PHP'
use Illuminate\Session\Store;

$handler = new SessionProxy\Handler($P['dsn'], ['lock_wait_timeout' => 10000]);
$store = new Store('laravel_session', $handler, $P['id']);
$store->start();
$r = ['in' => $store->getId()];
switch ($P['step']) {
    case 'login':
        $store->put('user', 'alice');
        $store->put('n', 1);
        $store->flash('status', 'saved');
        break;
    case 'next':
        $store->put('n', $store->get('n', 0) + 1);
        break;
    case 'regenerate':
        $r['regenerated'] = $store->regenerate(true);
        $store->put('n', $store->get('n', 0) + 1);
        break;
    case 'invalidate':
        $r['invalidated'] = $store->invalidate();
        $store->put('after', 'invalidate');
        break;
}
$r['data'] = $store->only(['user', 'n', 'after', 'status']);
$r['has_token'] = strlen((string) $store->token()) === 40;
$r['out'] = $store->getId();
$store->save();
lk_done($r);
PHP;

function lv(string $dsn, string $step, ?string $id): array
{
    // Laravel's Store checks ids with ctype_alnum(): the suite runs with -n, so load ctype.
    $r = fw_run("laravel $step", FW_LARAVEL_AUTOLOAD, LV_REQUEST,
        ['class' => true, 'dsn' => $dsn, 'step' => $step, 'id' => $id], ['extension' => 'ctype']);
    if (!isset($r['out'])) {
        echo "laravel $step: FAILED: ", json_encode($r, JSON_UNESCAPED_SLASHES), "\n";
        exit(1);
    }
    return $r;
}

function data(array $r): string
{
    return fw_json(array_filter($r['data'], fn ($v) => $v !== null)) . ', errors: ' . fw_errors($r);
}

foreach (sp_engines('laravel') as $engine => $dsn) {
    echo "== $engine\n";
    $r = lv($dsn, 'login', null);
    $a = $r['out'];
    echo 'login: new 40-character id: ', lk_check(preg_match("/^[a-zA-Z0-9]{40}$/", $a) === 1, $a), ', token: ', var_export($r['has_token'], true), ', data: ', data($r), "\n";
    echo 'stored: ', sp_stored($dsn, $a) ? 'yes' : 'no', "\n";

    // Another process, another Store on the same id: the values persist; the flash is there once.
    $r = lv($dsn, 'next', $a);
    echo 'next request: same id: ', lk_check($r['in'] === $a && $r['out'] === $a, json_encode([$r['in'], $r['out']])), ', data: ', data($r), "\n";
    $r = lv($dsn, 'next', $a);
    echo 'third request: data: ', data($r), "\n";

    $r = lv($dsn, 'regenerate', $a);
    $b = $r['out'];
    echo 'regenerate(true): ', var_export($r['regenerated'], true), ', new id: ', lk_check($b !== $a && strlen($b) === 40, $b), ', data: ', data($r), "\n";
    echo 'after regenerate: old id stored: ', sp_stored($dsn, $a) ? 'yes' : 'no', ', new id stored: ', sp_stored($dsn, $b) ? 'yes' : 'no', "\n";
    // Laravel has no strict mode: the old id is kept, but its data is gone.
    $r = lv($dsn, 'peek', $a);
    echo 'old id: data: ', data($r), "\n";
    $r = lv($dsn, 'peek', $b);
    echo 'new id: same id: ', lk_check($r['out'] === $b, $r['out']), ', data: ', data($r), "\n";

    $r = lv($dsn, 'invalidate', $b);
    $c = $r['out'];
    echo 'invalidate(): ', var_export($r['invalidated'], true), ', new id: ', lk_check($c !== $b && $c !== $a && strlen($c) === 40, $c), ', data: ', data($r), "\n";
    echo 'after invalidate: old id stored: ', sp_stored($dsn, $b) ? 'yes' : 'no', ', new id stored: ', sp_stored($dsn, $c) ? 'yes' : 'no', "\n";
    $r = lv($dsn, 'peek', $b);
    echo 'invalidated id: data: ', data($r), "\n";
    $r = lv($dsn, 'peek', $c);
    echo 'id after invalidate: data: ', data($r), "\n";
}
?>
--EXPECT--
== sqlite
login: new 40-character id: yes, token: true, data: {"n":1,"status":"saved","user":"alice"}, errors: none
stored: yes
next request: same id: yes, data: {"n":2,"status":"saved","user":"alice"}, errors: none
third request: data: {"n":3,"user":"alice"}, errors: none
regenerate(true): true, new id: yes, data: {"n":4,"user":"alice"}, errors: none
after regenerate: old id stored: no, new id stored: yes
old id: data: {}, errors: none
new id: same id: yes, data: {"n":4,"user":"alice"}, errors: none
invalidate(): true, new id: yes, data: {"after":"invalidate"}, errors: none
after invalidate: old id stored: no, new id stored: yes
invalidated id: data: {}, errors: none
id after invalidate: data: {"after":"invalidate"}, errors: none
== files
login: new 40-character id: yes, token: true, data: {"n":1,"status":"saved","user":"alice"}, errors: none
stored: yes
next request: same id: yes, data: {"n":2,"status":"saved","user":"alice"}, errors: none
third request: data: {"n":3,"user":"alice"}, errors: none
regenerate(true): true, new id: yes, data: {"n":4,"user":"alice"}, errors: none
after regenerate: old id stored: no, new id stored: yes
old id: data: {}, errors: none
new id: same id: yes, data: {"n":4,"user":"alice"}, errors: none
invalidate(): true, new id: yes, data: {"after":"invalidate"}, errors: none
after invalidate: old id stored: no, new id stored: yes
invalidated id: data: {}, errors: none
id after invalidate: data: {"after":"invalidate"}, errors: none
