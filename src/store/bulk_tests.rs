//! The `Bulk` capability on the engines that have it (Redis standalone, Memcached without
//! replicas): a batch reads and creates exactly what one-by-one calls would, creates never replace
//! a session that is there, each item keeps its own lifetime, and a batch costs one round trip.

use std::time::Duration;

use super::tests::id;
use super::{connect, Engine, Expect, Expiry, Left, Written};
use crate::lock::Token;

fn check(engine: &Engine) {
    let mut s = connect(engine).unwrap();
    let life = Expiry::new(Duration::from_secs(600));
    // One session there before the batch, with other data: it stays.
    let kept = id("bulk0007");
    assert!(matches!(s.save(&kept, b"x|s:5:\"newer\";", Expect::Any, None, life).unwrap(), Written::Done(_)));
    let ids: Vec<_> = (0..50).map(|i| id(&format!("bulk{i:04}"))).collect();
    let data: Vec<Vec<u8>> = (0..50).map(|i| format!("n|i:{i};").into_bytes()).collect();
    // Lifetimes of 300 to 545 s, one per item.
    let items: Vec<_> = (0..50).map(|i| (&ids[i], &data[i][..], Expiry::new(Duration::from_secs(300 + 5 * i as u64)))).collect();
    // A first batch on the connections (Memcached asks each server's item size limit once).
    let warm: Vec<_> = (0..20).map(|i| id(&format!("bulkwarm{i}"))).collect();
    let warm_items: Vec<_> = warm.iter().map(|w| (w, &b"w|i:1;"[..], life)).collect();
    assert!(s.bulk().expect("a bulk capability").create_many(&warm_items).iter().all(|r| matches!(r, Ok(true))));
    let before = s.round_trips();
    let created = s.bulk().unwrap().create_many(&items);
    assert_eq!(s.round_trips() - before, 1, "one round trip for the batch");
    for (i, r) in created.iter().enumerate() {
        assert_eq!(r.as_ref().ok(), Some(&(i != 7)), "item {i}: {r:?}");
    }
    assert_eq!(s.load(&kept, life).unwrap().unwrap().data, b"x|s:5:\"newer\";", "never overwritten");
    // Read back in one batch, with two ids that have no session.
    let mut asked = ids.clone();
    asked.push(id("bulkmissing1"));
    asked.push(id("bulkmissing2"));
    let before = s.round_trips();
    let got = s.bulk().unwrap().load_many(&asked, life).unwrap();
    assert_eq!(s.round_trips() - before, 1, "one round trip for the batch");
    assert_eq!(got.len(), 52);
    for (i, g) in got.iter().enumerate() {
        let want = match i {
            7 => Some(b"x|s:5:\"newer\";".to_vec()),
            50 | 51 => None,
            i => Some(data[i].clone()),
        };
        assert_eq!(g.as_ref().map(|l| l.data.clone()), want, "item {i}");
        // The version a batched read gives is the one `load` gives (a write may expect it).
        if let Some(l) = g {
            assert_eq!(Some(l.version), s.load(&asked[i], life).unwrap().map(|x| x.version), "item {i}");
        }
    }
    // Each item's own lifetime, as the listing tells it.
    let mut cursor = String::new();
    loop {
        let p = s.scanner().unwrap().scan(&cursor, 1000).unwrap();
        for l in p.sessions {
            let Some(i) = ids.iter().position(|x| *x == l.id).filter(|&i| i != 7) else { continue };
            let want = 300 + 5 * i as u64;
            assert!(matches!(l.left, Left::Ttl(d) if d.as_secs() <= want + 1 && d.as_secs() + 30 >= want), "item {i}: {:?}, want {want} s", l.left);
        }
        match p.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
}

#[test]
fn redis_standalone() {
    let port = std::env::var("SP_REDIS_PORT").expect("SP_REDIS_PORT is not set: run the tests with `make test`");
    let prefix = format!("sp-bulk-{}:", Token::new().as_str());
    check(&crate::dsn::parse(&format!("redis://127.0.0.1:{port}/0?prefix={prefix}"), std::path::Path::new("/tmp")).unwrap());
    // A Cluster has none (each key is routed by its slot).
    let seeds = std::env::var("SP_REDIS_CLUSTER").expect("SP_REDIS_CLUSTER is not set");
    let mut c = connect(&crate::dsn::parse(&format!("redis-cluster://{seeds}"), std::path::Path::new("/tmp")).unwrap()).unwrap();
    assert!(c.bulk().is_none());
}

#[test]
fn memcached() {
    let p1 = std::env::var("SP_MEMCACHED_PORT1").expect("SP_MEMCACHED_PORT1 is not set: run the tests with `make test`");
    let p2 = std::env::var("SP_MEMCACHED_PORT2").unwrap();
    let prefix = format!("spb{}.", &Token::new().as_str()[..8]);
    // Two servers: the batch is one exchange with both.
    check(&crate::dsn::parse(&format!("memcached://127.0.0.1:{p1},127.0.0.1:{p2}?prefix={prefix}"), std::path::Path::new("/tmp")).unwrap());
    // With replicas, none (a replicated create is conditional on its first copy only).
    let mut r = connect(&crate::dsn::parse(&format!("memcached://127.0.0.1:{p1},127.0.0.1:{p2}?replicas=1"), std::path::Path::new("/tmp")).unwrap()).unwrap();
    assert!(r.bulk().is_none());
}
