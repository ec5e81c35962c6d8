<?php
// The corpus of tests/serial_vs_php.rs: PHP's own session encoder and decoder against src/serial.rs.
//
//   php -n serial_corpus.php gen FORMAT N SEED   lines of hex fields: random sessions encoded by PHP in
//                                               FORMAT (php, php_serialize, php_binary), and merge triples:
//     entries DATA REFS KEY:VALUE ...           the encoded session, 1 if it holds R:/r:, each top-level
//                                               key as the format writes it and serialize() of its value
//     merge BASE MINE THEIRS LAST FIRST OVERLAP  two requests' changes of BASE, and the merged session
//                                               expected under merge_conflict=last and =first (canon())
//   php -n serial_corpus.php check FORMAT        reads lines "MERGED EXPECTED" (hex) from stdin, decodes
//                                               each merged session with PHP and compares; prints
//                                               "checked N, mismatches M" and the first mismatches
declare(strict_types=1);

class Point
{
    public $x;
    protected $y;
    private $z;
    public function __construct($x = 0, $y = 0, $z = 0)
    {
        [$this->x, $this->y, $this->z] = [$x, $y, $z];
    }
}

/** A handler that stores nothing: the session is only PHP's encoder and decoder here. */
class NullHandler implements SessionHandlerInterface
{
    public function open(string $p, string $n): bool { return true; }
    public function close(): bool { return true; }
    public function read(string $id): string|false { return ''; }
    public function write(string $id, string $d): bool { return true; }
    public function destroy(string $id): bool { return true; }
    public function gc(int $l): int|false { return 0; }
}

[, $mode, $format] = $argv + [null, null, null];
ini_set('session.serialize_handler', (string) $format);
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
session_set_save_handler(new NullHandler(), false);
session_id('corpus');
if (!session_start()) {
    fwrite(STDERR, "session_start failed\n");
    exit(2);
}

function bytes(int $n): string
{
    $s = '';
    for ($i = 0; $i < $n; $i++) {
        $s .= chr(mt_rand(0, 255));
    }
    return $s;
}

function rstr(): string
{
    return match (mt_rand(0, 5)) {
        0 => '',
        1 => bytes(mt_rand(1, 24)),
        2 => str_repeat('|;":{}', mt_rand(1, 3)),
        3 => "line\nbreak\0nul é " . mt_rand(),
        4 => 's:3:"abc";|i:1;',
        default => substr(str_shuffle('abcdefghijklmnopqrstuvwxyz0123456789'), 0, mt_rand(1, 12)),
    };
}

function rval(int $depth)
{
    switch (mt_rand(0, $depth >= 3 ? 5 : 9)) {
        case 0: return mt_rand(-1000, 1000);
        case 1: return [PHP_INT_MAX, PHP_INT_MIN, 0, -1][mt_rand(0, 3)];
        case 2: return [0.1, -0.0, 1e300, -2.5e-300, INF, -INF, 3.0][mt_rand(0, 6)];
        case 3: return rstr();
        case 4: return (bool) mt_rand(0, 1);
        case 5: return null;
        case 6:
            $a = [];
            for ($i = mt_rand(0, 4); $i > 0; $i--) {
                $a[] = rval($depth + 1);
            }
            return $a;
        case 7:
            $a = [];
            for ($i = mt_rand(0, 4); $i > 0; $i--) {
                $a[mt_rand(0, 1) ? rstr() : mt_rand(-5, 5)] = rval($depth + 1);
            }
            return $a;
        case 8:
            $o = new stdClass();
            for ($i = mt_rand(0, 3); $i > 0; $i--) {
                $o->{'p' . mt_rand(0, 9)} = rval($depth + 1);
            }
            return $o;
        default:
            return new Point(rval($depth + 1), rval($depth + 1), rval($depth + 1));
    }
}

/** A top-level key the format can hold: php and php_binary store only string keys that are not numbers ('|' ends a php key; php_binary keys are under 128 bytes). */
function rkey(string $format)
{
    if ($format === 'php_serialize' && mt_rand(0, 3) === 0) {
        return mt_rand(-3, 99);
    }
    $k = match (mt_rand(0, 3)) {
        0 => 'k' . mt_rand(0, 30),
        1 => 'user_' . bin2hex(bytes(2)),
        2 => 'a b;c"d:' . mt_rand(0, 9),
        default => '_' . substr(str_shuffle('abcdefghijklmnopqrstuvwxyz'), 0, mt_rand(1, 8)),
    };
    return $k;
}

function encode(array $sess): string
{
    $_SESSION = $sess;
    $enc = session_encode();
    if ($enc === false && $sess === []) {
        return ''; // PHP encodes an empty session as nothing, and stores ''
    }
    if ($enc === false) {
        throw new RuntimeException('session_encode failed');
    }
    return $enc;
}

/** Top-level serialization for comparison: keys sorted, each value as serialize() writes it. */
function canon(array $a): string
{
    ksort($a);
    return serialize($a);
}

if ($mode === 'gen') {
    $n = (int) ($argv[3] ?? 1000);
    mt_srand((int) ($argv[4] ?? 1));
    for ($i = 0; $i < $n; $i++) {
        $sess = [];
        for ($k = mt_rand(0, 8); $k > 0; $k--) {
            $sess[rkey($format)] = rval(0);
        }
        $refs = false;
        if ($sess && mt_rand(0, 9) === 0) {
            // A reference between two keys, or the same object twice in one value: R:/r: in the data.
            $keys = array_keys($sess);
            if (mt_rand(0, 1)) {
                $sess['ref_' . $i] = &$sess[$keys[0]];
            } else {
                $o = new stdClass();
                $sess[$keys[0]] = [$o, $o];
            }
            $refs = true;
        }
        $enc = encode($sess);
        $line = ['entries', bin2hex($enc), $refs ? '1' : '0'];
        foreach ($sess as $k => $v) {
            $line[] = bin2hex($format === 'php_serialize' ? serialize($k) : (string) $k) . ':' . bin2hex(serialize($v));
        }
        echo implode(' ', $line), "\n";
        if ($refs) {
            continue;
        }
        // A merge triple: this request (mine) and another (theirs) change disjoint keys of base, and
        // sometimes one key both (a conflict).
        $mine = $theirs = $expectLast = $sess;
        $keysOf = array_keys($sess);
        shuffle($keysOf);
        $overlap = 0;
        foreach ($keysOf as $j => $k) {
            $what = mt_rand(0, 3);
            if ($what === 0) {
                continue;
            }
            if ($j % 2 === 0) {
                if ($what === 1) { unset($mine[$k], $expectLast[$k]); } else { $mine[$k] = $expectLast[$k] = rval(0); }
            } else {
                if ($what === 1) { unset($theirs[$k], $expectLast[$k]); } else { $theirs[$k] = $expectLast[$k] = rval(0); }
            }
        }
        foreach (['m' => &$mine, 't' => &$theirs] as $who => &$side) {
            for ($k = mt_rand(0, 2); $k > 0; $k--) {
                $key = "new_{$who}_$k";
                $side[$key] = $expectLast[$key] = rval(0);
            }
        }
        unset($side);
        $expectFirst = $expectLast;
        if (mt_rand(0, 2) === 0) {
            $mine['both'] = 'mine ' . mt_rand();
            $theirs['both'] = 'theirs ' . mt_rand();
            $expectLast['both'] = $mine['both'];
            $expectFirst['both'] = $theirs['both'];
            $overlap = 1;
        }
        echo implode(' ', ['merge', bin2hex($enc), bin2hex(encode($mine)), bin2hex(encode($theirs)),
            bin2hex(canon($expectLast)), bin2hex(canon($expectFirst)), $overlap]), "\n";
    }
} elseif ($mode === 'check') {
    [$checked, $bad] = [0, []];
    while (($line = fgets(STDIN)) !== false) {
        [$merged, $expected] = array_map('hex2bin', explode(' ', rtrim($line, "\n")));
        $checked++;
        $_SESSION = [];
        $got = session_decode($merged) ? canon($_SESSION) : '(session_decode failed)';
        if (session_status() !== PHP_SESSION_ACTIVE) {
            session_start(); // a failed decode ends the session
        }
        if ($got !== $expected) {
            $bad[] = "#$checked: PHP decoded " . substr($got, 0, 300) . ' expected ' . substr($expected, 0, 300);
        }
    }
    echo "checked $checked, mismatches ", count($bad), "\n", implode("\n", array_slice($bad, 0, 5)), "\n";
} else {
    fwrite(STDERR, "usage: serial_corpus.php gen FORMAT N SEED | check FORMAT\n");
    exit(2);
}
session_abort();
