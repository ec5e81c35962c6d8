//! The at-rest layers over real engines: the conformance suite over each layer and over all three
//! stacked, the read-through of sessions stored before hash_ids, and what the engine really holds.
#![allow(clippy::missing_trait_methods)]

use std::time::Duration;

use super::compress::Compress;
use super::encrypt::KeyRing;
use super::envelope::Codec;
use super::keys::Secret;
use super::{hashid, Layers};
use crate::dsn::{self, Engine};
use crate::id::SessionId;
use crate::lock::Token;
use crate::store::tests::{conformance, conformance_deferred_release, conformance_ttl, id, TempDir};
use crate::store::{Acquire, Expect, Expiry, Store, Written};

const EXP: Expiry = Expiry::new(Duration::from_secs(3600));

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with `make test`"))
}

fn engine(dsn: &str) -> Engine {
    dsn::parse(dsn, std::path::Path::new("/tmp")).unwrap()
}

fn sqlite(dir: &TempDir) -> Engine {
    engine(&format!("sqlite://{}/s.sqlite", dir.path().display()))
}

fn redis() -> Engine {
    engine(&format!("redis://127.0.0.1:{}/0?prefix=sp-atrest-{}:", env("SP_REDIS_PORT"), Token::new().as_str()))
}

fn memcached() -> Engine {
    engine(&format!("memcached://127.0.0.1:{}?prefix=atrest{}.", env("SP_MEMCACHED_PORT1"), Token::new().as_str()))
}

/// One layer or several, without metrics (its own tests cover it).
fn layers(hash: bool, codec: Option<Codec>, encrypt: bool) -> Layers {
    Layers {
        metrics: false,
        migrate_from: None,
        hash_ids: hash.then(|| Secret::new([7; 32])),
        compression: Compress { codec, threshold: 0 },
        envelopes: false,
        encryption: encrypt.then(|| KeyRing { current: Secret::new([8; 32]), old: vec![Secret::new([9; 32])] }),
    }
}

fn all() -> Layers {
    layers(true, Some(Codec::Zstd), true)
}

fn opener(e: &Engine, l: &Layers) -> impl Fn() -> Box<dyn Store> {
    let (e, l) = (e.clone(), l.clone());
    move || l.wrap(&e, crate::store::connect(&e).unwrap())
}

#[test]
fn conformance_over_each_layer_and_the_stack_on_sqlite() {
    let each = [
        layers(true, None, false),
        layers(false, Some(Codec::Zstd), false),
        layers(false, Some(Codec::Lz4), false),
        layers(false, None, true),
        all(),
        layers(true, Some(Codec::Lz4), true),
    ];
    for l in each {
        let dir = TempDir::new("atrest-conf");
        assert!(!conformance(opener(&sqlite(&dir), &l)), "as bare SQLite: {l:?}");
    }
}

/// Each layer alone (hashed ids, zstd, lz4, encryption), over every network and SQL engine too, as
/// over SQLite above (one test per engine, so that they run side by side).
fn each_layer() -> [Layers; 4] {
    [layers(true, None, false), layers(false, Some(Codec::Zstd), false), layers(false, Some(Codec::Lz4), false), layers(false, None, true)]
}

/// `raced`: whether the suite's gc hook saw its window (files and Memcached read before they
/// delete; the hook looks for the raw id, which a hashed-id layer hides).
#[test]
fn conformance_over_each_layer_on_files_and_memcached() {
    let dir = TempDir::new("atrest-each");
    for (n, l) in each_layer().iter().enumerate() {
        let d = dir.path().join(format!("f{n}"));
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(conformance(opener(&engine(&format!("files://{}", d.display())), l)), l.hash_ids.is_none(), "files: {l:?}");
        assert_eq!(conformance(opener(&memcached(), l)), l.hash_ids.is_none(), "memcached: {l:?}");
    }
}

#[test]
fn conformance_over_each_layer_on_redis() {
    for l in each_layer() {
        conformance_ttl(opener(&redis(), &l));
    }
}

#[test]
fn conformance_over_each_layer_on_pgsql_and_mysql() {
    for l in each_layer() {
        let (pg, _) = crate::store::pgsql::tests::dsn("");
        assert!(!conformance(opener(&engine(&format!("pgsql://{pg}")), &l)), "pgsql: {l:?}");
        let (my, _) = crate::store::mysql::tests::dsn("");
        assert!(!conformance(opener(&engine(&format!("mysql://{my}")), &l)), "mysql: {l:?}");
    }
}

#[test]
fn conformance_of_the_stack_on_files() {
    let dir = TempDir::new("atrest-files");
    let e = engine(&format!("files://{}", dir.path().display()));
    assert!(conformance(opener(&e, &layers(false, Some(Codec::Zstd), true))), "as bare files: gc raced between scan and unlink");
    // With hashed ids the suite's gc hook, which looks for the raw id in the file names, never
    // finds it: the window is there but not raced (the layer forwards gc unchanged).
    let dir = TempDir::new("atrest-files-h");
    let e = engine(&format!("files://{}", dir.path().display()));
    assert!(!conformance(opener(&e, &all())), "names are hashed: the hook cannot see the raw id");
}

#[test]
fn conformance_of_the_stack_on_redis() {
    conformance_ttl(opener(&redis(), &all()));
}

/// PostgreSQL (its native table, advisory locks) under all three layers.
#[test]
fn conformance_of_the_stack_on_pgsql() {
    let (d, _) = crate::store::pgsql::tests::dsn("");
    assert!(!conformance(opener(&engine(&format!("pgsql://{d}")), &all())), "gc deletes in one statement: no window between reading and deleting");
}

/// MySQL/MariaDB (its native table, GET_LOCK) under all three layers.
#[test]
fn conformance_of_the_stack_on_mysql() {
    let (d, _) = crate::store::mysql::tests::dsn("");
    assert!(!conformance(opener(&engine(&format!("mysql://{d}")), &all())), "gc deletes in one statement: no window between reading and deleting");
}

/// Cluster (the session, its lock and its sidecar keys on their slots) and Sentinel (the master
/// found through the sentinel) under all three layers.
#[test]
fn conformance_of_the_stack_on_redis_cluster_and_sentinel() {
    let prefix = || format!("sp-atrest-{}:", Token::new().as_str());
    conformance_ttl(opener(&engine(&format!("redis-cluster://{}?prefix={}", env("SP_REDIS_CLUSTER"), prefix())), &all()));
    let sentinel = format!("redis-sentinel://{}/{}?db=3&prefix={}", env("SP_REDIS_SENTINEL"), env("SP_REDIS_SENTINEL_MASTER"), prefix());
    conformance_ttl(opener(&engine(&sentinel), &all()));
}

#[test]
fn conformance_of_the_stack_on_memcached() {
    assert!(conformance(opener(&memcached(), &layers(false, Some(Codec::Lz4), true))), "gc raced between its read and its delete");
    assert!(!conformance(opener(&memcached(), &all())), "keys are hashed: the gc hook cannot see the raw id");
    let three = engine(&format!(
        "memcached://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}?prefix=atrest{}.",
        env("SP_MEMCACHED_PORT1"),
        env("SP_MEMCACHED_PORT2"),
        env("SP_MEMCACHED_PORT3"),
        Token::new().as_str()
    ));
    assert!(!conformance_deferred_release(opener(&three, &all())), "keys are hashed: the gc hook cannot see the raw id");
}

/// What the engine itself holds under `sid` (no layers).
fn raw(e: &Engine, sid: &SessionId) -> Option<Vec<u8>> {
    crate::store::connect(e).unwrap().load(sid, EXP).unwrap().map(|l| l.data)
}

/// Sessions written before the layers were turned on are read (and, with hash_ids, moved); what
/// the layers write is, in the engine, neither the data nor under the id.
fn before_and_after(e: &Engine) {
    let bare = opener(e, &Layers::NONE);
    let on = opener(e, &all());
    let hk = all().hash_ids.unwrap();
    let (old_locked, old_unlocked, fresh) = (id("legacyLocked1"), id("legacyUnlocked1"), id("freshSession1"));
    let data = b"secret|s:6:\"MARKER\";".repeat(100);
    for s in [&old_locked, &old_unlocked] {
        assert!(matches!(bare().save(s, &data, Expect::Any, None, EXP).unwrap(), Written::Done(_)));
    }
    let t = Token::new();
    let mut a = on();
    // Locked read: found under the raw id, moved under the hashed one; the lock is still ours.
    let Acquire::Locked(Some(l)) = a.lock_and_load(&old_locked, &t, Duration::from_secs(10), EXP).unwrap() else { panic!("not read through") };
    assert_eq!(l.data, data);
    assert_eq!(raw(e, &old_locked), None, "the raw id's copy was deleted");
    assert!(matches!(on().lock_and_load(&old_locked, &Token::new(), Duration::from_secs(10), EXP).unwrap(), Acquire::Busy(_)));
    let w = a.save(&old_locked, b"v|i:2;", Expect::Held(Some(l.version)), Some(&t), EXP).unwrap();
    assert!(matches!(w, Written::Done(_)), "{w:?}");
    assert_eq!(on().load(&old_locked, EXP).unwrap().unwrap().data, b"v|i:2;");
    // Unlocked read and exists: the same.
    assert!(on().exists(&old_unlocked, EXP).unwrap());
    assert_eq!(on().load(&old_unlocked, EXP).unwrap().unwrap().data, data);
    assert_eq!(raw(e, &old_unlocked), None);
    // What the engine holds: under the hash only, sealed.
    let stored = raw(e, &hashid::hashed(&hk, &old_unlocked)).expect("stored under the hashed id");
    assert!(!stored.windows(6).any(|w| w == b"MARKER") && stored.len() < data.len(), "{} bytes", stored.len());
    on().save(&fresh, &data, Expect::Absent, None, EXP).unwrap();
    assert_eq!(raw(e, &fresh), None);
    // destroy deletes both names.
    bare().save(&fresh, b"x|i:1;", Expect::Any, None, EXP).unwrap();
    on().destroy(&fresh, None).unwrap();
    assert!(!on().exists(&fresh, EXP).unwrap() && raw(e, &fresh).is_none());
    // A sealed blob copied to another id does not open there.
    let other = id("copiedTarget1");
    let mut b = crate::store::connect(e).unwrap();
    b.save(&hashid::hashed(&hk, &other), &stored, Expect::Any, None, EXP).unwrap();
    let err = on().load(&other, EXP).unwrap_err();
    assert!(err.kind() == crate::store::ErrorKind::Unreadable && err.detail().contains("another session id"), "{err}");
}

#[test]
fn before_and_after_on_sqlite_and_files() {
    let dir = TempDir::new("atrest-ba");
    before_and_after(&sqlite(&dir));
    before_and_after(&engine(&format!("files://{}", dir.path().display())));
}

#[test]
fn before_and_after_on_redis_and_memcached() {
    before_and_after(&redis());
    before_and_after(&memcached());
}

#[test]
fn an_unreadable_session_releases_its_lock_and_is_not_written_over() {
    let dir = TempDir::new("atrest-bad");
    let e = sqlite(&dir);
    let sid = id("badKey1");
    opener(&e, &layers(false, None, true))().save(&sid, b"a|i:1;", Expect::Any, None, EXP).unwrap();
    let before = raw(&e, &sid).unwrap();
    let other_key = Layers { encryption: Some(KeyRing { current: Secret::new([1; 32]), old: vec![] }), ..layers(false, None, false) };
    let t = Token::new();
    // The reader stays open (a dropped handle may release its locks by itself).
    let mut reader = opener(&e, &other_key)();
    let err = reader.lock_and_load(&sid, &t, Duration::from_secs(30), EXP).unwrap_err();
    assert!(err.to_string().contains("session_proxy.encryption_keys_old"), "{err}");
    // The lock was released: another request takes it at once.
    let got = crate::store::connect(&e).unwrap().lock_and_load(&sid, &Token::new(), Duration::from_secs(30), EXP).unwrap();
    assert!(matches!(got, Acquire::Locked(_)), "{got:?}");
    drop(reader);
    assert_eq!(raw(&e, &sid).unwrap(), before);
}

#[test]
fn with_every_at_rest_directive_off_a_sealed_session_is_unreadable_and_plaintext_is_untouched() {
    let dir = TempDir::new("atrest-off");
    let e = sqlite(&dir);
    let off = Layers { envelopes: true, ..Layers::NONE };
    assert!(Layers::default().envelopes && !Layers::default().any_at_rest(), "the default stack reads envelopes");
    let sid = id("sealedOff1");
    opener(&e, &layers(false, None, true))().save(&sid, b"a|i:1;", Expect::Any, None, EXP).unwrap();
    let before = raw(&e, &sid).unwrap();
    let mut reader = opener(&e, &off)();
    let err = reader.load(&sid, EXP).unwrap_err();
    assert_eq!(err.kind(), crate::store::ErrorKind::Unreadable, "{err}");
    assert!(err.to_string().contains("session_proxy.encryption_key is not set"), "{err}");
    let err = reader.lock_and_load(&sid, &Token::new(), Duration::from_secs(30), EXP).unwrap_err();
    assert_eq!(err.kind(), crate::store::ErrorKind::Unreadable, "{err}");
    let got = crate::store::connect(&e).unwrap().lock_and_load(&sid, &Token::new(), Duration::from_secs(30), EXP).unwrap();
    assert!(matches!(got, Acquire::Locked(_)), "the lock was released: {got:?}");
    drop(reader);
    assert_eq!(raw(&e, &sid).unwrap(), before);
    // Plaintext is stored and read as it is (what phpredis, php-memcached and PHP's files read).
    let plain = id("plainOff1");
    let mut s = opener(&e, &off)();
    s.save(&plain, b"user|s:3:\"bob\";", Expect::Any, None, EXP).unwrap();
    assert_eq!(raw(&e, &plain).unwrap(), b"user|s:3:\"bob\";");
    assert_eq!(s.load(&plain, EXP).unwrap().unwrap().data, b"user|s:3:\"bob\";");
    // A compressed session written with compression on reads with it off.
    let z = id("zstdOff1");
    let big = b"k|s:9000:\"".iter().copied().chain(std::iter::repeat_n(b'x', 9000)).chain(*b"\";").collect::<Vec<u8>>();
    opener(&e, &layers(false, Some(Codec::Zstd), false))().save(&z, &big, Expect::Any, None, EXP).unwrap();
    assert!(raw(&e, &z).unwrap().len() < 1000);
    assert_eq!(s.load(&z, EXP).unwrap().unwrap().data, big);
}

#[test]
fn keys_are_loaded_and_missing_ones_name_their_directive() {
    let dir = TempDir::new("atrest-keys");
    let k = dir.path().join("k");
    std::fs::write(&k, "ab".repeat(32)).unwrap();
    let kp = k.display().to_string();
    let a = super::AtRest { encryption_key: kp.clone(), hash_ids: true, ..Default::default() };
    let l = Layers::at_rest(&a).unwrap();
    let ring = l.encryption.clone().unwrap();
    assert_eq!(ring.current.bytes(), &[0xab; 32]);
    assert_eq!(l.hash_ids, Some(ring.current.derive_hash_key()), "hash key derived by HKDF");
    assert!(l.metrics);
    let e = Layers::at_rest(&super::AtRest { hash_ids: true, ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("session_proxy.hash_key"), "{e}");
    let e = Layers::at_rest(&super::AtRest { encryption_keys_old: kp.clone(), ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("session_proxy.encryption_key "), "{e}");
    let e = Layers::at_rest(&super::AtRest { encryption_key: format!("{}/none", dir.path().display()), ..Default::default() }).unwrap_err();
    assert!(e.to_string().starts_with("session_proxy.encryption_key:"), "{e}");
    assert_eq!(Layers::at_rest(&super::AtRest::default()).unwrap(), Layers::default());
}
