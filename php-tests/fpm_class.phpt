--TEST--
nginx + php-fpm, the class: session_set_save_handler(new SessionProxy\Handler($dsn, $options), true) per request; login counter, regenerate on login, logout destroys, and RACERS parallel requests on one cookie with locking (sqlite and files)
--FILE--
<?php
require __DIR__ . '/inc/web.inc';

const RACERS = 200;

web_url();
foreach (sp_engines('fpmclass') as $engine => $dsn) {
    echo "== $engine\n";
    web_login_flow('class', $dsn);
    web_race('class', $dsn, RACERS);
}
?>
--EXPECTF--
== sqlite
anonymous hit 1: count=1, cookie set: yes
anonymous hit 2: count=2, same id: yes
anonymous session: stored
login: regenerated: true, new id in the cookie: yes, data: {"count":2,"user":"alice"}
after login: old id not stored, new id stored
hit 1 after login: user=alice count=3
hit 2 after login: user=alice count=4
whoami: {"count":4,"user":"alice"}, same id: yes
old id: replaced by a new id: yes, data: {}
bob: user=bob count=1, own id: yes
alice still: {"count":4,"user":"alice"}
logout: destroyed: true, cookie removed: true
after logout: alice's id not stored
alice's id after logout: replaced by a new id: yes, data: {}
bob after alice's logout: {"count":1,"user":"bob"}
every request answered 200 with no PHP errors: yes
each request saw a different count, 1 to the number of requests: yes
served by more than one php-fpm worker: yes
finished within 120 s: yes
time: %f s for %d requests
a later request reads the number of requests + 1: yes
== files
anonymous hit 1: count=1, cookie set: yes
anonymous hit 2: count=2, same id: yes
anonymous session: stored
login: regenerated: true, new id in the cookie: yes, data: {"count":2,"user":"alice"}
after login: old id not stored, new id stored
hit 1 after login: user=alice count=3
hit 2 after login: user=alice count=4
whoami: {"count":4,"user":"alice"}, same id: yes
old id: replaced by a new id: yes, data: {}
bob: user=bob count=1, own id: yes
alice still: {"count":4,"user":"alice"}
logout: destroyed: true, cookie removed: true
after logout: alice's id not stored
alice's id after logout: replaced by a new id: yes, data: {}
bob after alice's logout: {"count":1,"user":"bob"}
every request answered 200 with no PHP errors: yes
each request saw a different count, 1 to the number of requests: yes
served by more than one php-fpm worker: yes
finished within 120 s: yes
time: %f s for %d requests
a later request reads the number of requests + 1: yes
