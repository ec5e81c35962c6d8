<?php
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
