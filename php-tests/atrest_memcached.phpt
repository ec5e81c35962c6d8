--TEST--
Sessions at rest on Memcached: each layer round trips, data from before the switch reads (and moves), rotation, wrong key / truncation / flipped bits warn and write nothing, a copied blob fails, a bad key refuses sessions, 16 MiB compressed+encrypted, and the server's keys (lru_crawler metadump all) and values show no raw id and no plaintext marker
--FILE--
<?php
require __DIR__ . '/inc/memcached.inc';
require __DIR__ . '/inc/atrest.inc';
$port = mc_port(1);
$dsn = mc_dsn([$port]);
$clean_dsn = mc_dsn([$port], '', $clean);
// Every key the server holds under the clean prefix, and its value.
$dump = function () use ($port, $clean) {
    $s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 2);
    fwrite($s, "lru_crawler metadump all\r\n");
    $keys = [];
    while (($l = fgets($s)) !== false && !str_starts_with($l, 'END')) {
        if (preg_match('/^key=(\S+)/', $l, $m)) {
            $keys[] = urldecode($m[1]);
        }
    }
    fclose($s);
    $out = [];
    foreach ($keys as $key) {
        if (str_starts_with($key, $clean)) {
            $out[$key] = (string) mc_get($port, $key);
        }
    }
    return $out;
};
ar_run($dsn, $clean_dsn, $dump);
?>
--EXPECT--
== round trip with each layer
encryption: started=true n=2 warnings=0
encryption (hex key): started=true n=2 warnings=0
hash_ids: started=true n=2 warnings=0
zstd: started=true n=2 warnings=0
lz4: started=true n=2 warnings=0
all three: started=true n=2 warnings=0
all three, lz4: started=true n=2 warnings=0
== written before the layers were on
encryption, first read: started=true n=2 warnings=0
encryption, then: started=true n=3 warnings=0
hash_ids, first read: started=true n=2 warnings=0
hash_ids, then: started=true n=3 warnings=0
all three, first read: started=true n=2 warnings=0
all three, then: started=true n=3 warnings=0
hash_ids moved the session: raw id empty=true, hashed id holds it=true
== key rotation
new key, old one listed: started=true n=2 warnings=0
new key only (re-encrypted at the last write): started=true n=3 warnings=0
the retired key alone: started=true n=1 warnings=2 names "encryption_keys_old"
== damage: a clear warning, an empty session, and nothing written over the blob
wrong key: started=true n=1 warnings=2 names "neither session_proxy.encryption_key"
  stored blob unchanged: true, warning names the hash prefix: true, and no part of the id: true
  read: says "starts an empty session", write: says "changes were not saved"
truncated: started=true n=1 warnings=2 names "truncated"
  stored blob unchanged: true, warning names the hash prefix: true, and no part of the id: true
  read: says "starts an empty session", write: says "changes were not saved"
truncated tag: started=true n=1 warnings=2 names "fails authentication"
  stored blob unchanged: true, warning names the hash prefix: true, and no part of the id: true
  read: says "starts an empty session", write: says "changes were not saved"
flipped bit: started=true n=1 warnings=2 names "fails authentication"
  stored blob unchanged: true, warning names the hash prefix: true, and no part of the id: true
  read: says "starts an empty session", write: says "changes were not saved"
flipped magic bit: started=true n=1 warnings=2 names "damaged"
  stored blob unchanged: true, warning names the hash prefix: true, and no part of the id: true
  read: says "starts an empty session", write: says "changes were not saved"
damaged, then session_regenerate_id(): started=true n=41 warnings=1 names "fails authentication"
  the new id: started=true n=42 warnings=0
  the damaged blob is kept: true
damaged, then session_destroy(): started=true n=null warnings=1 names "fails authentication"
  the blob is gone: true
encrypted, read with encryption off: started=true n=1 warnings=2 names "session_proxy.encryption_key is not set"
encrypted, read with every at-rest directive off: started=true n=1 warnings=2 names "session_proxy.encryption_key is not set"
  stored blob sealed and unchanged: true
== a blob copied to another id
read under the other id: started=true n=1 warnings=2 names "another session id"
== a bad key refuses sessions
wrong-size key: started=false n=null warnings=2 names "session_proxy.encryption_key", names "12 bytes"
missing env key: started=false n=null warnings=2 names "SP_ATREST_SURELY_UNSET"
hash_ids without a key: started=false n=null warnings=2 names "session_proxy.hash_key"
== the class skin, and strict mode
SessionProxy\Handler wrote, the native handler reads: started=true n=8 warnings=0
  stored sealed under the hash: true
strict mode keeps a session from before the switch: true, keeps it after the move: true, replaces an unknown id: true
== 16 MiB, compressed and encrypted
read back: true, warnings=0, stored under 1 MiB: true
== the per-user index under hashed ids
listed and logged out from z1: started=true n=1 warnings=0
  listed: 2, current: 1, handles name no id: true, ended: 1
  z2 next: started=true n=null warnings=0
  z1 next: started=true n=1 warnings=0
== the store itself
clean 0: started=true n=3 warnings=0
clean 1: started=true n=3 warnings=0
clean 2: started=true n=3 warnings=0
entries: true
plaintext marker found: false
raw ids found: 0
hashed ids found: 3
