--TEST--
nginx + php-fpm, native handler (session.save_handler=session_proxy): login counter across requests, regenerate on login (old id deleted and refused, new id carries the data), logout destroys; sqlite and files engines
--FILE--
<?php
require __DIR__ . '/inc/web.inc';

web_url();
foreach (sp_engines('fpmnative') as $engine => $dsn) {
    echo "== $engine\n";
    web_login_flow('native', $dsn);
}
?>
--EXPECT--
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
