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
    for step in ["write, locking off", "write, optimistic", "touch, locking off", "locked touch", "locked write"] {
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
                if step == "locked touch" {
                    assert_eq!(s.touch(&sid, Some(&t), e).unwrap(), Touched::Done);
                } else {
                    v = written(s.save(&sid, b"n|i:4;", Expect::Held(Some(v)), Some(&t), e).unwrap());
                }
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

#[test]
fn eviction_is_read_from_info_memory() {
    use super::users::evicting;
    let info = |mm: &str, p: &str| format!("# Memory\r\nused_memory:1016312\r\nmaxmemory:{mm}\r\nmaxmemory_human:0B\r\nmaxmemory_policy:{p}\r\n");
    assert_eq!(evicting(&info("10485760", "allkeys-lru")), Some(("allkeys-lru".to_string(), 10485760)));
    assert_eq!(evicting(&info("10485760", "volatile-ttl")), Some(("volatile-ttl".to_string(), 10485760)));
    assert_eq!(evicting(&info("10485760", "noeviction")), None, "full, it refuses writes instead");
    assert_eq!(evicting(&info("0", "allkeys-lru")), None, "no limit: nothing is evicted");
    assert_eq!(evicting("# Memory\r\nused_memory:1\r\n"), None, "not told: no warning");
}

/// Issue 13: a Redis that evicts keys when full could drop a `_USER` key while its session lives,
/// hiding the session from "log out everywhere": binding and listing there warn, naming the server,
/// its policy and its limit, with no round trip more (the INFO rides in their pipeline, once a
/// minute per connection). A private redis-server, so that its policy can be changed.
#[test]
fn a_redis_that_evicts_keys_is_warned_of_when_binding_and_listing() {
    use crate::store::users::User;
    use crate::store::{Caution, Expect, Expiry};
    use std::time::Duration;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = crate::store::tests::TempDir::new("redis-evicts");
    let srv = std::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .args(["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _srv = Kill(srv);
    let o = dsn::parse(&format!("redis://127.0.0.1:{port}/0?prefix={}", prefix())).unwrap();
    let open = || {
        for _ in 0..200 {
            if let Ok(mut s) = RedisStore::open(&o) {
                if s.exists(&crate::store::tests::id("probe"), Expiry::new(Duration::from_secs(1))).is_ok() {
                    return s;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the private redis-server on port {port} did not start");
    };
    let e = Expiry::new(Duration::from_secs(3600));
    let alice = User::new(b"alice").unwrap();
    let bind = |s: &mut RedisStore, n: &str| {
        let sid = crate::store::tests::id(n);
        s.save(&sid, b"n|i:1;", Expect::Any, None, e).unwrap();
        // As in a request: the read fetches `_USER` with the session, so the binding needs no more.
        s.load(&sid, e).unwrap();
        let before = s.round_trips();
        s.users().unwrap().bind(&sid, Some(&alice), None, e).unwrap();
        s.round_trips() - before
    };
    let mut s = open();
    assert_eq!(bind(&mut s, "evicts1"), 1, "the binding is one round trip, INFO included");
    let w = s.take_warnings();
    let [Caution::MayEvictBindings { at, policy, maxmemory }] = &w[..] else { panic!("{w:?}") };
    assert!(at.contains(&format!("127.0.0.1:{port}")), "{at}");
    assert_eq!((policy.as_str(), *maxmemory), ("allkeys-lru", 64 << 20));
    assert_eq!(bind(&mut s, "evicts2"), 1);
    assert!(s.take_warnings().is_empty(), "asked once a minute per connection, not at every binding");
    // A list on a new connection is told too.
    let mut l = open();
    assert_eq!(l.users().unwrap().list(&alice, e).unwrap().len(), 2);
    assert!(matches!(&l.take_warnings()[..], [Caution::MayEvictBindings { .. }]));
    // The same server set not to evict: no warning.
    let _: String = s.simple(0, &[b"CONFIG", b"SET", b"maxmemory-policy", b"noeviction"]).unwrap();
    let mut q = open();
    assert_eq!(bind(&mut q, "evicts3"), 1);
    assert_eq!(q.users().unwrap().list(&alice, e).unwrap().len(), 3);
    assert!(q.take_warnings().is_empty());
}
