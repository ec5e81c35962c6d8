//! The engine against live memcached servers started by scripts/services/memcached.sh (make test).

use std::time::Duration;

use super::*;
use crate::store::tests::{conformance, conformance_deferred_release, expiring_locks, Got, Ops, W};

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

fn opener(o: MemcachedOptions) -> impl Fn() -> Box<dyn Store> {
    move || Box::new(MemcachedStore::open(&o).unwrap()) as Box<dyn Store>
}

fn ex(d: Duration) -> Expiry {
    Expiry::new(d)
}

/// The suite's data-only shorthands (`store::tests::Ops`) on the engine's own type, for the tests
/// below that also look inside it.
impl Ops for MemcachedStore {
    fn put(&mut self, s: &SessionId, d: &[u8], ttl: Duration, owner: Option<&Token>) -> Result<W> {
        Ok(match self.save(s, d, Expect::Any, owner, ex(ttl))? {
            Written::Done(_) => W::Done,
            Written::LockLost => W::LockLost,
            Written::Conflict(_) => W::Conflict,
        })
    }
    fn get(&mut self, s: &SessionId, life: Duration) -> Result<Option<Vec<u8>>> {
        Ok(self.load(s, ex(life))?.map(|l| l.data))
    }
    fn lock(&mut self, s: &SessionId, t: &Token, expire: Duration, life: Duration) -> Result<Got> {
        Ok(match self.lock_and_load(s, t, expire, ex(life))? {
            Acquire::Locked(l) => Got::Locked(l.map(|l| l.data)),
            Acquire::Busy(_) => Got::Busy,
        })
    }
    fn tch(&mut self, s: &SessionId, ttl: Duration, owner: Option<&Token>) -> Result<W> {
        Ok(match self.touch(s, owner, ex(ttl))? {
            Touched::Done => W::Done,
            Touched::LockLost => W::LockLost,
        })
    }
    fn has(&mut self, s: &SessionId, life: Duration) -> Result<bool> {
        self.exists(s, ex(life))
    }
}

#[test]
fn keeps_a_user_index() {
    let o = opts(vec![tcp("SP_MEMCACHED_PORT1")]);
    crate::store::users_tests::users_conformance(opener(o), "m1", false);
    let o = MemcachedOptions { replicas: 1, ..opts(three()) };
    crate::store::users_tests::users_conformance(opener(o), "m3", false);
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
    s.put(&id, b"old", life, None).unwrap();
    let err = s.put(&id, &vec![b'x'; 2 << 20], life, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert!(err.at().starts_with("127.0.0.1:"), "{err:?}");
    let e = err.to_string();
    assert!(e.contains("too large") && e.contains("127.0.0.1:") && e.contains("1048576"), "{e}");
    assert_eq!(s.get(&id, life).unwrap().as_deref(), Some(&b"old"[..]));
}

#[test]
fn down_server_is_named_and_skipped() {
    // Nothing listens on port 1.
    let o = MemcachedOptions { timeout: Duration::from_millis(200), ..opts(vec![ServerAddr::Tcp { host: "127.0.0.1".into(), port: 1 }]) };
    let mut s = MemcachedStore::open(&o).unwrap();
    let err = s.get(&sid("x"), Duration::from_secs(60)).unwrap_err();
    assert_eq!((err.kind(), err.at()), (ErrorKind::Unavailable, "127.0.0.1:1"), "{err}");
    let e = err.to_string();
    assert!(e.contains("127.0.0.1:1") && e.contains("refused"), "{e}");
    let err = s.get(&sid("x"), Duration::from_secs(60)).unwrap_err();
    assert_eq!((err.kind(), err.at()), (ErrorKind::Unavailable, "127.0.0.1:1"), "{err}");
    assert!(err.to_string().contains("skipped"), "{err}");
}

#[test]
fn taken_over_lock_is_not_deleted() {
    let o = opts(vec![tcp("SP_MEMCACHED_PORT1")]);
    let (mut a, mut b) = (MemcachedStore::open(&o).unwrap(), MemcachedStore::open(&o).unwrap());
    let id = sid("takeover");
    let life = Duration::from_secs(60);
    let (ta, tb) = (Token::new(), Token::new());
    let short = Duration::from_millis(200);
    assert_eq!(a.lock(&id, &ta, short, life).unwrap(), Got::Locked(None));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.lock(&id, &tb, Duration::from_secs(30), life).unwrap(), Got::Locked(None));
    // A's release, write, touch and destroy leave B's lock alone.
    a.unlock(&id, &ta).unwrap();
    assert_eq!(a.put(&id, b"a", life, Some(&ta)).unwrap(), W::LockLost);
    assert_eq!(a.tch(&id, life, Some(&ta)).unwrap(), W::LockLost);
    let mut c = MemcachedStore::open(&o).unwrap();
    assert_eq!(c.lock(&id, &Token::new(), short, life).unwrap(), Got::Busy);
    assert_eq!(b.put(&id, b"b", life, Some(&tb)).unwrap(), W::Done);
    assert_eq!(c.get(&id, life).unwrap().as_deref(), Some(&b"b"[..]));
}

#[test]
fn ttl_over_30_days_is_sent_as_a_unix_time() {
    let (exp, flags) = exptime(Duration::from_secs(40 * 86400), false);
    assert!(exp > 1_600_000_000, "{exp}");
    assert_eq!(flags, 40 * 86400);
    assert_eq!(exptime(Duration::from_secs(1440), false), (1440, 1440));
    assert_eq!(exptime(Duration::from_secs(1440), true), (1440, 1440 | BOUND), "a bound session's mark beside its TTL");
    let o = opts(vec![tcp("SP_MEMCACHED_PORT1")]);
    let mut s = MemcachedStore::open(&o).unwrap();
    let id = sid("longlife");
    s.put(&id, b"v", Duration::from_secs(40 * 86400), None).unwrap();
    assert_eq!(s.get(&id, Duration::from_secs(40 * 86400)).unwrap().as_deref(), Some(&b"v"[..]));
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
    a.put(&id, b"v1", life, None).unwrap();
    let t = Token::new();
    let Acquire::Locked(Some(read)) = a.lock_and_load(&id, &t, Duration::from_secs(30), ex(life)).unwrap() else {
        panic!("locks and reads")
    };
    assert_eq!(read.data, b"v1");
    b.put(&id, b"other", life, None).unwrap();
    let now = b.load(&id, ex(life)).unwrap();
    assert_eq!(now.as_ref().map(|l| &l.data[..]), Some(&b"other"[..]));
    // As session.rs writes under the lock: expecting what it read.
    let w = a.save(&id, b"mine", Expect::read_as(Some(read.version)), Some(&t), ex(life)).unwrap();
    assert_eq!(w, Written::Conflict(now), "refused, with the session as stored now");
    assert_eq!(b.get(&id, life).unwrap().as_deref(), Some(&b"other"[..]));
    assert_eq!(b.lock(&id, &Token::new(), Duration::from_secs(30), life).unwrap(), Got::Locked(Some(b"other".to_vec())), "the refusal released the lock");
    // A new session is written with add: one created meanwhile is not overwritten either.
    let id2 = sid("stale2");
    assert_eq!(a.lock_and_load(&id2, &t, Duration::from_secs(30), ex(life)).unwrap(), Acquire::Locked(None));
    b.put(&id2, b"first", life, None).unwrap();
    let w = a.save(&id2, b"mine", Expect::read_as(None), Some(&t), ex(life)).unwrap();
    assert!(matches!(&w, Written::Conflict(Some(l)) if l.data == b"first"), "{w:?}");
    assert_eq!(b.get(&id2, life).unwrap().as_deref(), Some(&b"first"[..]));
}

#[test]
fn conformance_lock_with_session() {
    let o = MemcachedOptions { lock_with_session: true, ..opts(three()) };
    assert!(conformance(opener(o.clone())), "gc raced between its read and its delete");
    expiring_locks(opener(o));
}

/// lock_and_load, retried every millisecond for up to 1 s while the lock is busy (as a waiter does).
fn lock_within_1s(s: &mut MemcachedStore, id: &SessionId, t: &Token, expire: Duration, life: Duration) -> Got {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        match s.lock(id, t, expire, life).unwrap() {
            Got::Busy if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
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
        assert_eq!(a.lock(id, &ta, expire, life).unwrap(), Got::Locked(None));
        assert_eq!(a.put(id, format!("v{n}").as_bytes(), life, Some(&ta)).unwrap(), W::Done);
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
        assert_eq!(got, Got::Locked(Some(format!("v{n}").into_bytes())), "released, and the write is there");
        assert_eq!(b.put(id, b"b", life, Some(&tb)).unwrap(), W::Done);
        // a's next use of that connection reads the skipped answer first, then its own.
        assert_eq!(a.get(id, life).unwrap().as_deref(), Some(&b"b"[..]));
        // b's own release (sent without waiting, on b's connection) may likewise reach the lock's
        // server just after a's add.
        let t2 = Token::new();
        assert_eq!(lock_within_1s(&mut a, id, &t2, expire, life), Got::Locked(Some(b"b".to_vec())));
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
                assert!(matches!(s.lock(id, &t, expire, life).unwrap(), Got::Locked(_)), "{what}");
                let r = if lazy { s.tch(id, life, Some(&t)) } else { s.put(id, format!("v{n}").as_bytes(), life, Some(&t)) };
                assert_eq!(r.unwrap(), W::Done, "{what}");
            };
            // Connects, and asks each server its item size limit once.
            cycle(&mut s, 0, false);
            for lazy in [false, true] {
                let (before, counted) = (crate::net::round_trips(), s.round_trips());
                (1..=10).for_each(|n| cycle(&mut s, n, lazy));
                let per_cycle = (crate::net::round_trips() - before) as f64 / 10.0;
                assert_eq!(per_cycle, 2.0, "{what}, {}", if lazy { "touch" } else { "write" });
                // What the store reports (the metrics layer counts it) is what the socket saw.
                assert_eq!(s.round_trips() - counted, crate::net::round_trips() - before, "{what}: Store::round_trips");
            }
            assert_eq!(s.get(id, life).unwrap().as_deref(), Some(&b"v10"[..]));
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
            assert_eq!(a.lock(&id, &ta, expire, life).unwrap(), Got::Locked(None));
            assert_eq!(a.put(&id, b"v1", life, Some(&ta)).unwrap(), W::Done);
            settle(&mut a, &id);
            assert_eq!(a.lock(&id, &ta, expire, life).unwrap(), Got::Locked(Some(b"v1".to_vec())));
            let destroy = n == 2;
            let (aid, ata) = (id.clone(), ta.clone());
            b.between = Some(Box::new(move || {
                if destroy {
                    a.destroy(&aid, Some(&ata)).unwrap();
                } else {
                    assert_eq!(a.put(&aid, b"v2", life, Some(&ata)).unwrap(), W::Done);
                    settle(&mut a, &aid);
                }
            }));
            let tb = Token::new();
            let Acquire::Locked(got) = b.lock_and_load(&id, &tb, expire, ex(life)).unwrap() else { panic!("{id:?}: busy") };
            assert!(b.between.is_none(), "the interleaving was made");
            let want = if destroy { None } else { Some(b"v2".to_vec()) };
            assert_eq!(got.as_ref().map(|l| l.data.clone()), want, "replicas={replicas} {id:?}: B reads A's last write");
            // As session.rs writes under the lock: expecting the version read.
            let w = b.save(&id, b"v3", Expect::read_as(got.map(|l| l.version)), Some(&tb), ex(life)).unwrap();
            assert!(matches!(w, Written::Done(_)), "B's write is not refused: {w:?}");
            settle(&mut b, &id);
            assert_eq!(b.get(&id, life).unwrap().as_deref(), Some(&b"v3"[..]));
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
            assert_eq!(a.lock(&id, &t, expire, life).unwrap(), Got::Locked(None));
            assert_eq!(a.put(&id, b"v1", life, Some(&t)).unwrap(), W::Done);
            settle(&mut a, &id);
            for touch in [false, true] {
                let before = a.round_trips();
                let Acquire::Locked(Some(read)) = a.lock_and_load(&id, &t, expire, ex(life)).unwrap() else { panic!("{id:?}") };
                assert_eq!(read.data, b"v1");
                let saved = if touch {
                    a.tch(&id, life, Some(&t)).unwrap()
                } else {
                    match a.save(&id, b"v1", Expect::Version(read.version), Some(&t), ex(life)).unwrap() {
                        Written::Done(_) => W::Done,
                        other => panic!("{other:?}"),
                    }
                };
                assert_eq!(saved, W::Done);
                assert_eq!(a.round_trips() - before, 2, "{id:?} replicas={}: lock + read, then write (touch: {touch})", o.replicas);
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
        let e = s.get(&sid("x"), life).unwrap_err().to_string();
        assert!(e.contains("refused"), "probed, not skipped: {e}");
        let e = s.get(&sid("x"), life).unwrap_err().to_string();
        assert!(e.contains("skipped"), "within one request the server is not asked twice: {e}");
    }

    // Accepts (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let o = MemcachedOptions { timeout: Duration::from_millis(200), retry, ..opts(vec![ServerAddr::Tcp { host: "127.0.0.1".into(), port }]) };
    let mut s = MemcachedStore::open(&o).unwrap();
    let err = s.get(&sid("x"), life).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let e = err.to_string();
    assert!(e.contains("timeout"), "{e}");
    assert!(s.still_valid());
    let t = std::time::Instant::now();
    let e = s.get(&sid("x"), life).unwrap_err().to_string();
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
        assert_eq!(a.lock(&id, &ta, short, life).unwrap(), Got::Locked(None));
        std::thread::sleep(Duration::from_millis(1100));
        let (aid, ata) = (id.clone(), ta.clone());
        b.between_after = 1;
        b.between = Some(Box::new(move || {
            assert_eq!(a.put(&aid, b"late", life, Some(&ata)).unwrap(), W::Done);
            settle(&mut a, &aid);
        }));
        let tb = Token::new();
        let first = b.lock(&id, &tb, Duration::from_secs(30), life).unwrap();
        assert!(b.between.is_none(), "the take-over was attempted");
        assert_eq!(first, Got::Busy, "{id:?}: the swap of the lock A refreshed fails");
        assert_eq!(b.lock(&id, &tb, Duration::from_secs(30), life).unwrap(), Got::Locked(Some(b"late".to_vec())));
        assert_eq!(b.put(&id, b"b", life, Some(&tb)).unwrap(), W::Done);
    }
}

/// A lock item of php-memcached's (value `1`) that never expires does not block for ever: at first
/// sight its TTL is cut to lock_expire (+1 s, memcached's clock counts whole seconds), and the lock
/// is ours once memcached dropped it — between 1 and 2 s here, whichever handle asks (the first
/// sight is kept in the item, not in a handle: each attempt below uses a fresh one).
#[test]
fn a_foreign_lock_that_never_expires_is_dropped_after_lock_expire() {
    let life = Duration::from_secs(60);
    let o = opts(vec![tcp("SP_MEMCACHED_PORT1")]);
    let mut s = MemcachedStore::open(&o).unwrap();
    let id = sid("foreign");
    s.put(&id, b"kept", life, None).unwrap();
    let (ls, lkey) = (s.lock_server(&id), s.lock_key(&id));
    assert_eq!(s.one(ls, format!("ms {lkey} 1 T0"), Some(b"1")).unwrap(), Reply::Done(Flags::default()));
    let expire = Duration::from_secs(1);
    let t = Token::new();
    let seen = std::time::Instant::now();
    let Acquire::Busy(busy) = MemcachedStore::open(&o).unwrap().lock_and_load(&id, &t, expire, ex(life)).unwrap() else {
        panic!("php-memcached's lock excludes us")
    };
    assert!(busy.foreign && busy.expires_in == Some(Duration::from_secs(2)), "{busy:?}");
    let got = loop {
        match MemcachedStore::open(&o).unwrap().lock(&id, &t, expire, life).unwrap() {
            // 4 s: twice the longest the item can live (2 s), for a loaded machine.
            Got::Busy if seen.elapsed() < Duration::from_secs(4) => std::thread::sleep(Duration::from_millis(20)),
            other => break other,
        }
    };
    let waited = seen.elapsed();
    assert_eq!(got, Got::Locked(Some(b"kept".to_vec())), "after {waited:?}");
    assert!(waited >= expire, "not before lock_expire: {waited:?}");
    s.unlock(&id, &t).unwrap();
}

const CROSS_CHILDREN: usize = 4;
const CROSS_ROUNDS: usize = 5;

/// Issue 11: the expectation is checked by memcached in the write itself, so it holds across
/// processes (the transitional adapter checked it by a read under a process-wide mutex, which other
/// processes do not take). Four processes (this test binary run again as children) race, in each
/// round, an absent-expectation create of one session and then, all having read its version, a
/// write at that version: exactly one create and one write win, and each loser is told the winner's
/// data. Three servers, one replica.
#[test]
fn cas_holds_across_processes() {
    if let Ok(arg) = std::env::var("SP_MC_CAS_CHILD") {
        return cas_child(&arg);
    }
    let o = MemcachedOptions { replicas: 1, ..opts(three()) };
    let dir = crate::store::tests::TempDir::new("mc-cas");
    let children: Vec<std::process::Child> = (0..CROSS_CHILDREN)
        .map(|i| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "store::memcached::tests::cas_holds_across_processes", "--nocapture", "--test-threads=1"])
                .env("SP_MC_CAS_CHILD", format!("{i}|{}|{}", o.prefix, dir.path().display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let outputs: Vec<String> = children
        .into_iter()
        .map(|mut c| {
            while c.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "a child failed: {}", String::from_utf8_lossy(&out.stdout));
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    // Lines "CAS <round> <phase> <child> done|conflict <data>" (the first one after libtest's "test
    // <name> ... " on the same line).
    let lines: Vec<Vec<String>> = outputs
        .iter()
        .flat_map(|o| o.lines().filter_map(|l| l.split_once("CAS ").map(|x| x.1)).map(|l| l.splitn(5, ' ').map(String::from).collect()))
        .collect();
    let mut s = MemcachedStore::open(&o).unwrap();
    for round in 0..CROSS_ROUNDS {
        for phase in ["create", "write"] {
            let of: Vec<&Vec<String>> = lines.iter().filter(|l| l[0] == round.to_string() && l[1] == phase).collect();
            assert_eq!(of.len(), CROSS_CHILDREN, "round {round} {phase}: every child reported: {lines:?}");
            let winners: Vec<&&Vec<String>> = of.iter().filter(|l| l[3] == "done").collect();
            assert_eq!(winners.len(), 1, "round {round} {phase}: exactly one wins: {of:?}");
            let won = format!("{phase} by {}", winners[0][2]);
            for l in &of {
                assert!(l[3] == "done" || (l[3] == "conflict" && l[4] == won), "round {round} {phase}: a loser is told the winner's data: {l:?}");
            }
            if phase == "write" {
                assert_eq!(s.get(&sid(&format!("xproc{round}")), Duration::from_secs(60)).unwrap(), Some(won.into_bytes()));
            }
        }
        s.destroy(&sid(&format!("xproc{round}")), None).unwrap();
    }
}

/// One child of `cas_holds_across_processes`: `<index>|<prefix>|<barrier dir>`.
fn cas_child(arg: &str) {
    let mut parts = arg.splitn(3, '|');
    let (i, prefix, dir) = (parts.next().unwrap(), parts.next().unwrap(), std::path::PathBuf::from(parts.next().unwrap()));
    let o = MemcachedOptions { replicas: 1, prefix: prefix.to_string(), ..MemcachedOptions::new(three()) };
    let mut s = MemcachedStore::open(&o).unwrap();
    let e = ex(Duration::from_secs(60));
    // Every child gets here before any goes on (files in `dir`; 20 s at most).
    let barrier = |step: &str| {
        std::fs::write(dir.join(format!("{step}.{i}")), b"").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while (0..CROSS_CHILDREN).any(|c| !dir.join(format!("{step}.{c}")).exists()) {
            assert!(std::time::Instant::now() < deadline, "the other children did not come");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let report = |round: usize, phase: &str, w: Written| {
        let what = match w {
            Written::Done(_) => "done".to_string(),
            Written::Conflict(Some(now)) => format!("conflict {}", String::from_utf8_lossy(&now.data)),
            other => panic!("{other:?}"),
        };
        println!("CAS {round} {phase} {i} {what}");
    };
    for round in 0..CROSS_ROUNDS {
        let id = sid(&format!("xproc{round}"));
        barrier(&format!("{round}.create"));
        report(round, "create", s.save(&id, format!("create by {i}").as_bytes(), Expect::Absent, None, e).unwrap());
        barrier(&format!("{round}.read"));
        let read = s.load(&id, e).unwrap().expect("created").version;
        barrier(&format!("{round}.write"));
        report(round, "write", s.save(&id, format!("write by {i}").as_bytes(), Expect::Version(read), None, e).unwrap());
        barrier(&format!("{round}.done"));
    }
}

/// Issue 13, "rebuilt on loss": a user's index item lost behind the engine's back (evicted, flushed,
/// its server restarted) is rebuilt whole by the next `list` (a crawl of the sessions' `user.`
/// items), so sessions that had no request since the loss are listed and ended too; and by the next
/// request of each live session (the repair's CAS: 3 round trips more, on that request only). While
/// the index is intact a bound session's request costs what it did before it was bound (the probe
/// rides in the write's batch), and so does it after a rebuild (which recorded the item's epoch in
/// every found `user.` item); a list of a whole item crawls nothing.
#[test]
fn user_index_rebuilt_by_each_sessions_next_request() {
    use crate::store::users::User;
    for (tag, servers) in [("one", vec![tcp("SP_MEMCACHED_PORT1")]), ("three", three())] {
        let o = opts(servers);
        let n_servers = o.servers.len() as u64;
        let (mut a, mut b) = (MemcachedStore::open(&o).unwrap(), MemcachedStore::open(&o).unwrap());
        let e = ex(Duration::from_secs(3600));
        let alice = User::new(format!("alice-{tag}").as_bytes()).unwrap();
        let ids: Vec<SessionId> = (0..3).map(|i| SessionId::parse(format!("rebuilt{tag}{i}").as_bytes()).unwrap()).collect();
        // One request of each kind (locked, locking off, lazy_write's touch); its round trips.
        let cycle = |s: &mut MemcachedStore, sid: &SessionId| -> u64 {
            let before = s.round_trips();
            let t = Token::new();
            let Acquire::Locked(l) = s.lock_and_load(sid, &t, Duration::from_secs(30), e).unwrap() else { panic!("locks") };
            let w = s.save(sid, b"n|i:2;", Expect::Held(l.map(|l| l.version)), Some(&t), e).unwrap();
            assert!(matches!(w, Written::Done(_)), "{w:?}");
            let l = s.load(sid, e).unwrap();
            let w = s.save(sid, b"n|i:3;", Expect::Any, None, e).unwrap();
            assert!(l.is_some() && matches!(w, Written::Done(_)), "{w:?}");
            s.load(sid, e).unwrap();
            assert_eq!(s.touch(sid, None, e).unwrap(), Touched::Done);
            s.round_trips() - before
        };
        let mut unbound = Vec::new();
        // A handle's first write to a server asks its item size limit (stats settings): not part of a cycle.
        for sid in &ids {
            b.save(sid, b"n|i:1;", Expect::Any, None, e).unwrap();
        }
        for sid in &ids {
            a.save(sid, b"n|i:1;", Expect::Any, None, e).unwrap();
            cycle(&mut a, sid);
            unbound.push(cycle(&mut a, sid));
        }
        for sid in &ids {
            a.users().unwrap().bind(sid, Some(&alice), None, e).unwrap();
            cycle(&mut a, sid);
        }
        // A list and its round trips.
        let listed = |s: &mut MemcachedStore| {
            let before = s.round_trips();
            let n = s.users().unwrap().list(&alice, e).unwrap().len();
            (n, s.round_trips() - before)
        };
        // The item a binding made is not known whole: the first list crawls (a metadump per server).
        let (n, first) = listed(&mut b);
        assert_eq!(n, 3);
        assert!(first >= 2 + n_servers, "{tag}: the first list crawls: {first} round trips");
        assert_eq!(listed(&mut b), (3, 2), "{tag}: a whole item: the item, then the sessions, no crawl");
        for (i, sid) in ids.iter().enumerate() {
            assert_eq!(cycle(&mut a, sid), unbound[i], "{tag}: bound, index intact: no extra round trip");
        }
        let (key, s) = a.index_of(&alice).unwrap();
        // The index item goes, behind the engine's back, and no session has a request: the next list
        // rebuilds it whole (without it, logout-everywhere would miss them all).
        assert!(matches!(a.one(s, format!("md {key}"), None).unwrap(), Reply::Done(_)));
        let (n, rebuilt) = listed(&mut b);
        assert_eq!(n, 3, "{tag}: idle sessions are listed after the loss");
        assert!(rebuilt >= 2 + n_servers, "{tag}: by a crawl: {rebuilt} round trips");
        assert_eq!(listed(&mut b), (3, 2), "{tag}: whole again");
        for (i, sid) in ids.iter().enumerate() {
            assert_eq!(cycle(&mut a, sid), unbound[i], "{tag}: {i}: the rebuild recorded the new epoch: no repair");
        }
        // Lost again; this time a session's request comes first and puts its line back.
        assert!(matches!(a.one(s, format!("md {key}"), None).unwrap(), Reply::Done(_)));
        assert_eq!(cycle(&mut a, &ids[1]), unbound[1] + 3, "{tag}: the repair");
        // The repaired item is not known whole (the others are idle): the list crawls and finds them.
        let (n, rebuilt) = listed(&mut b);
        assert_eq!(n, 3, "{tag}: the idle ones are listed beside the repaired one");
        assert!(rebuilt >= 2 + n_servers, "{tag}: by a crawl: {rebuilt} round trips");
        for (i, sid) in ids.iter().enumerate() {
            assert_eq!(cycle(&mut b, sid), unbound[i], "{tag}: {i}: intact again (another handle): no extra round trip");
        }
        // Lost once more, and "log out everywhere" with no session's request before it reaches all.
        assert!(matches!(a.one(s, format!("md {key}"), None).unwrap(), Reply::Done(_)));
        let ended = b.users().unwrap().list(&alice, e).unwrap().into_iter().filter(|l| b.users().unwrap().end(&l.id, e).unwrap()).count();
        assert_eq!(ended, 3, "{tag}");
        for sid in &ids {
            assert_eq!(a.load(sid, e).unwrap(), None);
        }
        assert_eq!(listed(&mut b), (0, 1), "{tag}: nothing left, and the item says so: no crawl");
    }
}

/// Issue 13 with `replicas`: the index item, the sessions' `user.` items and the handles' secret
/// live on every copy the replicas give, so the death of the index item's first server loses no
/// listing: another handle that finds it dead (its address now refuses) lists every session from
/// the next copy without a crawl, with the same handles, and ends them all.
#[test]
fn user_index_survives_its_first_servers_death_with_replicas() {
    use crate::store::users::User;
    let o = MemcachedOptions { replicas: 1, ..opts(three()) };
    let mut a = MemcachedStore::open(&o).unwrap();
    let e = ex(Duration::from_secs(3600));
    let alice = User::new(b"alice-replicas").unwrap();
    let ids: Vec<SessionId> = (0..6).map(|i| sid(&format!("replidx{i}"))).collect();
    for id in &ids {
        a.save(id, b"n|i:1;", Expect::Any, None, e).unwrap();
        a.users().unwrap().bind(id, Some(&alice), None, e).unwrap();
    }
    let handles = |s: &mut MemcachedStore| {
        let secret = s.users().unwrap().secret().unwrap();
        let mut h: Vec<String> = s.users().unwrap().list(&alice, e).unwrap().iter().map(|l| crate::users::handle(&secret, &alice, &l.id)).collect();
        h.sort();
        h
    };
    let before = handles(&mut a);
    assert_eq!(before.len(), 6);
    let (key, copies) = a.index_copies(&alice).unwrap();
    assert_eq!(copies.len(), 2);
    for &c in &copies {
        assert!(matches!(a.one(c, format!("mg {key} v"), None).unwrap(), Reply::Value(..)), "the index item on {}", a.label(c));
    }
    for id in &ids {
        for c in a.data_targets(id) {
            assert!(matches!(a.one(c, format!("mg {} v", a.user_key(id)), None).unwrap(), Reply::Value(..)), "user. on {}", a.label(c));
        }
    }
    // The index's first server dies, as handle b sees it.
    let mut b = MemcachedStore::open(&o).unwrap();
    b.servers[copies[0]].addr = ServerAddr::Tcp { host: "127.0.0.1".into(), port: 1 };
    let rt = b.round_trips();
    assert_eq!(handles(&mut b), before, "every session listed, with the same handles");
    assert!(b.round_trips() - rt <= 4, "no crawl: {} round trips", b.round_trips() - rt);
    let ended = b.users().unwrap().list(&alice, e).unwrap().into_iter().filter(|l| b.users().unwrap().end(&l.id, e).unwrap()).count();
    assert_eq!(ended, 6);
    for id in &ids {
        assert_eq!(b.load(id, e).unwrap(), None);
    }
    for id in &ids {
        a.destroy(id, None).unwrap();
    }
}

/// Issue 13's note (a bound write costing 3 or 4 round trips with three servers): a session last
/// written without the lock (a regenerated id's first write) and only touched since had every
/// locked read made twice when its lock lives on another server, as no version item proved the
/// read current; a touch under the lock now records the CAS it found, so only the first locked
/// read after the unlocked write looks twice. And a small session's first write to a server no
/// longer asks that server's item size limit (memcached's is never below 1024 bytes).
#[test]
fn a_touched_session_is_not_read_twice_and_small_writes_ask_no_limit() {
    let life = Duration::from_secs(60);
    let e = ex(life);
    let o = opts(three());
    let mut s = MemcachedStore::open(&o).unwrap();
    let before = s.round_trips();
    s.save(&sid("nolimit"), b"n|i:1;", Expect::Any, None, e).unwrap();
    assert_eq!(s.round_trips() - before, 1, "a small write asks no item size limit");
    for id in split_ids(&s, "touched", 3) {
        s.save(&id, b"n|i:1;", Expect::Any, None, e).unwrap();
        let locked = |s: &mut MemcachedStore| {
            let t = Token::new();
            let before = s.round_trips();
            assert!(matches!(s.lock(&id, &t, Duration::from_secs(30), life).unwrap(), Got::Locked(Some(_))));
            let n = s.round_trips() - before;
            assert_eq!(s.tch(&id, life, Some(&t)).unwrap(), W::Done);
            settle(s, &id);
            n
        };
        assert_eq!(locked(&mut s), 2, "after the unlocked write: no version item, the read is made again");
        assert_eq!(locked(&mut s), 1, "after a locked touch: proven current by the version item");
        assert_eq!(locked(&mut s), 1);
    }
}

/// A memcached stand-in for `a_closing_store_reads_the_answers_to_its_unanswered_release`: answers
/// every meta command at once (locks and writes stored, reads missing), except a delete, which it
/// answers after `delay`. Returns its port and the command lines it received.
fn slow_delete_server(delay: Duration) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                let mut r = BufReader::new(c);
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let cmd = line.trim_end().to_string();
                    line.clear();
                    log.lock().unwrap().push(cmd.clone());
                    let f: Vec<&str> = cmd.split(' ').collect();
                    let answer: &[u8] = match f[0] {
                        "ms" => {
                            let mut data = vec![0; f[2].parse::<usize>().unwrap() + 2];
                            r.read_exact(&mut data).unwrap();
                            b"HD c7\r\n"
                        }
                        "mg" => b"EN\r\n",
                        "md" => {
                            std::thread::sleep(delay);
                            b"HD\r\n"
                        }
                        _ => b"ERROR\r\n",
                    };
                    if w.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// With the lock on another server than the session, a locked write's release (the version item's
/// update, then the lock's delete) is sent without waiting for its answer. A store that closes —
/// the process ends right after the request — must first read those answers: a waiter that finds
/// the holder's process gone breaks its lock at once, and if the release were still queued in the
/// server, the next holder would read the version item from before it and take a stale read of the
/// data for current (memcached_race_50.phpt lost increments that way under load). The stand-in
/// answers the delete 300 ms late: closing waits for it (without the drain it returns at once).
#[test]
fn a_closing_store_reads_the_answers_to_its_unanswered_release() {
    let delay = Duration::from_millis(300);
    let (p1, seen1) = slow_delete_server(delay);
    let (p2, seen2) = slow_delete_server(delay);
    let servers = vec![ServerAddr::Tcp { host: "127.0.0.1".into(), port: p1 }, ServerAddr::Tcp { host: "127.0.0.1".into(), port: p2 }];
    let o = MemcachedOptions { timeout: Duration::from_secs(5), ..opts(servers) };
    let life = Duration::from_secs(60);
    let mut a = MemcachedStore::open(&o).unwrap();
    let id = split_ids(&a, "drain", 1).remove(0);
    let t = Token::new();
    assert_eq!(a.lock(&id, &t, Duration::from_secs(30), life).unwrap(), Got::Locked(None));
    assert_eq!(a.put(&id, b"n|i:1;", life, Some(&t)).unwrap(), W::Done);
    let ls = a.lock_server(&id);
    assert_eq!(a.servers[ls].conn.as_ref().unwrap().unanswered(), 2, "the version update and the delete went unanswered");
    let closing = std::time::Instant::now();
    drop(a);
    let waited = closing.elapsed();
    let deletes = [seen1, seen2].iter().map(|s| s.lock().unwrap().iter().filter(|l| l.starts_with("md ")).count()).sum::<usize>();
    assert_eq!(deletes, 1, "the lock's delete reached the server");
    // Not a speed bound: the stand-in holds the answer for 300 ms, so a close that read it took as long.
    assert!(waited >= delay - Duration::from_millis(50), "closed after {waited:?}, before the release was answered");
}

/// memcached servers of a test's own, on unix sockets in a temporary directory: a flush, a restart
/// or a server made to evict would disturb the tests sharing the suite's servers. Stopped on drop.
struct Private {
    dir: crate::store::tests::TempDir,
    mem_mb: Vec<u32>,
    procs: Vec<Option<std::process::Child>>,
}

impl Private {
    /// One server per entry, with that much memory (MB; memcached's least is 2 with `-I 1m`). One
    /// of 2 MB runs memcached's plain LRU (`-o no_lru_maintainer`): its segmented LRU keeps an item
    /// read twice in a warm queue that items written once never push out, so which item an eviction
    /// takes would depend on its background thread's timing.
    fn start(mem_mb: &[u32]) -> Private {
        let mut p = Private { dir: crate::store::tests::TempDir::new("mcmark"), mem_mb: mem_mb.to_vec(), procs: Vec::new() };
        for i in 0..mem_mb.len() {
            p.procs.push(None);
            p.spawn(i);
        }
        p
    }

    fn sock(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("m{i}.sock"))
    }

    fn spawn(&mut self, i: usize) {
        let sock = self.sock(i);
        let _ = std::fs::remove_file(&sock);
        let mut cmd = std::process::Command::new("memcached");
        cmd.arg("-s").arg(&sock).args(["-U", "0", "-I", "1m", "-m", &self.mem_mb[i].to_string()]);
        if self.mem_mb[i] <= 2 {
            cmd.args(["-o", "no_lru_maintainer"]);
        }
        let uid = std::process::Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if uid.is_ok_and(|u| u == "0") {
            cmd.args(["-u", "root"]);
        }
        let child = cmd.stdout(std::process::Stdio::null()).spawn().expect("memcached is installed (scripts/deps.sh)");
        self.procs[i] = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(std::time::Instant::now() < deadline, "memcached on {} did not start", sock.display());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Server `i` stopped and started again: empty, another process.
    fn restart(&mut self, i: usize) {
        self.stop(i);
        self.spawn(i);
    }

    fn addrs(&self) -> Vec<ServerAddr> {
        (0..self.procs.len()).map(|i| ServerAddr::Unix(self.sock(i))).collect()
    }

    /// A text command's first answer line (`flush_all` → `OK`).
    fn text(&self, i: usize, cmd: &str) -> String {
        use std::io::{BufRead, Write};
        let mut c = std::os::unix::net::UnixStream::connect(self.sock(i)).unwrap();
        c.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(c).read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    /// One counter of server `i`'s `stats`.
    fn stat(&self, i: usize, name: &str) -> u64 {
        use std::io::{BufRead, Write};
        let mut c = std::os::unix::net::UnixStream::connect(self.sock(i)).unwrap();
        c.write_all(b"stats\r\n").unwrap();
        let want = format!("STAT {name} ");
        for l in std::io::BufReader::new(c).lines() {
            let l = l.unwrap();
            if let Some(v) = l.strip_prefix(&want) {
                return v.trim().parse().unwrap();
            }
            assert_ne!(l.trim_end(), "END", "no stat {name}");
        }
        unreachable!()
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.stop(i);
        }
    }
}

/// A list of `u` on `s`: (sessions listed, round trips, LRU crawler dumps).
fn listed_cost(s: &mut MemcachedStore, u: &crate::store::users::User, e: Expiry) -> (usize, u64, u64) {
    let (rt, dumps) = (s.round_trips(), s.dumps);
    let n = s.users().unwrap().list(u, e).unwrap().len();
    (n, s.round_trips() - rt, s.dumps - dumps)
}

/// Issue 13: a new user's first list crawls no server once the markers prove that none of the
/// index item's servers lost an item within the sessions' lifetime (mark.rs); before that (no
/// marker yet, or one younger than the lifetime + margin) it crawls, as does a list where one
/// copy's marker is gone. With and without replicas.
#[test]
fn a_new_users_list_crawls_only_until_the_markers_prove_no_loss() {
    use crate::store::users::User;
    let life = Duration::from_secs(3600);
    let e = ex(life);
    for replicas in [0u8, 1] {
        let p = Private::start(&[64, 64, 64]);
        let o = MemcachedOptions { replicas, ..opts(p.addrs()) };
        let mut s = MemcachedStore::open(&o).unwrap();
        let n = o.servers.len() as u64;
        let what = format!("replicas={replicas}");
        let user = |name: &str| User::new(format!("{name}-{replicas}").as_bytes()).unwrap();
        // No marker yet: a user never seen is crawled for (and the markers are written).
        assert_eq!(listed_cost(&mut s, &user("nobody0"), e).2, n, "{what}: no marker: crawls every server");
        // Every server's marker written now (a first check on each does it).
        let all: Vec<usize> = (0..o.servers.len()).collect();
        assert!(!s.no_loss_within(&all, life));
        // Written just now: younger than the lifetime, so an index lost before it cannot be ruled out.
        assert_eq!(listed_cost(&mut s, &user("nobody1"), e).2, n, "{what}: a young marker: crawls");
        for srv in 0..o.servers.len() {
            s.age_marker(srv, life.as_secs() as i64 + super::mark::MARGIN_SECS);
        }
        assert_eq!(listed_cost(&mut s, &user("nobody2"), e), (0, 2, 0), "{what}: old markers: the item, the markers' check; no crawl");
        // A new user with three sessions: the item a binding made is trusted, and sealed whole.
        let alice = user("alice");
        for i in 0..3 {
            let id = sid(&format!("mark{replicas}x{i}"));
            s.save(&id, b"n|i:1;", Expect::Any, None, e).unwrap();
            s.users().unwrap().bind(&id, Some(&alice), None, e).unwrap();
        }
        assert_eq!(listed_cost(&mut s, &alice, e), (3, 4, 0), "{what}: the item, the check, the seal, the sessions");
        assert_eq!(listed_cost(&mut s, &alice, e), (3, 2, 0), "{what}: sealed: the item, the sessions");
        // One copy's marker gone (its server flushed or restarted, as memcached drops it with the
        // items): unsure, so the crawl; the check wrote it again, young.
        let carol = user("carol");
        let id = sid(&format!("mark{replicas}c"));
        s.save(&id, b"n|i:1;", Expect::Any, None, e).unwrap();
        s.users().unwrap().bind(&id, Some(&carol), None, e).unwrap();
        let (key, copies) = s.index_copies(&carol).unwrap();
        let last = *copies.last().unwrap();
        assert!(matches!(s.one(last, format!("md {}", s.mark_key()), None).unwrap(), Reply::Done(_)));
        assert_eq!(listed_cost(&mut s, &carol, e).2, n, "{what}: a copy's marker gone: crawls");
        assert!(matches!(s.one(last, format!("mg {} v", s.mark_key()), None).unwrap(), Reply::Value(..)), "{what}: written again");
        assert!(matches!(s.one(copies[0], format!("mg {key} v"), None).unwrap(), Reply::Value(..)));
    }
}

/// Issue 13: after a restart, a flush_all or an eviction on the index item's server, the list
/// crawls and finds the idle sessions, even when the marker survived the loss (put back here as it
/// was, as a warm restart `-e` or a hot marker would keep it): the process, `cmd_flush` and
/// `evictions` tell. The sessions live on the other servers, so the loss takes only the index.
#[test]
fn after_a_restart_a_flush_or_an_eviction_the_list_crawls_and_finds_idle_sessions() {
    use crate::store::users::User;
    let life = Duration::from_secs(3600);
    let e = ex(life);
    // Server 0 small, so that filling it evicts.
    let mut p = Private::start(&[2, 64, 64]);
    let o = opts(p.addrs());
    let mut s = MemcachedStore::open(&o).unwrap();
    let n = o.servers.len() as u64;
    let alice = (0..100).map(|i| User::new(format!("alice{i}").as_bytes()).unwrap()).find(|u| s.index_of(u).unwrap().1 == 0).unwrap();
    let (ikey, _) = s.index_of(&alice).unwrap();
    let ids: Vec<SessionId> = (0..100).map(|i| sid(&format!("lossy{i}"))).filter(|id| s.data_targets(id)[0] != 0).take(3).collect();
    for id in &ids {
        s.save(id, b"n|i:1;", Expect::Any, None, e).unwrap();
        s.users().unwrap().bind(id, Some(&alice), None, e).unwrap();
    }
    let (listed, _, dumps) = listed_cost(&mut s, &alice, e);
    assert_eq!((listed, dumps), (3, n), "no marker yet: the first list crawls");
    let age = |s: &mut MemcachedStore| {
        // Every server's marker there (a first check on each writes it), then aged.
        s.no_loss_within(&[0, 1, 2], life);
        for srv in 0..3 {
            s.age_marker(srv, life.as_secs() as i64 + super::mark::MARGIN_SECS);
        }
    };
    let marker = |s: &mut MemcachedStore| match s.one(0, format!("mg {} v", s.mark_key()), None).unwrap() {
        Reply::Value(v, _) => v,
        other => panic!("no marker on server 0: {other:?}"),
    };
    for (k, loss) in ["restart", "flush_all", "eviction"].into_iter().enumerate() {
        age(&mut s);
        let nobody = User::new(format!("nobody{k}").as_bytes()).unwrap();
        assert_eq!(listed_cost(&mut s, &nobody, e), (0, 2, 0), "before the {loss}: the markers are trusted");
        let kept = marker(&mut s);
        match loss {
            "restart" => {
                p.restart(0);
                assert!(s.still_valid(), "the next request drops the dead connection");
            }
            "flush_all" => assert_eq!(p.text(0, "flush_all"), "OK"),
            _ => {
                let before = p.stat(0, "evictions");
                let mut i = 0;
                // Filler of many sizes (every small slab class), 20 000 items (~4 MB) between two
                // looks at the index item.
                let vals: Vec<Vec<u8>> = (0..1000).map(|j| vec![b'f'; 20 + (j * 37) % 400]).collect();
                while matches!(s.one(0, format!("mg {ikey} v"), None).unwrap(), Reply::Value(..)) {
                    assert!(i < 400_000, "the index item was not evicted");
                    for _ in 0..20 {
                        let reqs: Vec<Req> = vals.iter().enumerate().map(|(j, v)| (0, format!("ms fill{i}.{j} {} T0", v.len()), Some(v.as_slice()))).collect();
                        assert!(s.exec(&reqs).iter().all(|r| matches!(r, Ok(Reply::Done(_)))));
                        i += 1000;
                    }
                }
                assert!(p.stat(0, "evictions") > before, "evicted");
            }
        }
        assert_eq!(s.one(0, format!("mg {ikey} v"), None).unwrap(), Reply::Miss, "the {loss} took the index item");
        // The marker as it was before the loss.
        assert!(matches!(s.one(0, format!("ms {} {} T0", s.mark_key(), kept.len()), Some(&kept)).unwrap(), Reply::Done(_)));
        let (listed, _, dumps) = listed_cost(&mut s, &alice, e);
        assert_eq!((listed, dumps), (3, n), "after the {loss}: crawled, every idle session found");
        assert_eq!(listed_cost(&mut s, &alice, e), (3, 2, 0), "after the {loss}: whole again");
    }
    let ended = s.users().unwrap().list(&alice, e).unwrap().into_iter().filter(|l| s.users().unwrap().end(&l.id, e).unwrap()).count();
    assert_eq!(ended, 3);
}

/// Issue 13: PHP makes ids of up to 256 characters (session.sid_length), whose items' keys hash
/// the id (`SessionId::name_within`); the `user.` item then names the id in its value, so a crawl
/// after the index item's loss finds the session, and "log out everywhere" ends it.
#[test]
fn a_long_ids_binding_is_found_by_a_crawl() {
    use crate::store::users::User;
    let e = ex(Duration::from_secs(3600));
    let o = opts(vec![tcp("SP_MEMCACHED_PORT1")]);
    let mut s = MemcachedStore::open(&o).unwrap();
    let alice = User::new(b"alice-long").unwrap();
    let long = sid(&format!("{}{}", Token::new().as_str(), "L".repeat(256 - Token::new().as_str().len())));
    assert_eq!(long.as_str().len(), 256);
    assert_ne!(s.name(&long), long.as_str(), "its keys hash it");
    let short = sid(&format!("short{}", Token::new().as_str()));
    for id in [&long, &short] {
        s.save(id, b"n|i:1;", Expect::Any, None, e).unwrap();
        s.users().unwrap().bind(id, Some(&alice), None, e).unwrap();
    }
    let (key, srv) = s.index_of(&alice).unwrap();
    assert!(matches!(s.one(srv, format!("md {key}"), None).unwrap(), Reply::Done(_)));
    let mut b = MemcachedStore::open(&o).unwrap();
    let (n, _, dumps) = listed_cost(&mut b, &alice, e);
    assert!(dumps > 0, "crawled (the marker is young)");
    assert_eq!(n, 2, "both found, the long id too");
    let listed = b.users().unwrap().list(&alice, e).unwrap();
    assert!(listed.iter().any(|l| l.id == long));
    let ended = listed.into_iter().filter(|l| b.users().unwrap().end(&l.id, e).unwrap()).count();
    assert_eq!(ended, 2);
    assert_eq!(s.load(&long, e).unwrap(), None, "the long id's session is ended");
}

/// Issue 13: a session's `user.` item evicted (deleted here, as an eviction would) while its idle
/// session item lives. The session item carries the `BOUND` mark, so its next read finds the binding
/// lost: the session is absent (to a plain read, a locked one, `exists` and `bound`) and removed from
/// every copy — by that read, or already by a list that found it so (php-memcached, which ignores
/// the mark, must not serve it either) — so a "log out everywhere", which no longer finds it, misses
/// nothing that can be used again. The user's other sessions stay listed and readable. An unbinding clears the mark first
/// (the session stays, unbound), a write of a bound session keeps it, and a bound session written
/// without it (by a build before it, or php-memcached) gets it with its next touch.
#[test]
fn an_evicted_user_item_ends_its_session() {
    use crate::store::users::User;
    let e = ex(Duration::from_secs(3600));
    let o = MemcachedOptions { replicas: 1, ..opts(three()) };
    let mut a = MemcachedStore::open(&o).unwrap();
    let alice = User::new(b"alice-evicted").unwrap();
    let ids = [sid("evicted1"), sid("evicted2"), sid("evicted3"), sid("evicted4")];
    let flags_of = |s: &mut MemcachedStore, id: &SessionId| -> Vec<Option<u32>> {
        let key = s.key(id).unwrap();
        s.data_targets(id)
            .into_iter()
            .map(|t| match s.one(t, format!("mg {key} f"), None).unwrap() {
                Reply::Done(f) => f.client_flags,
                _ => None,
            })
            .collect()
    };
    let n = a.data_targets(&ids[0]).len();
    assert_eq!(n, 2, "a replica each");
    for id in &ids {
        a.save(id, b"n|i:1;", Expect::Any, None, e).unwrap();
        assert_eq!(flags_of(&mut a, id), vec![Some(3600); n], "unbound: no mark");
        a.users().unwrap().bind(id, Some(&alice), None, e).unwrap();
        assert_eq!(flags_of(&mut a, id), vec![Some(3600 | BOUND); n], "bound: marked on every copy");
    }
    // A bound session's write keeps the mark (its read found it bound).
    let mut b = MemcachedStore::open(&o).unwrap();
    assert!(b.load(&ids[1], e).unwrap().is_some());
    assert!(matches!(b.save(&ids[1], b"n|i:2;", Expect::Any, None, e).unwrap(), Written::Done(_)));
    assert_eq!(flags_of(&mut b, &ids[1]), vec![Some(3600 | BOUND); n]);
    assert_eq!(a.users().unwrap().list(&alice, e).unwrap().len(), 4);

    // ids[0]: its `user.` item evicted on every copy.
    let ukey = a.user_key(&ids[0]);
    for s in a.data_targets(&ids[0]) {
        assert!(matches!(a.one(s, format!("md {ukey}"), None).unwrap(), Reply::Done(_)));
    }
    let listed: Vec<SessionId> = b.users().unwrap().list(&alice, e).unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(listed, [ids[1].clone(), ids[2].clone(), ids[3].clone()], "the lost binding's session is not listed");
    let mut c = MemcachedStore::open(&o).unwrap();
    assert!(c.still_valid());
    assert_eq!(flags_of(&mut c, &ids[0]), vec![None; n], "the list removed it from every copy (php-memcached ignores the mark)");
    assert_eq!(c.load(&ids[0], e).unwrap(), None, "its binding lost: the session is ended");
    assert!(!c.exists(&ids[0], e).unwrap());
    assert_eq!(c.users().unwrap().bound(&ids[0], e).unwrap(), None, "a regenerate carries nothing");
    assert!(c.load(&ids[1], e).unwrap().is_some(), "the user's other sessions live");

    // The same found by a locked read, as a request with locking on reads.
    let ukey = a.user_key(&ids[2]);
    for s in a.data_targets(&ids[2]) {
        a.one(s, format!("md {ukey}"), None).unwrap();
    }
    let t = Token::new();
    let mut d = MemcachedStore::open(&o).unwrap();
    assert!(matches!(d.lock_and_load(&ids[2], &t, Duration::from_secs(30), e).unwrap(), Acquire::Locked(None)));
    d.unlock(&ids[2], &t).unwrap();
    assert_eq!(flags_of(&mut d, &ids[2]), vec![None; n]);

    // And by a plain read (locking off), with no list before it.
    let ukey = a.user_key(&ids[3]);
    for s in a.data_targets(&ids[3]) {
        a.one(s, format!("md {ukey}"), None).unwrap();
    }
    let mut p = MemcachedStore::open(&o).unwrap();
    assert_eq!(p.load(&ids[3], e).unwrap(), None, "its binding lost: the session is ended");
    assert_eq!(flags_of(&mut p, &ids[3]), vec![None; n], "and removed from every copy");
    assert!(!p.exists(&ids[3], e).unwrap());

    // Unbinding clears the mark first: the session stays, unbound, and reads after its `user.` item is gone.
    let mut f = MemcachedStore::open(&o).unwrap();
    assert!(f.load(&ids[1], e).unwrap().is_some());
    f.users().unwrap().bind(&ids[1], None, None, e).unwrap();
    assert_eq!(flags_of(&mut f, &ids[1]), vec![Some(3600); n], "unbound: the mark is cleared");
    let mut g = MemcachedStore::open(&o).unwrap();
    assert_eq!(g.load(&ids[1], e).unwrap().map(|l| l.data), Some(b"n|i:2;".to_vec()));

    // A bound session written without the mark (an older build, php-memcached's flags 0): its next
    // touch marks it, and from then on a lost binding ends it.
    g.users().unwrap().bind(&ids[1], Some(&alice), None, e).unwrap();
    let key = g.key(&ids[1]).unwrap();
    for s in g.data_targets(&ids[1]) {
        assert!(matches!(g.one(s, format!("ms {key} 6 T3600 F0"), Some(b"n|i:3;")).unwrap(), Reply::Done(_)));
    }
    let mut h = MemcachedStore::open(&o).unwrap();
    assert!(h.load(&ids[1], e).unwrap().is_some(), "unmarked, with its binding: read as it is");
    assert_eq!(h.touch(&ids[1], None, e).unwrap(), Touched::Done);
    assert_eq!(flags_of(&mut h, &ids[1]), vec![Some(3600 | BOUND); n], "marked by the touch");
    assert_eq!(h.load(&ids[1], e).unwrap().map(|l| l.data), Some(b"n|i:3;".to_vec()), "the value kept");
    for id in &ids {
        h.destroy(id, None).unwrap();
    }
}

/// A rebuilt index entry keeps the time its session was bound (the `user.` record says it), not the
/// rebuild's: `user_sessions`' "created" is the same before and after the user's index item was lost.
#[test]
fn a_rebuilt_entry_keeps_its_binding_time() {
    use crate::store::users::User;
    let e = ex(Duration::from_secs(3600));
    let o = opts(three());
    let mut a = MemcachedStore::open(&o).unwrap();
    let bob = User::new(b"bob-rebuilt-time").unwrap();
    let ids = [sid("boundat1"), sid("boundat2")];
    for id in &ids {
        a.save(id, b"n|i:1;", Expect::Any, None, e).unwrap();
        a.users().unwrap().bind(id, Some(&bob), None, e).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let before: Vec<(SessionId, f64)> = a.users().unwrap().list(&bob, e).unwrap().into_iter().map(|l| (l.id, l.created)).collect();
    assert_eq!(before.len(), 2);
    std::thread::sleep(Duration::from_millis(50));
    let (key, copies) = a.index_copies(&bob).unwrap();
    for s in copies {
        a.one(s, format!("md {key}"), None).unwrap();
    }
    let dumps = a.dumps;
    let after: Vec<(SessionId, f64)> = a.users().unwrap().list(&bob, e).unwrap().into_iter().map(|l| (l.id, l.created)).collect();
    assert!(a.dumps > dumps, "the list rebuilt the lost item by a crawl");
    assert_eq!(after.len(), 2, "{after:?}");
    for ((i0, t0), (i1, t1)) in before.iter().zip(&after) {
        assert_eq!(i0, i1);
        assert!((t0 - t1).abs() < 0.002, "created {t0} before the loss, {t1} after the rebuild");
    }
    for id in &ids {
        a.destroy(id, None).unwrap();
    }
}
