//! The per-user index against the live servers of scripts/services/redis.sh: standalone, a phpredis
//! server list (a user's set and its sessions on different servers), Sentinel and Cluster (the set in
//! another slot than the sessions).

use super::dsn;
use super::RedisStore;
use crate::lock::Token;
use crate::store::users_tests::users_conformance;
use crate::store::Store;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with `make test` (scripts/test.sh starts the servers)"))
}

fn prefix() -> String {
    format!("sp-test-{}:", Token::new().as_str())
}

fn check(dsn: &str, tag: &str) {
    let o = dsn::parse(dsn).unwrap();
    users_conformance(|| Box::new(RedisStore::open(&o).unwrap()) as Box<dyn Store>, tag, false);
}

#[test]
fn users_standalone_and_server_list() {
    let (p1, p2) = (env("SP_REDIS_PORT"), env("SP_REDIS_PORT2"));
    check(&format!("redis://127.0.0.1:{p1}/0?prefix={}", prefix()), "rs");
    // phpredis' list: sessions and sets spread over two servers.
    let px = prefix();
    check(&format!("tcp://127.0.0.1:{p1}?prefix={px},tcp://127.0.0.1:{p2}?prefix={px}"), "rl");
}

#[test]
fn users_sentinel() {
    check(&format!("redis-sentinel://{}/{}?db=2&prefix={}", env("SP_REDIS_SENTINEL"), env("SP_REDIS_SENTINEL_MASTER"), prefix()), "rn");
}

#[test]
fn users_cluster() {
    check(&format!("redis-cluster://{}?prefix={}", env("SP_REDIS_CLUSTER"), prefix()), "rc");
}

/// Issue 13: a bound session's `_USER` key lives as long as the session is written or touched, with
/// locking Off (no expectation) and optimistic (a version expected), also when no read refreshed it
/// (a Cluster's unlocked read does not name it): each step finds `_USER` about to expire (shortened
/// behind the engine's back) and must leave it alive, so the session stays listed.
fn user_key_lives_with_writes(dsn: &str) {
    use crate::store::users::User;
    use crate::store::{Expect, Expiry, Touched, Written};
    use std::time::Duration;
    let o = dsn::parse(dsn).unwrap();
    let (mut s, mut b) = (RedisStore::open(&o).unwrap(), RedisStore::open(&o).unwrap());
    let e = Expiry::new(Duration::from_secs(3600));
    let sid = crate::store::tests::id(&format!("userkeylives{}", Token::new().as_str()));
    let alice = User::new(format!("alice-{}", Token::new().as_str()).as_bytes()).unwrap();
    let Written::Done(mut v) = s.save(&sid, b"n|i:1;", Expect::Any, None, e).unwrap() else { panic!("writes") };
    s.users().unwrap().bind(&sid, Some(&alice), None, e).unwrap();
    let idx = s.node_for(&sid);
    let user = s.keys(idx, &sid).user;
    for step in ["write, locking off", "write, optimistic", "touch, locking off", "locked touch"] {
        let n: i64 = s.simple(idx, &[b"PEXPIRE", &user, b"300"]).unwrap();
        assert_eq!(n, 1, "{dsn}: {step}: the session is bound");
        match step {
            "write, locking off" => v = written(s.save(&sid, b"n|i:2;", Expect::Any, None, e).unwrap()),
            "write, optimistic" => v = written(s.save(&sid, b"n|i:3;", Expect::Version(v), None, e).unwrap()),
            "touch, locking off" => assert_eq!(s.touch(&sid, None, e).unwrap(), Touched::Done),
            _ => {
                // Taking the lock reads `_USER` (and keeps it alive): shorten it once more after.
                let t = Token::new();
                let got = s.lock_and_load(&sid, &t, Duration::from_secs(30), e).unwrap();
                assert!(matches!(got, crate::store::Acquire::Locked(Some(_))), "{got:?}");
                let _: i64 = s.simple(idx, &[b"PEXPIRE", &user, b"300"]).unwrap();
                assert_eq!(s.touch(&sid, Some(&t), e).unwrap(), Touched::Done);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let listed: Vec<_> = b.users().unwrap().list(&alice, e).unwrap().into_iter().map(|l| l.id).collect();
        assert_eq!(listed, std::slice::from_ref(&sid), "{dsn}: {step}: the session is still listed");
    }
    s.destroy(&sid, None).unwrap();
}

fn written(w: crate::store::Written) -> crate::store::Version {
    match w {
        crate::store::Written::Done(v) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn user_key_lives_with_writes_everywhere() {
    user_key_lives_with_writes(&format!("redis://127.0.0.1:{}/0?prefix={}", env("SP_REDIS_PORT"), prefix()));
    user_key_lives_with_writes(&format!("redis-sentinel://{}/{}?db=2&prefix={}", env("SP_REDIS_SENTINEL"), env("SP_REDIS_SENTINEL_MASTER"), prefix()));
    user_key_lives_with_writes(&format!("redis-cluster://{}?prefix={}", env("SP_REDIS_CLUSTER"), prefix()));
}
