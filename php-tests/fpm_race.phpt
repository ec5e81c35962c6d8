--TEST--
nginx + php-fpm, native handler: RACERS parallel HTTP requests carrying one session cookie, each incrementing its counter once with locking on; none fails, none is lost (sqlite and files)
--FILE--
<?php
require __DIR__ . '/inc/web.inc';

// Parallel requests per engine, all sent before the first answer is read (php-fpm runs 10 workers).
const RACERS = 200;

web_url();
foreach (sp_engines('fpmrace') as $engine => $dsn) {
    echo "== $engine\n";
    web_race('native', $dsn, RACERS);
}
?>
--EXPECTF--
== sqlite
every request answered 200 with no PHP errors: yes
each request saw a different count, 1 to the number of requests: yes
served by more than one php-fpm worker: yes
finished within 120 s: yes
time: %f s for %d requests
a later request reads the number of requests + 1: yes
== files
every request answered 200 with no PHP errors: yes
each request saw a different count, 1 to the number of requests: yes
served by more than one php-fpm worker: yes
finished within 120 s: yes
time: %f s for %d requests
a later request reads the number of requests + 1: yes
