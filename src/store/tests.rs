//! Behaviour every engine must show, run against each engine's `Store`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Acquire, Expect, Expiry, Loaded, Store, Touched, Version, Written};
use crate::id::SessionId;
use crate::lock::Token;

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("sp-test-{tag}-{}-{}", std::process::id(), Token::new().as_str()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const LIFE: Duration = Duration::from_secs(3600);

pub fn id(s: &str) -> SessionId {
    SessionId::parse(s.as_bytes()).unwrap()
}

fn ex(d: Duration) -> Expiry {
    Expiry::new(d)
}

/// What the suite asserts on a lock attempt: the data read under it, or busy.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    Locked(Option<Vec<u8>>),
    Busy,
}

/// What the suite asserts on a write or a touch.
#[derive(Debug, PartialEq, Eq)]
pub enum W {
    Done,
    LockLost,
    Conflict,
}

/// The contract's calls as the behaviour tests below use them: data without versions, writes that
/// expect anything, and the same expiry for writer and reader unless a test says otherwise.
pub trait Ops {
    fn put(&mut self, s: &SessionId, d: &[u8], ttl: Duration, owner: Option<&Token>) -> super::Result<W>;
    fn get(&mut self, s: &SessionId, life: Duration) -> super::Result<Option<Vec<u8>>>;
    fn lock(&mut self, s: &SessionId, t: &Token, expire: Duration, life: Duration) -> super::Result<Got>;
    fn tch(&mut self, s: &SessionId, ttl: Duration, owner: Option<&Token>) -> super::Result<W>;
    fn has(&mut self, s: &SessionId, life: Duration) -> super::Result<bool>;
}

impl Ops for Box<dyn Store> {
    fn put(&mut self, s: &SessionId, d: &[u8], ttl: Duration, owner: Option<&Token>) -> super::Result<W> {
        Ok(match self.save(s, d, Expect::Any, owner, ex(ttl))? {
            Written::Done(_) => W::Done,
            Written::LockLost => W::LockLost,
            Written::Conflict(_) => W::Conflict,
        })
    }
    fn get(&mut self, s: &SessionId, life: Duration) -> super::Result<Option<Vec<u8>>> {
        Ok(self.load(s, ex(life))?.map(|l| l.data))
    }
    fn lock(&mut self, s: &SessionId, t: &Token, expire: Duration, life: Duration) -> super::Result<Got> {
        Ok(match self.lock_and_load(s, t, expire, ex(life))? {
            Acquire::Locked(l) => Got::Locked(l.map(|l| l.data)),
            Acquire::Busy(_) => Got::Busy,
        })
    }
    fn tch(&mut self, s: &SessionId, ttl: Duration, owner: Option<&Token>) -> super::Result<W> {
        Ok(match self.touch(s, owner, ex(ttl))? {
            Touched::Done => W::Done,
            Touched::LockLost => W::LockLost,
        })
    }
    fn has(&mut self, s: &SessionId, life: Duration) -> super::Result<bool> {
        self.exists(s, ex(life))
    }
}

/// `open` gives a fresh handle on the same storage each call (two handles = two requests).
/// For engines that judge expiry by age against the `max_lifetime` of the reader (SQLite, files).
/// Returns whether gc has a window between reading a session as idle and deleting it, which the
/// suite raced with a rewrite (the engine's test asserts its own answer).
pub fn conformance(open: impl Fn() -> Box<dyn Store>) -> bool {
    conformance_with(open, Handover::Immediate)
}

/// `conformance` for a store that sends a write's lock release without waiting for its answer
/// (Memcached with the lock on another server than the session): another client may find the lock
/// still held for a moment after `save`/`touch` returned, and must get it within a second.
pub fn conformance_deferred_release(open: impl Fn() -> Box<dyn Store>) -> bool {
    conformance_with(open, Handover::Prompt)
}

/// How soon another client gets a lock released by a write (`save`/`touch` with the owner's token).
#[derive(Clone, Copy)]
enum Handover {
    /// At once: the release is done when the write returns.
    Immediate,
    /// Within a second: the release may still be on its way to the server.
    Prompt,
}

/// `s.lock_and_load` right after another client's write released the lock.
fn lock_handed_over(s: &mut Box<dyn Store>, sid: &SessionId, t: &Token, exp: Duration, handover: Handover) -> Got {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let got = s.lock(sid, t, exp, LIFE).unwrap();
        match (handover, &got) {
            (Handover::Prompt, Got::Busy) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => return got,
        }
    }
}

fn conformance_with(open: impl Fn() -> Box<dyn Store>, handover: Handover) -> bool {
    versions(&open);
    let (mut a, mut b) = conformance_common(&open, handover);
    let ttl = LIFE;
    let mut c = open();
    let exp = Duration::from_secs(30);

    // gc removes idle sessions and nothing else. Ages are judged in whole seconds on Memcached (item
    // age = written TTL - remaining TTL), so a session counts as idle 2 s after its write (a fresh one
    // may already read 1 s old) and the idle ones are written 2.1 s before gc runs.
    let age = Duration::from_secs(2);
    let (s4, idle, raced, old_held, old_lock) = (id("conf4"), id("gcidle"), id("gcraced"), id("gcoldheld"), id("gcoldlock"));
    let (fresh, fresh_lock) = (id("gcfresh"), id("gcfreshlock"));
    a.put(&s4, b"old", ttl, None).unwrap();
    a.put(&idle, b"idle", ttl, None).unwrap();
    a.put(&raced, b"old", ttl, None).unwrap();
    a.put(&old_held, b"held", ttl, None).unwrap();
    let (ta, tb, tc) = (Token::new(), Token::new(), Token::new());
    // Locks taken before the data went idle, and still held when gc runs.
    assert!(matches!(a.lock(&old_held, &ta, exp, LIFE).unwrap(), Got::Locked(Some(_))));
    let mut d = open();
    assert_eq!(d.lock(&old_lock, &ta, exp, LIFE).unwrap(), Got::Locked(None));
    std::thread::sleep(age + Duration::from_millis(100));
    // Expiry: data older than max_lifetime reads as absent.
    assert_eq!(b.get(&s4, age).unwrap(), None);
    assert!(!b.has(&s4, age).unwrap());
    a.put(&fresh, b"fresh", ttl, None).unwrap();
    let mut e = open();
    assert_eq!(e.lock(&fresh_lock, &ta, exp, LIFE).unwrap(), Got::Locked(None));
    // Another request rewrites `raced` (under its lock) after gc read it as idle and before gc deletes
    // it, in engines that read and delete in two steps (files: scan, then unlink; Memcached: read the
    // age and CAS, then delete): gc must keep the rewrite. SQLite deletes in one statement (no window).
    let mut writer = open();
    let rewrite = raced.clone();
    set_gc_window(Box::new(move |key: &str| {
        if !key.contains(rewrite.as_str()) {
            return false;
        }
        assert!(matches!(writer.lock(&rewrite, &tc, exp, LIFE).unwrap(), Got::Locked(_)));
        assert_eq!(writer.put(&rewrite, b"rewritten", LIFE, Some(&tc)).unwrap(), W::Done);
        true
    }));
    let removed = b.collector().expect("this engine collects garbage").gc(ex(age)).unwrap();
    let raced_window = take_gc_window();
    assert!(removed >= 2, "conf4 and gcidle are idle: {removed}");
    // Idle sessions are gone from the storage (not only read as expired).
    assert_eq!(b.get(&s4, LIFE).unwrap(), None);
    assert_eq!(b.get(&idle, LIFE).unwrap(), None);
    assert_eq!(b.get(&fresh, age).unwrap().as_deref(), Some(&b"fresh"[..]), "gc kept the fresh session");
    if raced_window {
        assert_eq!(b.get(&raced, LIFE).unwrap().as_deref(), Some(&b"rewritten"[..]), "gc kept the rewrite");
    } else {
        assert_eq!(b.get(&raced, LIFE).unwrap(), None, "idle, and not rewritten: removed");
    }
    // Held locks stay held, whether taken on a fresh, a new or an idle session.
    for (s, what) in [(&fresh_lock, "a fresh lock"), (&old_lock, "an old lock"), (&old_held, "the lock on idle data")] {
        assert_eq!(c.lock(s, &tb, exp, LIFE).unwrap(), Got::Busy, "gc removed {what}");
    }
    e.unlock(&fresh_lock, &ta).unwrap();
    d.unlock(&old_lock, &ta).unwrap();
    a.unlock(&old_held, &ta).unwrap();
    raced_window
}

/// The stand-in for another request that `gc_window` runs: whether it acted on that key.
type GcHook = Box<dyn FnMut(&str) -> bool>;

thread_local! {
    /// The test's stand-in for another request, run by an engine's gc between reading a session as
    /// idle and deleting it (`gc_window`); returns whether it acted on that key.
    static GC_WINDOW: std::cell::RefCell<(Option<GcHook>, bool)> = std::cell::RefCell::new((None, false));
}

fn set_gc_window(f: GcHook) {
    GC_WINDOW.with(|w| *w.borrow_mut() = (Some(f), false));
}

/// Removes the hook; whether it acted (an engine's gc has the window and reached it for that key).
fn take_gc_window() -> bool {
    GC_WINDOW.with(|w| std::mem::take(&mut *w.borrow_mut()).1)
}

/// Called by an engine's gc (tests only) after it decided `key` (a file name, an item key) is idle
/// and before it deletes it.
pub fn gc_window(key: &str) {
    let hook = GC_WINDOW.with(|w| w.borrow_mut().0.take());
    if let Some(mut f) = hook {
        let acted = f(key);
        GC_WINDOW.with(|w| {
            let mut w = w.borrow_mut();
            w.1 |= acted;
            // Acts once: the rewrite is done; later keys run without it.
            if !acted {
                w.0 = Some(f);
            }
        });
    }
}

/// For engines whose storage expires entries itself (Redis, Memcached): a session lives `ttl` after
/// its last save or touch, whatever `max_lifetime` a reader passes; gc has nothing to do.
pub fn conformance_ttl(open: impl Fn() -> Box<dyn Store>) {
    conformance_ttl_with(open, false)
}

/// `conformance_ttl` for a store whose gc deletes what expired by the writer's lifetime (Symfony's
/// table on a SQL server): the expired session may be collected; live ones and held locks stay.
pub fn conformance_ttl_collected(open: impl Fn() -> Box<dyn Store>) {
    conformance_ttl_with(open, true)
}

fn conformance_ttl_with(open: impl Fn() -> Box<dyn Store>, collects: bool) {
    versions(&open);
    let (mut a, mut b) = conformance_common(&open, Handover::Immediate);
    let s4 = id("conf4");
    a.put(&s4, b"old", Duration::from_secs(1), None).unwrap();
    let s5 = id("conf5");
    a.put(&s5, b"kept", Duration::from_secs(1), None).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    // touch refreshes the lifetime, with and without a lock.
    assert_eq!(b.tch(&s5, Duration::from_secs(2), None).unwrap(), W::Done);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(b.get(&s4, LIFE).unwrap(), None);
    assert!(!b.has(&s4, LIFE).unwrap());
    assert_eq!(b.get(&s5, LIFE).unwrap().as_deref(), Some(&b"kept"[..]));
    let t = Token::new();
    assert!(matches!(a.lock(&s5, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(Some(_))));
    assert_eq!(a.tch(&s5, LIFE, Some(&t)).unwrap(), W::Done);
    // gc has nothing to do here, and must not remove a live session or a held lock.
    let s6 = id("conf6");
    assert_eq!(a.lock(&s6, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(None));
    let collected = b.collector().map_or(Ok(0), |c| c.gc(ex(Duration::from_secs(1)))).unwrap();
    // Only conf4 has expired.
    assert_eq!(collected, if collects { 1 } else { 0 });
    assert_eq!(b.get(&s5, LIFE).unwrap().as_deref(), Some(&b"kept"[..]), "touch released the lock, kept data");
    assert_eq!(b.lock(&s6, &Token::new(), Duration::from_secs(30), LIFE).unwrap(), Got::Busy, "gc kept the lock");
    a.unlock(&s6, &t).unwrap();
}

fn conformance_common(open: &impl Fn() -> Box<dyn Store>, handover: Handover) -> (Box<dyn Store>, Box<dyn Store>) {
    let mut a = open();
    let mut b = open();
    let ttl = LIFE;

    // Unknown ids read as absent and do not exist.
    let s1 = id("conf1");
    assert_eq!(a.get(&s1, LIFE).unwrap(), None);
    assert!(!a.has(&s1, LIFE).unwrap());

    // Binary-safe round trip, including 16 MiB.
    let bin: Vec<u8> = (0..=255u8).chain([0, 0, 0xff, 0xfe]).collect();
    assert_eq!(a.put(&s1, &bin, ttl, None).unwrap(), W::Done);
    assert_eq!(b.get(&s1, LIFE).unwrap().as_deref(), Some(&bin[..]));
    assert!(b.has(&s1, LIFE).unwrap());
    let big = vec![0xa5u8; 16 << 20];
    a.put(&s1, &big, ttl, None).unwrap();
    assert_eq!(b.get(&s1, LIFE).unwrap().map(|d| d.len()), Some(big.len()));
    a.put(&s1, b"", ttl, None).unwrap();
    assert_eq!(b.get(&s1, LIFE).unwrap().as_deref(), Some(&b""[..]));

    // Locks exclude; the owner reads the data under the lock; release hands over.
    let s2 = id("conf2");
    a.put(&s2, b"v1", ttl, None).unwrap();
    let (ta, tb) = (Token::new(), Token::new());
    let exp = Duration::from_secs(30);
    assert_eq!(a.lock(&s2, &ta, exp, LIFE).unwrap(), Got::Locked(Some(b"v1".to_vec())));
    assert_eq!(b.lock(&s2, &tb, exp, LIFE).unwrap(), Got::Busy);
    // Someone else's unlock, write or destroy-release does not free or bypass our lock.
    b.unlock(&s2, &tb).unwrap();
    assert_eq!(b.lock(&s2, &tb, exp, LIFE).unwrap(), Got::Busy);
    assert_eq!(a.put(&s2, b"v2", ttl, Some(&ta)).unwrap(), W::Done);
    assert_eq!(lock_handed_over(&mut b, &s2, &tb, exp, handover), Got::Locked(Some(b"v2".to_vec())));
    assert_eq!(b.tch(&s2, ttl, Some(&tb)).unwrap(), W::Done);
    assert_eq!(lock_handed_over(&mut a, &s2, &ta, exp, handover), Got::Locked(Some(b"v2".to_vec())));
    a.unlock(&s2, &ta).unwrap();
    // A new session can be locked before it exists.
    let s3 = id("conf3");
    assert_eq!(a.lock(&s3, &ta, exp, LIFE).unwrap(), Got::Locked(None));
    assert_eq!(b.lock(&s3, &tb, exp, LIFE).unwrap(), Got::Busy);
    a.unlock(&s3, &ta).unwrap();
    assert_eq!(b.lock(&s3, &tb, exp, LIFE).unwrap(), Got::Locked(None));
    b.unlock(&s3, &tb).unwrap();
    assert!(!a.has(&s3, LIFE).unwrap(), "locking must not create a session");

    // Destroy removes data and our lock.
    assert!(matches!(a.lock(&s2, &ta, exp, LIFE).unwrap(), Got::Locked(_)));
    a.destroy(&s2, Some(&ta)).unwrap();
    assert!(!b.has(&s2, LIFE).unwrap());
    assert_eq!(b.lock(&s2, &tb, exp, LIFE).unwrap(), Got::Locked(None));
    b.unlock(&s2, &tb).unwrap();
    destroy_by_non_owner(&mut a, &mut b, open, handover);
    (a, b)
}

/// A destroy by a request that does not hold the lock another request holds (locking off: no token;
/// or a token that is not the holder's). What the contract allows:
/// - the destroy deletes the data, or it is refused with an error and nothing changes (files, whose
///   lock is the session file itself, refuses: deleting the file would free the lock);
/// - either way the holder's lock stays: a third request is still told Busy;
/// - the holder's write then either lands (it is the newest write) or is refused with an error
///   (Memcached: the CAS guard sees the session changed under the lock); never reported saved and lost;
/// - the holder's touch or unlock never brings a destroyed session back.
fn destroy_by_non_owner(a: &mut Box<dyn Store>, b: &mut Box<dyn Store>, open: &impl Fn() -> Box<dyn Store>, handover: Handover) {
    let s = id("conf7");
    let exp = Duration::from_secs(30);
    let (ta, tb, tc) = (Token::new(), Token::new(), Token::new());
    let mut c = open();
    for intruder in [None, Some(&tb)] {
        for end in ["save", "touch", "unlock"] {
            let ctx = format!("destroy with token {:?}, then the holder's {end}", intruder.map(|t| t.as_str()));
            a.put(&s, b"held", LIFE, None).unwrap();
            assert_eq!(lock_handed_over(a, &s, &ta, exp, handover), Got::Locked(Some(b"held".to_vec())), "{ctx}");
            let destroyed = b.destroy(&s, intruder).is_ok();
            let left = if destroyed { None } else { Some(b"held".to_vec()) };
            assert_eq!(b.get(&s, LIFE).unwrap(), left, "{ctx}: destroyed (or refused) as reported");
            assert_eq!(c.lock(&s, &tc, exp, LIFE).unwrap(), Got::Busy, "{ctx}: the holder's lock stays");
            let expect = match end {
                "save" => match a.put(&s, b"mine", LIFE, Some(&ta)) {
                    Ok(W::Done) => Some(b"mine".to_vec()),
                    Ok(W::LockLost) => panic!("{ctx}: the holder's lock was lost"),
                    // Refused as a conflict: the lock is released with the refusal.
                    Ok(W::Conflict) => left,
                    Err(_) => {
                        a.unlock(&s, &ta).unwrap();
                        left
                    }
                },
                "touch" => {
                    assert_eq!(a.tch(&s, LIFE, Some(&ta)).unwrap(), W::Done, "{ctx}");
                    left
                }
                _ => {
                    a.unlock(&s, &ta).unwrap();
                    left
                }
            };
            assert_eq!(b.get(&s, LIFE).unwrap(), expect, "{ctx}: what the holder left");
            assert_eq!(lock_handed_over(&mut c, &s, &tc, exp, handover), Got::Locked(expect.clone()), "{ctx}: then free");
            c.unlock(&s, &tc).unwrap();
            b.destroy(&s, None).unwrap();
        }
    }
}

/// For engines whose locks expire (all but files): a vanished holder's lock is taken over after
/// `expire`, and the old holder's write is then refused.
pub fn expiring_locks(open: impl Fn() -> Box<dyn Store>) {
    expired_locks(&open);
    dead_holder_locks(open);
}

/// `expiring_locks` without `dead_holder_locks`: for SQLite, whose lock is a kernel lock byte (gone
/// with its process) and a row only once taken over.
pub fn expired_locks(open: &impl Fn() -> Box<dyn Store>) {
    let mut a = open();
    let mut b = open();
    let s = id("expiring");
    a.put(&s, b"base", LIFE, None).unwrap();
    let (ta, tb) = (Token::new(), Token::new());
    let short = Duration::from_millis(300);
    assert!(matches!(a.lock(&s, &ta, short, LIFE).unwrap(), Got::Locked(_)));
    assert_eq!(b.lock(&s, &tb, short, LIFE).unwrap(), Got::Busy);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(b.lock(&s, &tb, short, LIFE).unwrap(), Got::Locked(Some(b"base".to_vec())));
    assert_eq!(a.put(&s, b"stale", LIFE, Some(&ta)).unwrap(), W::LockLost);
    assert_eq!(a.tch(&s, LIFE, Some(&ta)).unwrap(), W::LockLost);
    assert_eq!(b.put(&s, b"newer", LIFE, Some(&tb)).unwrap(), W::Done);
    assert_eq!(a.get(&s, LIFE).unwrap().as_deref(), Some(&b"newer"[..]));
}

/// For engines whose locks outlive their holder (all but files): the holder's token is reported, and
/// `unlock` with it — what a waiter does when that holder died — frees exactly that lock at once.
pub fn dead_holder_locks(open: impl Fn() -> Box<dyn Store>) {
    let mut a = open();
    let mut b = open();
    let s = id("deadholder");
    a.put(&s, b"kept", LIFE, None).unwrap();
    let (ta, tb) = (Token::new(), Token::new());
    let exp = Duration::from_secs(30);
    assert_eq!(b.lock_holder(&s).unwrap(), None, "free");
    assert!(matches!(a.lock(&s, &ta, exp, LIFE).unwrap(), Got::Locked(_)));
    assert_eq!(b.lock(&s, &tb, exp, LIFE).unwrap(), Got::Busy);
    assert_eq!(b.lock_holder(&s).unwrap(), Some(ta.clone()));
    // Another token does not break it; the holder's does.
    b.unlock(&s, &tb).unwrap();
    assert_eq!(b.lock_holder(&s).unwrap(), Some(ta.clone()));
    b.unlock(&s, &ta).unwrap();
    assert_eq!(b.lock(&s, &tb, exp, LIFE).unwrap(), Got::Locked(Some(b"kept".to_vec())));
    assert_eq!(a.lock_holder(&s).unwrap(), Some(tb.clone()));
    // (No write of the broken holder is checked: it is dead. Memcached trusts its own lock for half of
    // lock_expire without asking the server.)
    assert_eq!(b.put(&s, b"newer", LIFE, Some(&tb)).unwrap(), W::Done);
    assert_eq!(a.get(&s, LIFE).unwrap().as_deref(), Some(&b"newer"[..]));
}

/// For engines whose waiters are woken by the release itself (files, SQLite: a kernel lock): `b`,
/// waiting for `a`'s lock, returns from `wait_for_release` soon after `a`'s write released it
/// (measured 0.1-0.5 ms after it; the bound, 20 ms, is the slowest step of the polling it replaces
/// plus room for a loaded machine), and reads that write. Returns both stores, `b` holding the lock.
pub fn woken_at_release(
    mut a: Box<dyn Store>,
    mut b: Box<dyn Store>,
    s: &SessionId,
) -> (Box<dyn Store>, Box<dyn Store>, Token) {
    let (ta, tb) = (Token::new(), Token::new());
    assert!(matches!(a.lock(s, &ta, LIFE, LIFE).unwrap(), Got::Locked(_)));
    let Acquire::Busy(busy) = b.lock_and_load(s, &tb, LIFE, ex(LIFE)).unwrap() else { panic!("the lock is a's") };
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = s.clone();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(80));
        let before = Instant::now();
        assert_eq!(a.put(&s2, b"from a", LIFE, Some(&ta)).unwrap(), W::Done);
        tx.send((before, Instant::now())).unwrap();
        a
    });
    b.wait_for_release(s, &busy, Instant::now() + Duration::from_secs(5), 0).unwrap();
    let woke = Instant::now();
    // The release happens inside save, between these two instants.
    let (saving, released) = rx.recv().unwrap();
    let a = holder.join().unwrap();
    assert!(woke >= saving, "woke before the release");
    let late = woke.saturating_duration_since(released);
    assert!(late < Duration::from_millis(20), "woke {late:?} after the release");
    assert_eq!(b.lock(s, &tb, LIFE, LIFE).unwrap(), Got::Locked(Some(b"from a".to_vec())));
    (a, b, tb)
}

/// Versions and expectations (CAS), for every engine and layer (run by `conformance` and
/// `conformance_ttl`): a write states what it expects to find and loses to any write made since.
pub fn versions(open: &dyn Fn() -> Box<dyn Store>) {
    let (mut a, mut b) = (open(), open());
    let e = ex(LIFE);
    let lexp = Duration::from_secs(30);
    let s = id("versions");
    let done = |w: Written| match w {
        Written::Done(v) => v,
        other => panic!("expected the write to be done: {other:?}"),
    };
    let conflict = |w: Written| match w {
        Written::Conflict(now) => now,
        other => panic!("expected a conflict: {other:?}"),
    };
    // Create: an absent-expectation write creates; a second one loses and is told what is there.
    let v1 = done(a.save(&s, b"v1", Expect::Absent, None, e).unwrap());
    let now = conflict(b.save(&s, b"lost", Expect::Absent, None, e).unwrap());
    assert_eq!(now, Some(Loaded { data: b"v1".to_vec(), version: v1 }));
    // A read reports the version the write answered.
    assert_eq!(b.load(&s, e).unwrap(), Some(Loaded { data: b"v1".to_vec(), version: v1 }));
    // A write at the version read wins and moves the version; a stale one is refused with the current
    // session, and stores nothing.
    let v2 = done(a.save(&s, b"v2", Expect::Version(v1), None, e).unwrap());
    assert_ne!(v2, v1);
    let now = conflict(b.save(&s, b"stale", Expect::Version(v1), None, e).unwrap());
    assert_eq!(now, Some(Loaded { data: b"v2".to_vec(), version: v2 }));
    assert_eq!(a.load(&s, e).unwrap().map(|l| l.data).as_deref(), Some(&b"v2"[..]));
    // Any: last writer wins, whatever was read.
    let v3 = done(b.save(&s, b"v3", Expect::Any, None, e).unwrap());
    assert!(v3 != v2 && v3 != v1);
    // Under a lock: the version read under it, then a CAS write that releases the lock.
    let (ta, tb) = (Token::new(), Token::new());
    let Acquire::Locked(Some(l)) = a.lock_and_load(&s, &ta, lexp, e).unwrap() else { panic!("locks and reads") };
    assert_eq!(l, Loaded { data: b"v3".to_vec(), version: v3 });
    // (What session.rs sends under a lock: Held with the version read.)
    let v4 = done(a.save(&s, b"v4", Expect::Held(Some(v3)), Some(&ta), e).unwrap());
    // A refused write under a lock releases the lock too.
    let got = lock_until_free(&mut b, &s, &tb, lexp);
    assert_eq!(got, Some(Loaded { data: b"v4".to_vec(), version: v4 }));
    let now = conflict(b.save(&s, b"stale", Expect::Version(v2), Some(&tb), e).unwrap());
    assert_eq!(now.map(|l| l.version), Some(v4));
    assert!(lock_until_free(&mut a, &s, &ta, lexp).is_some(), "the refused write released its lock");
    a.unlock(&s, &ta).unwrap();
    // Versions live in the store: a new connection (a worker restart) reads the same one and can
    // write at it.
    drop(a);
    let mut c = open();
    assert_eq!(c.load(&s, e).unwrap().map(|l| l.version), Some(v4));
    let v5 = done(c.save(&s, b"v5", Expect::Version(v4), None, e).unwrap());
    // A destroyed session: a write at its old version is refused (it would revive it), and an
    // absent-expectation write creates it again.
    c.destroy(&s, None).unwrap();
    assert_eq!(conflict(b.save(&s, b"revived", Expect::Version(v5), None, e).unwrap()), None);
    assert_eq!(b.load(&s, e).unwrap(), None, "a refused write stores nothing");
    done(b.save(&s, b"new", Expect::Absent, None, e).unwrap());
    c.destroy(&s, None).unwrap();
    concurrent_creates(open);
}

/// `lock_and_load` until the lock is free (a released lock may take a moment to reach every server).
fn lock_until_free(s: &mut Box<dyn Store>, sid: &SessionId, t: &Token, lexp: Duration) -> Option<Loaded> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match s.lock_and_load(sid, t, lexp, ex(LIFE)).unwrap() {
            Acquire::Locked(l) => return l,
            Acquire::Busy(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Acquire::Busy(b) => panic!("still locked after a second: {b:?}"),
        }
    }
}

/// Eight requests create the same session at once, each expecting it absent: exactly one wins, and
/// every other is told of the winner's data.
fn concurrent_creates(open: &dyn Fn() -> Box<dyn Store>) {
    for round in 0..5 {
        let s = id(&format!("creates{round}"));
        let stores: Vec<Box<dyn Store>> = (0..8).map(|_| open()).collect();
        let go = std::sync::Arc::new(std::sync::Barrier::new(stores.len()));
        let runs: Vec<_> = stores
            .into_iter()
            .enumerate()
            .map(|(i, mut st)| {
                let (s, go) = (s.clone(), go.clone());
                std::thread::spawn(move || {
                    let mine = format!("writer {i}").into_bytes();
                    go.wait();
                    (mine.clone(), st.save(&s, &mine, Expect::Absent, None, ex(LIFE)).unwrap(), st)
                })
            })
            .collect();
        let results: Vec<(Vec<u8>, Written, Box<dyn Store>)> = runs.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<(&Vec<u8>, Version)> = results
            .iter()
            .filter_map(|(d, w, _)| if let Written::Done(v) = w { Some((d, *v)) } else { None })
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one create wins: {:?}", results.iter().map(|r| &r.1).collect::<Vec<_>>());
        let (data, version) = winners[0];
        for (_, w, _) in &results {
            match w {
                Written::Done(_) => {}
                Written::Conflict(Some(now)) => assert_eq!(now.data, *data, "a loser is told the winner's data"),
                other => panic!("round {round}: {other:?}"),
            }
        }
        let mut check = open();
        assert_eq!(check.load(&s, ex(LIFE)).unwrap(), Some(Loaded { data: data.clone(), version }));
        check.destroy(&s, None).unwrap();
    }
}

/// Engines whose locks live in a server connection (the SQL engines' advisory locks): a wait bounded
/// by the deadline ends close to it, without an error, and the holder keeps the lock.
pub fn wait_ends_at_the_deadline(open: impl Fn() -> Box<dyn Store>) {
    let s = id("waitdeadline");
    let (mut a, mut b) = (open(), open());
    assert!(matches!(a.lock(&s, &Token::new(), LIFE, LIFE).unwrap(), Got::Locked(None)));
    let Acquire::Busy(busy) = b.lock_and_load(&s, &Token::new(), LIFE, ex(LIFE)).unwrap() else { panic!("a holds it") };
    let t0 = Instant::now();
    b.wait_for_release(&s, &busy, t0 + Duration::from_millis(300), 0).unwrap();
    let waited = t0.elapsed();
    // Not before the deadline (less the server's rounding to whole ms); and it gave up (the holder
    // stays): 300 ms plus a round trip, with a second's room for a loaded machine.
    assert!(waited >= Duration::from_millis(290) && waited < Duration::from_millis(1300), "{waited:?}");
    assert!(b.reusable(), "a wait that timed out is no error");
    assert_eq!(b.lock(&s, &Token::new(), LIFE, LIFE).unwrap(), Got::Busy);
}

/// A holder whose connection closed (a killed worker) leaves no lock behind: another takes it within
/// 5 s (at once on a server that frees a closed connection's locks) and reads the data.
pub fn closed_connection_frees_its_lock(open: impl Fn() -> Box<dyn Store>) {
    let s = id("killedholder");
    let (mut a, mut b) = (open(), open());
    a.put(&s, b"kept", LIFE, None).unwrap();
    assert!(matches!(a.lock(&s, &Token::new(), LIFE, LIFE).unwrap(), Got::Locked(_)));
    assert_eq!(b.lock(&s, &Token::new(), LIFE, LIFE).unwrap(), Got::Busy);
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    let t = Token::new();
    loop {
        match b.lock(&s, &t, LIFE, LIFE).unwrap() {
            Got::Locked(d) => break assert_eq!(d.as_deref(), Some(&b"kept"[..])),
            Got::Busy if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Got::Busy => panic!("the closed connection's lock is still held"),
        }
    }
}

/// The write and the release are one step, and the next holder reads that write (not the data before
/// it): 4 threads x 100 increments of a counter, each under the lock, waiting with `wait_for_release`.
pub fn increments_under_the_lock_are_never_lost(open: impl Fn() -> Box<dyn Store> + Clone + Send + 'static) {
    let s = id("counter");
    open().put(&s, b"0", LIFE, None).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (open, s) = (open.clone(), s.clone());
            std::thread::spawn(move || {
                let mut st = open();
                for _ in 0..100 {
                    let t = Token::new();
                    let deadline = Instant::now() + Duration::from_secs(30);
                    let n: u64 = loop {
                        match st.lock_and_load(&s, &t, LIFE, ex(LIFE)).unwrap() {
                            Acquire::Locked(l) => break String::from_utf8(l.unwrap().data).unwrap().parse().unwrap(),
                            Acquire::Busy(b) => st.wait_for_release(&s, &b, deadline, 0).unwrap(),
                        }
                    };
                    assert_eq!(st.put(&s, (n + 1).to_string().as_bytes(), LIFE, Some(&t)).unwrap(), W::Done);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(open().get(&s, LIFE).unwrap().as_deref(), Some(&b"400"[..]));
}
