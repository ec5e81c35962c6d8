--TEST--
Symfony HttpFoundation 5.4 (Debian): Session on NativeSessionStorage with no handler object, so Symfony keeps PHP's configured save handler (session.save_handler=session_proxy); get/set, flash bag, migrate(true), invalidate() across requests (child processes), sqlite and files
--FILE--
<?php
require __DIR__ . '/inc/symfony.inc';

foreach (sp_engines('sfnative') as $engine => $dsn) {
    echo "== $engine\n";
    sf_flow(false, $dsn);
}
?>
--EXPECT--
== sqlite
handler under Symfony's proxy: Symfony\Component\HttpFoundation\Session\Storage\Handler\StrictSessionHandler
login: new id: yes, attributes: {"n":1,"user":"alice"}, errors: none
stored: yes
next request: same id: yes, flash: ["welcome"], attributes: {"n":2,"user":"alice"}, errors: none
migrate(true): true, flash already consumed: [], new id: yes, attributes: {"n":3,"user":"alice"}, errors: none
after migrate: old id stored: no, new id stored: yes
old id: replaced: yes, attributes: {}, errors: none
new id: same id: yes, attributes: {"n":3,"user":"alice"}, flash: {}, errors: none
invalidate(): true, new id: yes, attributes: {"after":"invalidate"}, errors: none
after invalidate: old id stored: no
invalidated id: replaced: yes, attributes: {}, errors: none
id after invalidate: same id: yes, attributes: {"after":"invalidate"}, flash: {}, errors: none
== files
handler under Symfony's proxy: Symfony\Component\HttpFoundation\Session\Storage\Handler\StrictSessionHandler
login: new id: yes, attributes: {"n":1,"user":"alice"}, errors: none
stored: yes
next request: same id: yes, flash: ["welcome"], attributes: {"n":2,"user":"alice"}, errors: none
migrate(true): true, flash already consumed: [], new id: yes, attributes: {"n":3,"user":"alice"}, errors: none
after migrate: old id stored: no, new id stored: yes
old id: replaced: yes, attributes: {}, errors: none
new id: same id: yes, attributes: {"n":3,"user":"alice"}, flash: {}, errors: none
invalidate(): true, new id: yes, attributes: {"after":"invalidate"}, errors: none
after invalidate: old id stored: no
invalidated id: replaced: yes, attributes: {}, errors: none
id after invalidate: same id: yes, attributes: {"after":"invalidate"}, flash: {}, errors: none
