//! The WATCH/transaction hot path (watch.rs) and the wake-up only for registered waiters, against
//! the live redis-server of scripts/services/redis.sh (SP_REDIS_PORT).

use std::time::{Duration, Instant};

use super::dsn::{self, RedisOptions};
use super::RedisStore;
use crate::id::SessionId;
use crate::lock::Token;
use crate::store::tests::{conformance_ttl, Got, W};
use crate::store::{Acquire, Busy, Event, Expect, Expiry, Loaded, Pooled, Store, Touched, Written};

const LIFE: Duration = Duration::from_secs(3600);

fn port() -> u16 {
    std::env::var("SP_REDIS_PORT").ok().and_then(|p| p.parse().ok()).expect("SP_REDIS_PORT is not set: run the tests with `make test`")
}

fn opts() -> RedisOptions {
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    dsn::parse(&format!("redis://127.0.0.1:{}/0?prefix={prefix}", port())).unwrap()
}

fn id(s: &str) -> SessionId {
    SessionId::parse(s.as_bytes()).unwrap()
}

fn ex() -> Expiry {
    Expiry::new(LIFE)
}

fn raw() -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}/0", port())).unwrap().get_connection().unwrap()
}

fn put(s: &mut RedisStore, sid: &SessionId, d: &[u8], ttl: Duration, owner: Option<&Token>) -> W {
    match s.save(sid, d, Expect::Any, owner, Expiry::new(ttl)).unwrap() {
        Written::Done(_) => W::Done,
        Written::LockLost => W::LockLost,
        Written::Conflict(_) => W::Conflict,
    }
}

fn get(s: &mut RedisStore, sid: &SessionId) -> Option<Vec<u8>> {
    s.load(sid, ex()).unwrap().map(|l| l.data)
}

fn lock(s: &mut RedisStore, sid: &SessionId, t: &Token, expire: Duration) -> Got {
    match s.lock_and_load(sid, t, expire, ex()).unwrap() {
        Acquire::Locked(l) => Got::Locked(l.map(|l| l.data)),
        Acquire::Busy(_) => Got::Busy,
    }
}

fn tch(s: &mut RedisStore, sid: &SessionId, ttl: Duration, owner: Option<&Token>) -> W {
    match s.touch(sid, owner, Expiry::new(ttl)).unwrap() {
        Touched::Done => W::Done,
        Touched::LockLost => W::LockLost,
    }
}

fn exists(r: &mut redis::Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(r).unwrap() == 1
}

/// A Redis store whose every read is an optimistic one (`Event::OptimisticRead` first), so that the
/// conformance suite runs its CAS writes through the WATCHed transactions.
struct Optimistic(RedisStore);

impl Pooled for Optimistic {}

impl Store for Optimistic {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn load(&mut self, id: &SessionId, exp: Expiry) -> crate::store::Result<Option<Loaded>> {
        self.0.event(&Event::OptimisticRead);
        self.0.load(id, exp)
    }
    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> crate::store::Result<Acquire> {
        self.0.lock_and_load(id, owner, lock_expire, exp)
    }
    fn wait_for_release(&mut self, id: &SessionId, busy: &Busy, deadline: Instant, attempt: u32) -> crate::store::Result<()> {
        self.0.wait_for_release(id, busy, deadline, attempt)
    }
    fn lock_holder(&mut self, id: &SessionId) -> crate::store::Result<Option<Token>> {
        self.0.lock_holder(id)
    }
    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> crate::store::Result<Written> {
        self.0.save(id, data, expect, owner, exp)
    }
    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> crate::store::Result<Touched> {
        self.0.touch(id, owner, exp)
    }
    fn unlock(&mut self, id: &SessionId, owner: &Token) -> crate::store::Result<()> {
        self.0.unlock(id, owner)
    }
    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> crate::store::Result<()> {
        self.0.destroy(id, owner)
    }
    fn exists(&mut self, id: &SessionId, exp: Expiry) -> crate::store::Result<bool> {
        self.0.exists(id, exp)
    }
}

#[test]
fn conformance_with_optimistic_reads() {
    let o = opts();
    conformance_ttl(|| Box::new(Optimistic(RedisStore::open(&o).unwrap())));
}

/// An optimistic read WATCHes the session; the write at its version is a transaction (no script),
/// refused when another request wrote in between, with what is stored now, after which the write
/// at the new version goes through as a transaction again.
#[test]
fn optimistic_write_is_a_transaction_on_the_watched_read() {
    let o = opts();
    let (mut a, mut b) = (RedisStore::open(&o).unwrap(), RedisStore::open(&o).unwrap());
    let sid = id("watched");
    let Written::Done(v1) = b.save(&sid, b"v1", Expect::Absent, None, ex()).unwrap() else { panic!("created") };
    a.event(&Event::OptimisticRead);
    let read = a.load(&sid, ex()).unwrap().unwrap();
    assert_eq!(read.version, v1);
    assert!(a.watch.is_some() && a.conns[0].watching, "the optimistic read WATCHes the session");
    let Written::Done(v2) = b.save(&sid, b"v2", Expect::Version(v1), None, ex()).unwrap() else { panic!("b writes") };
    let Written::Conflict(Some(now)) = a.save(&sid, b"stale", Expect::Version(v1), None, ex()).unwrap() else {
        panic!("a write at the version read before b's write is refused")
    };
    assert_eq!(now, Loaded { data: b"v2".to_vec(), version: v2 });
    // The conflict's read WATCHed again: the write at the new version is a transaction.
    assert!(a.watch.is_some(), "the conflict's read WATCHes the session again");
    let Written::Done(v3) = a.save(&sid, b"merged", Expect::Version(v2), None, ex()).unwrap() else { panic!("a writes") };
    assert!(a.watch.is_none() && !a.conns[0].watching, "the EXEC ended the WATCH");
    assert_eq!(b.load(&sid, ex()).unwrap(), Some(Loaded { data: b"merged".to_vec(), version: v3 }));
    // A session created after an optimistic read that found none: the create is refused.
    let fresh = id("watchedabsent");
    a.event(&Event::OptimisticRead);
    assert_eq!(a.load(&fresh, ex()).unwrap(), None);
    let Written::Done(_) = b.save(&fresh, b"first", Expect::Absent, None, ex()).unwrap() else { panic!("b creates") };
    let Written::Conflict(Some(now)) = a.save(&fresh, b"second", Expect::Absent, None, ex()).unwrap() else { panic!("refused") };
    assert_eq!(now.data, b"first");
}

/// The WATCH an optimistic read or a lock leaves on the link is never applied to another write: a
/// locking-off write or touch by the same store (the next request of a pooled worker) goes through
/// though the watched keys changed since.
#[test]
fn a_watch_never_spoils_another_write() {
    let o = opts();
    let (mut a, mut b) = (RedisStore::open(&o).unwrap(), RedisStore::open(&o).unwrap());
    let sid = id("unwatch");
    put(&mut b, &sid, b"v1", LIFE, None);
    // An optimistic read that is never written (a request that changed nothing, then ended).
    a.event(&Event::OptimisticRead);
    a.load(&sid, ex()).unwrap();
    put(&mut b, &sid, b"v2", LIFE, None);
    assert_eq!(put(&mut a, &sid, b"off", LIFE, None), W::Done, "a locking-off write after it");
    assert_eq!(get(&mut b, &sid).as_deref(), Some(&b"off"[..]));
    a.event(&Event::OptimisticRead);
    a.load(&sid, ex()).unwrap();
    put(&mut b, &sid, b"v3", Duration::from_secs(50), None);
    assert_eq!(tch(&mut a, &sid, LIFE, None), W::Done);
    let pttl: i64 = redis::cmd("PTTL").arg(format!("{}unwatch", o.nodes[0].prefix)).query(&mut raw()).unwrap();
    assert!(pttl > 3_000_000, "the touch after it was applied: {pttl}");
    // A lock taken (WATCHed), then broken by another request: a later locking-off write of the
    // same store still goes through.
    let t = Token::new();
    assert!(matches!(lock(&mut a, &sid, &t, Duration::from_secs(30)), Got::Locked(_)));
    b.unlock(&sid, &t).unwrap();
    assert_eq!(put(&mut a, &sid, b"after", LIFE, None), W::Done);
    assert_eq!(get(&mut b, &sid).as_deref(), Some(&b"after"[..]));
}

/// A WATCH counts only on the link it was sent on: after the link was lost and replaced, a write at
/// the version read is checked by the script (a transaction on the new link would check nothing),
/// so another request's write in between is not overwritten. The same for a lock.
#[test]
fn a_watch_counts_only_on_its_link() {
    let o = opts();
    let (mut a, mut b) = (RedisStore::open(&o).unwrap(), RedisStore::open(&o).unwrap());
    let mut r = raw();
    let sid = id("relink");
    let Written::Done(v1) = b.save(&sid, b"v1", Expect::Any, None, ex()).unwrap() else { panic!("written") };
    a.event(&Event::OptimisticRead);
    assert_eq!(a.load(&sid, ex()).unwrap().map(|l| l.version), Some(v1));
    kill(&mut a, &mut r);
    put(&mut b, &sid, b"v2", LIFE, None);
    // A retried read finds the link gone and makes a new one.
    assert!(a.exists(&sid, ex()).unwrap());
    let w = a.save(&sid, b"stale", Expect::Version(v1), None, ex()).unwrap();
    assert!(matches!(&w, Written::Conflict(Some(now)) if now.data == b"v2"), "{w:?}");
    // A lock whose link was replaced, and which expired and was taken by another request meanwhile.
    let (ta, tb) = (Token::new(), Token::new());
    assert!(matches!(lock(&mut a, &sid, &ta, Duration::from_millis(300)), Got::Locked(_)));
    kill(&mut a, &mut r);
    std::thread::sleep(Duration::from_millis(400));
    assert!(matches!(lock(&mut b, &sid, &tb, Duration::from_secs(30)), Got::Locked(_)));
    assert!(a.exists(&sid, ex()).unwrap());
    assert_eq!(put(&mut a, &sid, b"late", LIFE, Some(&ta)), W::LockLost);
    assert_eq!(put(&mut b, &sid, b"holder", LIFE, Some(&tb)), W::Done);
}

/// Kills `s`'s own connection from the server side (only its: other tests run in parallel).
fn kill(s: &mut RedisStore, r: &mut redis::Connection) {
    let cid: i64 = s.simple(0, &[b"CLIENT", b"ID"]).unwrap();
    let _: redis::Value = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(cid).query(r).unwrap();
}

/// A release pushes no wake-up when nobody waits: after locked cycles (write, touch, unlock) neither
/// the wake-up list nor the waiters' list exists.
#[test]
fn no_wake_up_when_nobody_waits() {
    let o = opts();
    let prefix = o.nodes[0].prefix.clone();
    let mut s = RedisStore::open(&o).unwrap();
    let mut r = raw();
    let sid = id("nowake");
    let t = Token::new();
    let lexp = Duration::from_secs(30);
    assert!(matches!(lock(&mut s, &sid, &t, lexp), Got::Locked(_)));
    assert_eq!(put(&mut s, &sid, b"x", LIFE, Some(&t)), W::Done);
    assert!(matches!(lock(&mut s, &sid, &t, lexp), Got::Locked(_)));
    assert_eq!(tch(&mut s, &sid, LIFE, Some(&t)), W::Done);
    assert!(matches!(lock(&mut s, &sid, &t, lexp), Got::Locked(_)));
    s.unlock(&sid, &t).unwrap();
    // The scripts' releases (no WATCH on the lock: another link took it).
    assert!(matches!(lock(&mut s, &sid, &t, lexp), Got::Locked(_)));
    s.watch = None;
    assert_eq!(put(&mut s, &sid, b"y", LIFE, Some(&t)), W::Done);
    for k in ["nowake_WAKE", "nowake_WAIT", "nowake_LOCK"] {
        assert!(!exists(&mut r, &format!("{prefix}{k}")), "{k} exists after releases nobody waited for");
    }
}

/// Every waiter of a queue is woken by the release before its turn, not by its block running out:
/// three requests wait on one lock, each holder keeps it 300 ms. The blocks last 500 ms
/// (`MAX_BLOCK`), so a waiter that no release woke would be late by up to that.
/// Bound: the hand-over latency (release to the next holder's lock), measured on the loaded 2-core
/// test machine (load 8-10 from five other helpers' builds and tests, plus a busy-loop burner of our
/// own), 20 runs = 60 hand-overs: worst 19.9 ms, most under 1 ms; set at 150 ms, 7.5x that worst and
/// well under the 500 ms a missed wake-up can cost.
#[test]
fn every_waiter_of_a_queue_is_woken_by_a_release() {
    let o = opts();
    let sid = id("queue");
    let lexp = Duration::from_secs(30);
    let mut first = RedisStore::open(&o).unwrap();
    let t0 = Token::new();
    assert!(matches!(lock(&mut first, &sid, &t0, lexp), Got::Locked(_)));
    let hold = Duration::from_millis(300);
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let o = o.clone();
            std::thread::spawn(move || {
                let mut s = RedisStore::open(&o).unwrap();
                let t = Token::new();
                let sid = id("queue");
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut attempt = 0;
                loop {
                    match s.lock_and_load(&sid, &t, lexp, ex()).unwrap() {
                        Acquire::Locked(_) => break,
                        Acquire::Busy(busy) => {
                            s.wait_for_release(&sid, &busy, deadline, attempt).unwrap();
                            attempt += 1;
                        }
                    }
                }
                let got = Instant::now();
                std::thread::sleep(hold);
                let released = Instant::now();
                assert_eq!(put(&mut s, &sid, format!("w{i}").as_bytes(), LIFE, Some(&t)), W::Done);
                (got, released)
            })
        })
        .collect();
    // Early in the waiters' first block: a release that woke nobody would cost ~400 ms here.
    std::thread::sleep(Duration::from_millis(100));
    let released = Instant::now();
    assert_eq!(put(&mut first, &sid, b"first", LIFE, Some(&t0)), W::Done);
    let mut turns: Vec<(Instant, Instant)> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    turns.sort();
    let mut prev = released;
    for (i, (got, rel)) in turns.iter().enumerate() {
        let late = got.saturating_duration_since(prev);
        eprintln!("hand-over {i}: {late:?}");
        assert!(late < Duration::from_millis(150), "waiter {i} took the lock {late:?} after the release before it");
        prev = *rel;
    }
}

/// The hand-written RESP encoding is redis-rs' own, byte for byte (lengths of 0, 1, 2 and 5 digits).
#[test]
fn commands_are_packed_as_redis_rs_packs_them() {
    let big = vec![b'x'; 12345];
    let args: [&[u8]; 4] = [b"SET", b"", &big, b"0123456789"];
    let mut buf = Vec::new();
    super::pack_more(&mut buf, &args);
    let mut c = redis::cmd("SET");
    c.arg(&b""[..]).arg(&big[..]).arg(&b"0123456789"[..]);
    assert_eq!(buf, c.get_packed_command());
}
