//! The `Scan` capability on every engine: all sessions listed once over pages (whatever the page
//! size), nothing else (locks, versions, other prefixes), with what each has left; `set_idle` ages a
//! session on the engines that judge age.

use std::collections::BTreeSet;
use std::time::Duration;

use super::tests::{id, TempDir};
use super::{connect, Engine, Expect, Expiry, Left, Store, Written};
use crate::lock::Token;

const N: usize = 250;

fn list_all(s: &mut dyn Store, page: usize) -> Vec<(String, Left)> {
    let scan = s.scanner().expect("a scanner");
    let mut out = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10_000 {
        let p = scan.scan(&cursor, page).unwrap();
        out.extend(p.sessions.into_iter().map(|l| (l.id.as_str().to_string(), l.left)));
        match p.next {
            Some(c) => cursor = c,
            None => return out,
        }
    }
    panic!("the scan did not end");
}

fn check(engine: &Engine, ttl_engine: bool) {
    let mut s = connect(engine).unwrap();
    let life = Expiry::new(Duration::from_secs(600));
    let mut want = BTreeSet::new();
    for i in 0..N {
        let sid = id(&format!("scan{i:04}"));
        assert!(matches!(s.save(&sid, b"x|i:1;", Expect::Any, None, life).unwrap(), Written::Done(_)));
        want.insert(sid.as_str().to_string());
    }
    // A held lock is no session of its own (Redis `_LOCK`, Memcached `lock.`, a lock-only file).
    let t = Token::new();
    let locked = id("scanlockonly");
    s.lock_and_load(&locked, &t, Duration::from_secs(30), life).unwrap();
    // The estimate: exact on SQLite, and on files but for the lock-only file; on the TTL engines an
    // upper bound (every key or item of the server).
    let est = s.scanner().unwrap().estimate().unwrap().expect("an estimate");
    match (ttl_engine, engine) {
        // A held lock adds no row to the SQL tables (an advisory lock, or a lock row of another table).
        (false, Engine::Sqlite(_) | Engine::Pgsql(_) | Engine::Mysql(_)) => assert_eq!(est, N as u64),
        (false, _) => assert_eq!(est, N as u64 + 1, "the sessions and the lock-only file"),
        (true, _) => assert!(est >= N as u64, "{est}"),
    }
    for page in [7, 100, 1000] {
        let got = list_all(s.as_mut(), page);
        let ids: Vec<&String> = got.iter().map(|(i, _)| i).collect();
        let set: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
        assert_eq!(set, want, "page {page}");
        assert_eq!(ids.len(), N, "each listed once (page {page})");
        for (i, left) in &got {
            match (ttl_engine, left) {
                // Memcached keeps expiry times in whole seconds of its own clock, so a 600 s session
                // may read as 601 s left (seen in a clean-clone run).
                (true, Left::Ttl(d)) => assert!(*d <= Duration::from_secs(601) && *d > Duration::from_secs(500), "{i}: {d:?}"),
                (false, Left::Idle(d)) => assert!(*d < Duration::from_secs(100), "{i}: {d:?}"),
                other => panic!("{i}: {other:?}"),
            }
        }
    }
    s.unlock(&locked, &t).unwrap();
    // set_idle: a session of an age engine reads as that old.
    let aged = id("scan0003");
    s.scanner().unwrap().set_idle(&aged, Duration::from_secs(300)).unwrap();
    let got = list_all(s.as_mut(), 1000);
    let left = got.iter().find(|(i, _)| i == "scan0003").unwrap().1;
    if !ttl_engine {
        assert!(matches!(left, Left::Idle(d) if d >= Duration::from_secs(299) && d < Duration::from_secs(310)), "{left:?}");
        assert!(s.load(&aged, Expiry::new(Duration::from_secs(200))).unwrap().is_none(), "older than a 200 s lifetime now");
    }
}

#[test]
fn sqlite_and_files() {
    let dir = TempDir::new("scan");
    check(&crate::dsn::parse(&format!("sqlite://{}/s.sqlite", dir.path().display()), dir.path()).unwrap(), false);
    for depth in [0, 2] {
        let d = dir.path().join(format!("f{depth}"));
        std::fs::create_dir_all(&d).unwrap();
        let q = if depth > 0 { format!("?depth={depth}") } else { String::new() };
        check(&crate::dsn::parse(&format!("files://{}{q}", d.display()), dir.path()).unwrap(), false);
    }
}

#[test]
fn redis_standalone_and_cluster() {
    let port = std::env::var("SP_REDIS_PORT").expect("SP_REDIS_PORT is not set: run the tests with `make test`");
    let prefix = format!("sp-scan-{}:", Token::new().as_str());
    check(&crate::dsn::parse(&format!("redis://127.0.0.1:{port}/0?prefix={prefix}"), std::path::Path::new("/tmp")).unwrap(), true);
    let seeds = std::env::var("SP_REDIS_CLUSTER").expect("SP_REDIS_CLUSTER is not set");
    let prefix = format!("sp-scanc-{}:", Token::new().as_str());
    check(&crate::dsn::parse(&format!("redis-cluster://{seeds}?prefix={prefix}"), std::path::Path::new("/tmp")).unwrap(), true);
}

#[test]
fn memcached() {
    let p1 = std::env::var("SP_MEMCACHED_PORT1").expect("SP_MEMCACHED_PORT1 is not set: run the tests with `make test`");
    let p2 = std::env::var("SP_MEMCACHED_PORT2").unwrap();
    let prefix = format!("sps{}.", &Token::new().as_str()[..8]);
    check(&crate::dsn::parse(&format!("memcached://127.0.0.1:{p1},127.0.0.1:{p2}?prefix={prefix}"), std::path::Path::new("/tmp")).unwrap(), true);
}

#[test]
fn pgsql_native_and_symfony() {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with `make test`"));
    let base = format!("pgsql://{}:{}@127.0.0.1:{}/{}?sslmode=disable", env("SP_PG_USER"), env("SP_PG_PASSWORD"), env("SP_PG_PORT"), env("SP_PG_DB"));
    for (q, ttl) in [("", false), ("&lock=row", false), ("&schema=symfony", true)] {
        let table = format!("scan_{}", Token::new().as_str().to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_").chars().take(30).collect::<String>());
        check(&crate::dsn::parse(&format!("{base}&table={table}{q}"), std::path::Path::new("/tmp")).unwrap(), ttl);
    }
}

#[test]
fn mysql() {
    let (d, _) = super::mysql::tests::dsn("");
    check(&crate::dsn::parse(&format!("mysql://{d}"), std::path::Path::new("/tmp")).unwrap(), false);
}
