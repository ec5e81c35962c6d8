--TEST--
SessionProxy\Handler: session_set_save_handler round trip, one core with the native handler, subclassing with parent::, regenerate, strict mode, lazy write
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

// Loading the extension prints nothing at startup: the class's signatures fit the interfaces'
// tentative return types (a mismatch is an E_DEPRECATED at every startup).
echo 'startup output: ', json_encode(sp_run(escapeshellarg(sp_php_binary()) . ' -n -d ' . escapeshellarg('extension=' . sp_so())
    . ' -d error_reporting=-1 -d display_startup_errors=1 -r ' . escapeshellarg('echo "ok";'))), "\n";

const PRELUDE = '
class Logged extends SessionProxy\Handler {
    public static array $log = [];
    public function read(string $id): string|false {
        self::$log[] = "read";
        $d = parent::read($id);
        return is_string($d) && str_starts_with($d, "v1:") ? substr($d, 3) : $d;
    }
    public function write(string $id, string $data): bool { self::$log[] = "write"; return parent::write($id, "v1:" . $data); }
    public function updateTimestamp(string $id, string $data): bool { self::$log[] = "updateTimestamp"; return parent::updateTimestamp($id, "v1:" . $data); }
    public function validateId(string $id): bool { $ok = parent::validateId($id); self::$log[] = "validateId=" . var_export($ok, true); return $ok; }
}
function h(string $dsn, bool $sub) { session_set_save_handler($sub ? new Logged($dsn) : new SessionProxy\Handler($dsn), true); }
';

foreach (sp_engines('class') as $engine => $dsn) {
    echo "== $engine\n";
    $bin = "nul\0 and \xff";
    // Request 1 (plain class) writes, request 2 (another process) reads it back.
    echo sp_child(PRELUDE . 'h($argv[1], false); session_id("cls1"); var_dump(session_start());
        $_SESSION["n"] = 1; $_SESSION["bin"] = base64_decode($argv[2]); session_write_close();', [], [$dsn, base64_encode($bin)]);
    echo sp_child(PRELUDE . 'h($argv[1], false); session_id("cls1"); session_start();
        echo "class reads: n=", $_SESSION["n"], " bin-intact=", var_export($_SESSION["bin"] === base64_decode($argv[2]), true), "\n";',
        [], [$dsn, base64_encode($bin)]);
    // One core: the native handler reads what the class wrote.
    echo sp_child('session_id("cls1"); session_start(); echo "native reads: n=", $_SESSION["n"], "\n";', ['session.save_path' => $dsn]);

    // A subclass overriding read/write and calling parent:: — its transformation reaches the storage.
    echo sp_child(PRELUDE . 'h($argv[1], true); session_id("cls2"); session_start(); $_SESSION["who"] = "sub";
        session_write_close(); echo "sub log: ", implode(",", Logged::$log), "\n";', [], [$dsn]);
    echo sp_child('$h = new SessionProxy\Handler($argv[1]); echo "stored: ", $h->read("cls2"), "\n";', [], [$dsn]);
    echo sp_child(PRELUDE . 'h($argv[1], true); session_id("cls2"); session_start(); echo "sub reads: ", $_SESSION["who"], "\n";
        session_write_close(); echo "unchanged -> ", implode(",", Logged::$log), "\n";', [], [$dsn]);

    // Strict mode: an unknown id is refused through validateId and replaced; a live one is kept.
    echo sp_child(PRELUDE . 'h($argv[1], true); session_id("unknownid1"); session_start();
        echo "strict unknown: ", implode(",", Logged::$log), " new-id=", var_export(session_id() !== "unknownid1", true), "\n";',
        ['session.use_strict_mode' => '1'], [$dsn]);
    echo sp_child(PRELUDE . 'h($argv[1], true); session_id("cls2"); session_start();
        echo "strict live: ", implode(",", Logged::$log), " kept=", var_export(session_id() === "cls2", true), "\n";',
        ['session.use_strict_mode' => '1'], [$dsn]);

    // Regenerate: with delete the old id is gone, the new id carries the data.
    echo sp_child(PRELUDE . 'h($argv[1], false); session_id("cls1"); session_start(); session_regenerate_id(true);
        $new = session_id(); session_write_close();
        $h = new SessionProxy\Handler($argv[1]);
        echo "regenerate: old=", json_encode($h->read("cls1")), " new-has-n=", var_export(str_contains($h->read($new), "n|i:1"), true), "\n";',
        [], [$dsn]);
}
?>
--EXPECT--
startup output: "ok"
== sqlite
bool(true)
class reads: n=1 bin-intact=true
native reads: n=1
sub log: read,write
stored: v1:who|s:3:"sub";
sub reads: sub
unchanged -> read,updateTimestamp
strict unknown: validateId=false,read new-id=true
strict live: validateId=true,read kept=true
regenerate: old="" new-has-n=true
== files
bool(true)
class reads: n=1 bin-intact=true
native reads: n=1
sub log: read,write
stored: v1:who|s:3:"sub";
sub reads: sub
unchanged -> read,updateTimestamp
strict unknown: validateId=false,read new-id=true
strict live: validateId=true,read kept=true
regenerate: old="" new-has-n=true
