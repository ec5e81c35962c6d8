<?php
// php bench/layers.php cycles <iterations> <payload-bytes>   (save handler/path and layers given by -d)
//   prints session cycles per second and the CPU µs per cycle of this process; a cycle as in bench/cycle.php (start with lock, change, write),
//   over 100 sessions, with a realistic framework payload of about <payload-bytes>.
// php bench/layers.php size <payload-bytes> <dir>
//   prints "<serialized bytes> <stored bytes>" for one session written through the files engine into
//   <dir> (stored bytes = the file's size, i.e. what the layers left for the engine to store).
//
// The payload is a Laravel-style session: _token, _previous.url, _flash, login_web_<sha1>, and a
// shopping cart / wizard state of records (id, sku, name, price, quantity, options, timestamps), as
// PHP's serializer writes it. Its size is grown by adding records.
function sp_payload(int $bytes): array
{
    mt_srand(42);
    $s = [
        '_token' => bin2hex(random_bytes(20)),
        '_previous' => ['url' => 'https://shop.example.com/checkout/shipping?step=2'],
        '_flash' => ['old' => [], 'new' => []],
        'login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d' => 4711,
        'locale' => 'en_GB',
    ];
    $cart = [];
    for ($i = 1; strlen(serialize($s + ['cart' => $cart])) < $bytes; $i++) {
        $cart[] = [
            'id' => 100000 + $i, 'sku' => sprintf('SKU-%05d-%s', mt_rand(0, 99999), ['S', 'M', 'L', 'XL'][$i % 4]),
            'name' => ['Organic cotton T-shirt', 'Merino wool socks', 'Rain jacket', 'Canvas tote bag'][$i % 4] . " #$i",
            'price' => mt_rand(500, 25000) / 100, 'qty' => mt_rand(1, 5), 'currency' => 'EUR',
            'options' => ['colour' => ['navy', 'black', 'forest'][$i % 3], 'gift_wrap' => (bool) ($i % 2)],
            'added_at' => date('c', 1764547200 + $i * 37), 'updated_at' => date('c', 1764547200 + $i * 53),
        ];
    }
    if ($bytes < 400) {
        $cart = [];
    }
    return $s + ['cart' => $cart];
}

ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.gc_probability', '0');
$mode = $argv[1] ?? 'cycles';
if ($mode === 'size') {
    [, , $bytes, $dir] = $argv;
    ini_set('session.save_handler', 'session_proxy');
    ini_set('session.save_path', "files://$dir");
    $p = sp_payload((int) $bytes);
    session_id('sizeprobe0123456789abcdefghij');
    session_start();
    $_SESSION = $p;
    $plain = strlen(session_encode());
    session_write_close();
    $files = glob("$dir/sess_*");
    printf("%d %d\n", $plain, filesize($files[0]));
    exit;
}
[, , $iterations, $bytes] = $argv + [null, null, 5000, 4096];
$payload = sp_payload((int) $bytes);
$ids = [];
for ($i = 0; $i < 100; $i++) {
    $ids[] = sprintf('bench%027d', $i);
}
$run = function (int $n) use ($ids, $payload) {
    for ($i = 0; $i < $n; $i++) {
        session_id($ids[$i % 100]);
        if (!session_start()) {
            fwrite(STDERR, "session_start failed\n");
            exit(1);
        }
        $_SESSION = $payload;
        $_SESSION['n'] = $i;
        session_write_close();
    }
};
$run(200); // warm up: create the sessions, open the connection
$cpu = function (): float {
    $u = getrusage();
    return $u['ru_utime.tv_sec'] + $u['ru_utime.tv_usec'] / 1e6 + $u['ru_stime.tv_sec'] + $u['ru_stime.tv_usec'] / 1e6;
};
$t = hrtime(true);
$c = $cpu();
$run((int) $iterations);
// Cycles per wall-clock second, and this process's CPU time per cycle in µs (what a layer adds on
// the PHP side, less sensitive than the wall clock to other work on a shared machine).
printf("%.0f %.1f\n", $iterations / ((hrtime(true) - $t) / 1e9), ($cpu() - $c) * 1e6 / $iterations);
