--TEST--
nginx + php-fpm, native handler: RACERS parallel HTTP requests carrying one session cookie, each incrementing its counter once with locking on; none fails, none is lost (Redis and Memcached, the servers of scripts/services)
--FILE--
<?php
require __DIR__ . '/inc/web.inc';
require __DIR__ . '/inc/redis.inc';
require __DIR__ . '/inc/memcached.inc';

// Parallel requests per engine, all sent before the first answer is read (php-fpm runs 10 workers).
const RACERS = 200;

web_url();
$engines = [
    'redis' => 'redis://127.0.0.1:' . rd_port() . '?prefix=' . rd_prefix('fpmrace'),
    'memcached' => mc_dsn([mc_port(1)]),
];
foreach ($engines as $engine => $dsn) {
    echo "== $engine\n";
    web_race('native', $dsn, RACERS);
}
?>
--EXPECTF--
== redis
every request answered 200 with no PHP errors: yes
each request saw a different count, 1 to the number of requests: yes
served by more than one php-fpm worker: yes
finished within 120 s: yes
time: %f s for %d requests
a later request reads the number of requests + 1: yes
== memcached
every request answered 200 with no PHP errors: yes
each request saw a different count, 1 to the number of requests: yes
served by more than one php-fpm worker: yes
finished within 120 s: yes
time: %f s for %d requests
a later request reads the number of requests + 1: yes
