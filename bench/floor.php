<?php
// The floor for a Redis session cycle: a bare GET + SETEX of the same payload from PHP with phpredis'
// client (persistent connection), no session machinery. php bench/floor.php <iterations> <bytes> <port>
[$_, $iterations, $bytes, $port] = $argv + [null, 20000, 200, 6379];
$r = new Redis();
$r->pconnect('127.0.0.1', (int) $port);
$payload = 'n|i:1;p|s:' . max(0, (int) $bytes - 40) . ':"' . str_repeat('x', max(0, (int) $bytes - 40)) . '";';
$run = function (int $n) use ($r, $payload) {
    for ($i = 0; $i < $n; $i++) {
        $k = 'PHPREDIS_SESSION:floor' . ($i % 100);
        $r->get($k);
        $r->setex($k, 1440, $payload);
    }
};
$run(200);
$t = hrtime(true);
$run((int) $iterations);
printf("%.0f\n", $iterations / ((hrtime(true) - $t) / 1e9));
