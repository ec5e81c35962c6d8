//! The engine against live memcached servers started by scripts/services/memcached.sh (make test).

use std::time::Duration;

use super::*;
use crate::store::tests::{conformance, conformance_deferred_release, expiring_locks};

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with `make test` (scripts/services/memcached.sh starts the servers)"))
}

fn tcp(port_var: &str) -> ServerAddr {
    ServerAddr::Tcp { host: "127.0.0.1".into(), port: env(port_var).parse().unwrap() }
}

fn three() -> Vec<ServerAddr> {
    vec![tcp("SP_MEMCACHED_PORT1"), tcp("SP_MEMCACHED_PORT2"), tcp("SP_MEMCACHED_PORT3")]
}

/// Options with a prefix of their own, so tests running in parallel never share keys.
fn opts(servers: Vec<ServerAddr>) -> MemcachedOptions {
    MemcachedOptions { prefix: format!("t{}.", Token::new().as_str()), ..MemcachedOptions::new(servers) }
}

fn opener(o: MemcachedOptions) -> impl Fn() -> Box<dyn crate::store::Store> {
    move || Box::new(crate::store::legacy::Legacy(MemcachedStore::open(&o).unwrap())) as Box<dyn crate::store::Store>
}

#[test]
fn conformance_single_server() {
    let o = opts(vec![tcp("SP_MEMCACHED_PORT1")]);
    assert!(conformance(opener(o.clone())), "gc raced between its read and its delete");
    expiring_locks(opener(o));
}

#[test]
fn conformance_three_servers() {
    let o = opts(three());
    // compat lock placement: most locks live on another server than their session.
    assert!(conformance_deferred_release(opener(o.clone())), "gc raced between its read and its delete");
    expiring_locks(opener(o));
}

#[test]
fn conformance_replicas() {
    let o = MemcachedOptions { replicas: 1, ..opts(three()) };
    // compat lock placement: most locks live on another server than their session.
    assert!(conformance_deferred_release(opener(o.clone())), "gc raced between its read and its delete");
    expiring_locks(opener(o));
}

#[test]
fn conformance_unix_socket() {
    let o = opts(vec![ServerAddr::Unix(env("SP_MEMCACHED_SOCKET").into())]);
    assert!(conformance(opener(o.clone())), "gc raced between its read and its delete");
    expiring_locks(opener(o));
}

fn sid(s: &str) -> SessionId {
    SessionId::parse(s.as_bytes()).unwrap()
}

#[test]
fn oversize_is_refused_and_old_data_stays() {
    let o = opts(vec![tcp("SP_MEMCACHED_SMALL_PORT")]);
    let mut s = MemcachedStore::open(&o).unwrap();
    let id = sid("big");
    let life = Duration::from_secs(60);
    s.save(&id, b"old", life, None).unwrap();
    let e = s.save(&id, &vec![b'x'; 2 << 20], life, None).unwrap_err().to_string();
    assert!(e.contains("too large") && e.contains("127.0.0.1:") && e.contains("1048576"), "{e}");
    assert_eq!(s.load(&id, life).unwrap().as_deref(), Some(&b"old"[..]));
}

#[test]
fn down_server_is_named_and_skipped() {
    // Nothing listens on port 1.
    let o = MemcachedOptions { timeout: Duration::from_millis(200), ..opts(vec![ServerAddr::Tcp { host: "127.0.0.1".into(), port: 1 }]) };
    let mut s = MemcachedStore::open(&o).unwrap();
    let e = s.load(&sid("x"), Duration::from_secs(60)).unwrap_err().to_string();
    assert!(e.contains("127.0.0.1:1") && e.contains("refused"), "{e}");
    let e = s.load(&sid("x"), Duration::from_secs(60)).unwrap_err().to_string();
    assert!(e.contains("skipped"), "{e}");
}

#[test]
fn taken_over_lock_is_not_deleted() {
    let o = opts(vec![tcp("SP_MEMCACHED_PORT1")]);
    let (mut a, mut b) = (MemcachedStore::open(&o).unwrap(), MemcachedStore::open(&o).unwrap());
    let id = sid("takeover");
    let life = Duration::from_secs(60);
    let (ta, tb) = (Token::new(), Token::new());
    let short = Duration::from_millis(200);
    assert!(matches!(a.lock_and_load(&id, &ta, short, life).unwrap(), Acquire::Locked(None)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(matches!(b.lock_and_load(&id, &tb, Duration::from_secs(30), life).unwrap(), Acquire::Locked(None)));
    // A's release, write, touch and destroy leave B's lock alone.
    a.unlock(&id, &ta).unwrap();
    assert_eq!(a.save(&id, b"a", life, Some(&ta)).unwrap(), Saved::LockLost);
    assert_eq!(a.touch(&id, life, Some(&ta)).unwrap(), Saved::LockLost);
    let mut c = MemcachedStore::open(&o).unwrap();
    assert_eq!(c.lock_and_load(&id, &Token::new(), short, life).unwrap(), Acquire::Busy);
    assert_eq!(b.save(&id, b"b", life, Some(&tb)).unwrap(), Saved::Done);
    assert_eq!(c.load(&id, life).unwrap().as_deref(), Some(&b"b"[..]));
}

#[test]
fn ttl_over_30_days_is_sent_as_a_unix_time() {
    let (exp, flags) = exptime(Duration::from_secs(40 * 86400));
    assert!(exp > 1_600_000_000, "{exp}");
    assert_eq!(flags, 40 * 86400);
    assert_eq!(exptime(Duration::from_secs(1440)), (1440, 1440));
    let o = opts(vec![tcp("SP_MEMCACHED_PORT1")]);
    let mut s = MemcachedStore::open(&o).unwrap();
    let id = sid("longlife");
    s.save(&id, b"v", Duration::from_secs(40 * 86400), None).unwrap();
    assert_eq!(s.load(&id, Duration::from_secs(40 * 86400)).unwrap().as_deref(), Some(&b"v"[..]));
}


#[test]
fn a_locked_write_over_a_stale_read_is_refused() {
    // Simulates the race the CAS guard covers: the session changes between the read under the lock
    // and the write (here: a writer that ignores locks, as php-memcached's destroy or a locking=off
    // request would).
    let o = opts(vec![tcp("SP_MEMCACHED_PORT1")]);
    let (mut a, mut b) = (MemcachedStore::open(&o).unwrap(), MemcachedStore::open(&o).unwrap());
    let id = sid("stale");
    let life = Duration::from_secs(60);
    a.save(&id, b"v1", life, None).unwrap();
    let t = Token::new();
    assert_eq!(a.lock_and_load(&id, &t, Duration::from_secs(30), life).unwrap(), Acquire::Locked(Some(b"v1".to_vec())));
    b.save(&id, b"other", life, None).unwrap();
    let e = a.save(&id, b"mine", life, Some(&t)).unwrap_err().to_string();
    assert!(e.contains("changed on memcached server 127.0.0.1:") && e.contains("not saved"), "{e}");
    assert_eq!(b.load(&id, life).unwrap().as_deref(), Some(&b"other"[..]));
    // A new session is written with add: one created meanwhile is not overwritten either.
    let id2 = sid("stale2");
    assert_eq!(a.lock_and_load(&id2, &t, Duration::from_secs(30), life).unwrap(), Acquire::Locked(None));
    b.save(&id2, b"first", life, None).unwrap();
    assert!(a.save(&id2, b"mine", life, Some(&t)).is_err());
    assert_eq!(b.load(&id2, life).unwrap().as_deref(), Some(&b"first"[..]));
}

#[test]
fn conformance_lock_with_session() {
    let o = MemcachedOptions { lock_with_session: true, ..opts(three()) };
    assert!(conformance(opener(o.clone())), "gc raced between its read and its delete");
    expiring_locks(opener(o));
}

/// lock_and_load, retried every millisecond for up to 1 s while the lock is busy (as a waiter does).
fn lock_within_1s(s: &mut MemcachedStore, id: &SessionId, t: &Token, expire: Duration, life: Duration) -> Acquire {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        match s.lock_and_load(id, t, expire, life).unwrap() {
            Acquire::Busy if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            other => break other,
        }
    }
}

/// With the lock item on another server than the session, the release is sent after the write is
/// acknowledged, without waiting for its answer: the next request gets the lock at once and sees the
/// write, and the releasing store's connection reads the skipped answer before its next one.
#[test]
fn release_on_another_server_is_not_waited_for() {
    let o = opts(three());
    let (mut a, mut b) = (MemcachedStore::open(&o).unwrap(), MemcachedStore::open(&o).unwrap());
    let life = Duration::from_secs(60);
    let expire = Duration::from_secs(30);
    let ids: Vec<SessionId> = (0..40)
        .map(|i| sid(&format!("apart{i}")))
        .filter(|id| a.data_targets(id) != [a.lock_server(id)])
        .take(5)
        .collect();
    assert_eq!(ids.len(), 5, "ketama puts some locks on other servers than their sessions");
    for (n, id) in ids.iter().enumerate() {
        let ta = Token::new();
        assert_eq!(a.lock_and_load(id, &ta, expire, life).unwrap(), Acquire::Locked(None));
        assert_eq!(a.save(id, format!("v{n}").as_bytes(), life, Some(&ta)).unwrap(), Saved::Done);
        let ls = a.lock_server(id);
        assert_eq!(
            a.servers[ls].conn.as_ref().map(|c| c.unanswered()),
            Some(2),
            "the version item's and the release's answers are not read yet"
        );
        // memcached orders commands per connection only: b's add can be served just before the
        // release a sent on its own connection (a waiter then retries within a millisecond).
        let tb = Token::new();
        let got = lock_within_1s(&mut b, id, &tb, expire, life);
        assert_eq!(got, Acquire::Locked(Some(format!("v{n}").into_bytes())), "released, and the write is there");
        assert_eq!(b.save(id, b"b", life, Some(&tb)).unwrap(), Saved::Done);
        // a's next use of that connection reads the skipped answer first, then its own.
        assert_eq!(a.load(id, life).unwrap().as_deref(), Some(&b"b"[..]));
        // b's own release (sent without waiting, on b's connection) may likewise reach the lock's
        // server just after a's add.
        let t2 = Token::new();
        assert_eq!(lock_within_1s(&mut a, id, &t2, expire, life), Acquire::Locked(Some(b"b".to_vec())));
        assert_eq!(a.servers[ls].conn.as_ref().map(|c| c.unanswered()), Some(0));
        a.unlock(id, &t2).unwrap();
    }
}

/// The claim in the README: an uncontended locked cycle is 2 round trips (add the lock + read the
/// session; write + release), on one server and on three with compat lock placement, whether the
/// lock lives with its session or on another server (then the release is sent unanswered and rides
/// with the next request's first burst). Counted at the socket (`crate::net::round_trips`), so
/// commands of one step sent one after another, or an answer waited for, count more.
#[test]
fn round_trips_counted_at_the_socket() {
    let life = Duration::from_secs(60);
    let expire = Duration::from_secs(30);
    for (label, servers) in [("one server", vec![tcp("SP_MEMCACHED_PORT1")]), ("three servers", three())] {
        let mut s = MemcachedStore::open(&opts(servers)).unwrap();
        let ids: Vec<SessionId> = (0..40).map(|i| sid(&format!("rt{i}"))).collect();
        let apart = ids.iter().find(|id| s.data_targets(id) != [s.lock_server(id)]);
        let together = ids.iter().find(|id| s.data_targets(id) == [s.lock_server(id)]).unwrap();
        if label == "three servers" {
            assert!(apart.is_some(), "ketama puts some locks on other servers than their sessions");
        }
        for id in [Some(together), apart].into_iter().flatten() {
            let what = format!("{label}, lock {}", if id == together { "with the session" } else { "on another server" });
            let t = Token::new();
            let cycle = |s: &mut MemcachedStore, n: usize, lazy: bool| {
                assert!(matches!(s.lock_and_load(id, &t, expire, life).unwrap(), Acquire::Locked(_)), "{what}");
                let r = if lazy { s.touch(id, life, Some(&t)) } else { s.save(id, format!("v{n}").as_bytes(), life, Some(&t)) };
                assert_eq!(r.unwrap(), Saved::Done, "{what}");
            };
            // Connects, and asks each server its item size limit once.
            cycle(&mut s, 0, false);
            for lazy in [false, true] {
                let before = crate::net::round_trips();
                (1..=10).for_each(|n| cycle(&mut s, n, lazy));
                let per_cycle = (crate::net::round_trips() - before) as f64 / 10.0;
                assert_eq!(per_cycle, 2.0, "{what}, {}", if lazy { "touch" } else { "write" });
            }
            assert_eq!(s.load(id, life).unwrap().as_deref(), Some(&b"v10"[..]));
        }
    }
}

/// Ids whose lock item lives on another server than their session's first copy.
fn split_ids(s: &MemcachedStore, tag: &str, n: usize) -> Vec<SessionId> {
    let ids: Vec<SessionId> = (0..200)
        .map(|i| sid(&format!("{tag}{i}")))
        .filter(|id| MemcachedStore::split(s.lock_server(id), &s.data_targets(id)))
        .take(n)
        .collect();
    assert_eq!(ids.len(), n, "ketama puts some locks on other servers than their sessions");
    ids
}

/// Waits until every command `s` sent without waiting (a release) was served: its next answer on
/// the lock's connection comes after them.
fn settle(s: &mut MemcachedStore, id: &SessionId) {
    let (ls, lkey) = (s.lock_server(id), s.lock_key(id));
    s.one(ls, format!("mg {lkey} v"), None).unwrap();
}

/// Issue 18: with the lock on another server than the session, B's read (pipelined with its add)
/// can be served before the previous holder A's write, while its add is served after A's release.
/// `between` makes exactly that happen: B must not keep the stale read (today it would, and its write
/// would then be refused), nor revive a session A destroyed; with or without replicas.
#[test]
fn a_read_served_before_the_previous_holders_write_is_made_again() {
    let life = Duration::from_secs(60);
    let expire = Duration::from_secs(30);
    for replicas in [0, 1] {
        let o = MemcachedOptions { replicas, ..opts(three()) };
        let mut b = MemcachedStore::open(&o).unwrap();
        for (n, id) in split_ids(&b, "order", 3).into_iter().enumerate() {
            let mut a = MemcachedStore::open(&o).unwrap();
            let ta = Token::new();
            assert_eq!(a.lock_and_load(&id, &ta, expire, life).unwrap(), Acquire::Locked(None));
            assert_eq!(a.save(&id, b"v1", life, Some(&ta)).unwrap(), Saved::Done);
            settle(&mut a, &id);
            assert_eq!(a.lock_and_load(&id, &ta, expire, life).unwrap(), Acquire::Locked(Some(b"v1".to_vec())));
            let destroy = n == 2;
            let (aid, ata) = (id.clone(), ta.clone());
            b.between = Some(Box::new(move || {
                if destroy {
                    a.destroy(&aid, Some(&ata)).unwrap();
                } else {
                    assert_eq!(a.save(&aid, b"v2", life, Some(&ata)).unwrap(), Saved::Done);
                    settle(&mut a, &aid);
                }
            }));
            let tb = Token::new();
            let got = b.lock_and_load(&id, &tb, expire, life).unwrap();
            assert!(b.between.is_none(), "the interleaving was made");
            let want = if destroy { None } else { Some(b"v2".to_vec()) };
            assert_eq!(got, Acquire::Locked(want), "replicas={replicas} {id:?}: B reads A's last write");
            assert_eq!(b.save(&id, b"v3", life, Some(&tb)).unwrap(), Saved::Done, "B's write is not refused");
            settle(&mut b, &id);
            assert_eq!(b.load(&id, life).unwrap().as_deref(), Some(&b"v3"[..]));
        }
    }
}

/// The uncontended cycle stays at two round trips (lock + read, write; the release is not waited
/// for): the version the last write left proves the read current, so no second read is made.
#[test]
fn a_current_read_is_not_made_twice() {
    let life = Duration::from_secs(60);
    let expire = Duration::from_secs(30);
    for o in [opts(three()), MemcachedOptions { replicas: 1, ..opts(three()) }] {
        let mut a = MemcachedStore::open(&o).unwrap();
        for id in split_ids(&a, "once", 3) {
            let t = Token::new();
            assert_eq!(a.lock_and_load(&id, &t, expire, life).unwrap(), Acquire::Locked(None));
            assert_eq!(a.save(&id, b"v1", life, Some(&t)).unwrap(), Saved::Done);
            settle(&mut a, &id);
            for touch in [false, true] {
                a.round_trips = 0;
                assert_eq!(a.lock_and_load(&id, &t, expire, life).unwrap(), Acquire::Locked(Some(b"v1".to_vec())));
                let saved = if touch { a.touch(&id, life, Some(&t)) } else { a.save(&id, b"v1", life, Some(&t)) };
                assert_eq!(saved.unwrap(), Saved::Done);
                assert_eq!(a.round_trips, 2, "{id:?} replicas={}: lock + read, then write (touch: {touch})", o.replicas);
                settle(&mut a, &id);
            }
        }
    }
}

/// Issue 18.3: a server that refused the connection (not running, or restarting) is probed again by
/// the next request instead of being skipped for `retry` ms, so a restarted server fails no request;
/// one that did not answer (a timeout) stays skipped, so it costs one timeout per `retry` per worker.
#[test]
fn a_refused_server_is_probed_by_the_next_request_a_silent_one_is_skipped() {
    let life = Duration::from_secs(60);
    let retry = Duration::from_secs(30);
    let o = MemcachedOptions { timeout: Duration::from_millis(200), retry, ..opts(vec![ServerAddr::Tcp { host: "127.0.0.1".into(), port: 1 }]) };
    let mut s = MemcachedStore::open(&o).unwrap();
    for _request in 0..3 {
        assert!(s.still_valid());
        let e = s.load(&sid("x"), life).unwrap_err().to_string();
        assert!(e.contains("refused"), "probed, not skipped: {e}");
        let e = s.load(&sid("x"), life).unwrap_err().to_string();
        assert!(e.contains("skipped"), "within one request the server is not asked twice: {e}");
    }

    // Accepts (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let o = MemcachedOptions { timeout: Duration::from_millis(200), retry, ..opts(vec![ServerAddr::Tcp { host: "127.0.0.1".into(), port }]) };
    let mut s = MemcachedStore::open(&o).unwrap();
    let e = s.load(&sid("x"), life).unwrap_err().to_string();
    assert!(e.contains("timeout"), "{e}");
    assert!(s.still_valid());
    let t = std::time::Instant::now();
    let e = s.load(&sid("x"), life).unwrap_err().to_string();
    assert!(e.contains("skipped") && t.elapsed() < Duration::from_millis(100), "{e}");
}

/// The take-over of an expired lock reads the same way: here A, whose lock expired but was not yet
/// taken over, saves (its write path refreshes the lock first) between B's data read and B's
/// compare-and-swap of the lock item. B must not win the lock with its stale read: the swap fails
/// (A changed and then released the lock), and B's next attempt reads A's write.
#[test]
fn a_take_over_racing_the_expired_holders_write_keeps_its_write() {
    let life = Duration::from_secs(60);
    let o = opts(three());
    let mut b = MemcachedStore::open(&o).unwrap();
    for id in split_ids(&b, "takeover", 2) {
        let mut a = MemcachedStore::open(&o).unwrap();
        let ta = Token::new();
        let short = Duration::from_secs(1);
        assert_eq!(a.lock_and_load(&id, &ta, short, life).unwrap(), Acquire::Locked(None));
        std::thread::sleep(Duration::from_millis(1100));
        let (aid, ata) = (id.clone(), ta.clone());
        b.between_after = 1;
        b.between = Some(Box::new(move || {
            assert_eq!(a.save(&aid, b"late", life, Some(&ata)).unwrap(), Saved::Done);
            settle(&mut a, &aid);
        }));
        let tb = Token::new();
        let first = b.lock_and_load(&id, &tb, Duration::from_secs(30), life).unwrap();
        assert!(b.between.is_none(), "the take-over was attempted");
        assert_eq!(first, Acquire::Busy, "{id:?}: the swap of the lock A refreshed fails");
        assert_eq!(b.lock_and_load(&id, &tb, Duration::from_secs(30), life).unwrap(), Acquire::Locked(Some(b"late".to_vec())));
        assert_eq!(b.save(&id, b"b", life, Some(&tb)).unwrap(), Saved::Done);
    }
}
