//! Behaviour every engine must show, run against each engine's `Store`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Acquire, Saved, Store};
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

fn id(s: &str) -> SessionId {
    SessionId::parse(s.as_bytes()).unwrap()
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
fn lock_handed_over(s: &mut Box<dyn Store>, sid: &SessionId, t: &Token, exp: Duration, handover: Handover) -> Acquire {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let got = s.lock_and_load(sid, t, exp, LIFE).unwrap();
        match (handover, &got) {
            (Handover::Prompt, Acquire::Busy) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => return got,
        }
    }
}

fn conformance_with(open: impl Fn() -> Box<dyn Store>, handover: Handover) -> bool {
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
    a.save(&s4, b"old", ttl, None).unwrap();
    a.save(&idle, b"idle", ttl, None).unwrap();
    a.save(&raced, b"old", ttl, None).unwrap();
    a.save(&old_held, b"held", ttl, None).unwrap();
    let (ta, tb, tc) = (Token::new(), Token::new(), Token::new());
    // Locks taken before the data went idle, and still held when gc runs.
    assert!(matches!(a.lock_and_load(&old_held, &ta, exp, LIFE).unwrap(), Acquire::Locked(Some(_))));
    let mut d = open();
    assert_eq!(d.lock_and_load(&old_lock, &ta, exp, LIFE).unwrap(), Acquire::Locked(None));
    std::thread::sleep(age + Duration::from_millis(100));
    // Expiry: data older than max_lifetime reads as absent.
    assert_eq!(b.load(&s4, age).unwrap(), None);
    assert!(!b.exists(&s4, age).unwrap());
    a.save(&fresh, b"fresh", ttl, None).unwrap();
    let mut e = open();
    assert_eq!(e.lock_and_load(&fresh_lock, &ta, exp, LIFE).unwrap(), Acquire::Locked(None));
    // Another request rewrites `raced` (under its lock) after gc read it as idle and before gc deletes
    // it, in engines that read and delete in two steps (files: scan, then unlink; Memcached: read the
    // age and CAS, then delete): gc must keep the rewrite. SQLite deletes in one statement (no window).
    let mut writer = open();
    let rewrite = raced.clone();
    set_gc_window(Box::new(move |key: &str| {
        if !key.contains(rewrite.as_str()) {
            return false;
        }
        assert!(matches!(writer.lock_and_load(&rewrite, &tc, exp, LIFE).unwrap(), Acquire::Locked(_)));
        assert_eq!(writer.save(&rewrite, b"rewritten", LIFE, Some(&tc)).unwrap(), Saved::Done);
        true
    }));
    let removed = b.gc(age).unwrap();
    let raced_window = take_gc_window();
    assert!(removed >= 2, "conf4 and gcidle are idle: {removed}");
    // Idle sessions are gone from the storage (not only read as expired).
    assert_eq!(b.load(&s4, LIFE).unwrap(), None);
    assert_eq!(b.load(&idle, LIFE).unwrap(), None);
    assert_eq!(b.load(&fresh, age).unwrap().as_deref(), Some(&b"fresh"[..]), "gc kept the fresh session");
    if raced_window {
        assert_eq!(b.load(&raced, LIFE).unwrap().as_deref(), Some(&b"rewritten"[..]), "gc kept the rewrite");
    } else {
        assert_eq!(b.load(&raced, LIFE).unwrap(), None, "idle, and not rewritten: removed");
    }
    // Held locks stay held, whether taken on a fresh, a new or an idle session.
    for (s, what) in [(&fresh_lock, "a fresh lock"), (&old_lock, "an old lock"), (&old_held, "the lock on idle data")] {
        assert_eq!(c.lock_and_load(s, &tb, exp, LIFE).unwrap(), Acquire::Busy, "gc removed {what}");
    }
    e.unlock(&fresh_lock, &ta).unwrap();
    d.unlock(&old_lock, &ta).unwrap();
    a.unlock(&old_held, &ta).unwrap();
    raced_window
}

thread_local! {
    /// The test's stand-in for another request, run by an engine's gc between reading a session as
    /// idle and deleting it (`gc_window`); returns whether it acted on that key.
    static GC_WINDOW: std::cell::RefCell<(Option<Box<dyn FnMut(&str) -> bool>>, bool)> =
        std::cell::RefCell::new((None, false));
}

fn set_gc_window(f: Box<dyn FnMut(&str) -> bool>) {
    GC_WINDOW.with(|w| *w.borrow_mut() = (Some(f), false));
}

/// Removes the hook; whether it acted (an engine's gc has the window and reached it for that key).
fn take_gc_window() -> bool {
    GC_WINDOW.with(|w| std::mem::replace(&mut *w.borrow_mut(), (None, false)).1)
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
    let (mut a, mut b) = conformance_common(&open, Handover::Immediate);
    let s4 = id("conf4");
    a.save(&s4, b"old", Duration::from_secs(1), None).unwrap();
    let s5 = id("conf5");
    a.save(&s5, b"kept", Duration::from_secs(1), None).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    // touch refreshes the lifetime, with and without a lock.
    assert_eq!(b.touch(&s5, Duration::from_secs(2), None).unwrap(), Saved::Done);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(b.load(&s4, LIFE).unwrap(), None);
    assert!(!b.exists(&s4, LIFE).unwrap());
    assert_eq!(b.load(&s5, LIFE).unwrap().as_deref(), Some(&b"kept"[..]));
    let t = Token::new();
    assert!(matches!(a.lock_and_load(&s5, &t, Duration::from_secs(30), LIFE).unwrap(), Acquire::Locked(Some(_))));
    assert_eq!(a.touch(&s5, LIFE, Some(&t)).unwrap(), Saved::Done);
    // gc has nothing to do here, and must not remove a live session or a held lock.
    let s6 = id("conf6");
    assert_eq!(a.lock_and_load(&s6, &t, Duration::from_secs(30), LIFE).unwrap(), Acquire::Locked(None));
    assert_eq!(b.gc(Duration::from_secs(1)).unwrap(), 0);
    assert_eq!(b.load(&s5, LIFE).unwrap().as_deref(), Some(&b"kept"[..]), "touch released the lock, kept data");
    assert_eq!(b.lock_and_load(&s6, &Token::new(), Duration::from_secs(30), LIFE).unwrap(), Acquire::Busy, "gc kept the lock");
    a.unlock(&s6, &t).unwrap();
}

fn conformance_common(open: &impl Fn() -> Box<dyn Store>, handover: Handover) -> (Box<dyn Store>, Box<dyn Store>) {
    let mut a = open();
    let mut b = open();
    let ttl = LIFE;

    // Unknown ids read as absent and do not exist.
    let s1 = id("conf1");
    assert_eq!(a.load(&s1, LIFE).unwrap(), None);
    assert!(!a.exists(&s1, LIFE).unwrap());

    // Binary-safe round trip, including 16 MiB.
    let bin: Vec<u8> = (0..=255u8).chain([0, 0, 0xff, 0xfe]).collect();
    assert_eq!(a.save(&s1, &bin, ttl, None).unwrap(), Saved::Done);
    assert_eq!(b.load(&s1, LIFE).unwrap().as_deref(), Some(&bin[..]));
    assert!(b.exists(&s1, LIFE).unwrap());
    let big = vec![0xa5u8; 16 << 20];
    a.save(&s1, &big, ttl, None).unwrap();
    assert_eq!(b.load(&s1, LIFE).unwrap().map(|d| d.len()), Some(big.len()));
    a.save(&s1, b"", ttl, None).unwrap();
    assert_eq!(b.load(&s1, LIFE).unwrap().as_deref(), Some(&b""[..]));

    // Locks exclude; the owner reads the data under the lock; release hands over.
    let s2 = id("conf2");
    a.save(&s2, b"v1", ttl, None).unwrap();
    let (ta, tb) = (Token::new(), Token::new());
    let exp = Duration::from_secs(30);
    assert_eq!(a.lock_and_load(&s2, &ta, exp, LIFE).unwrap(), Acquire::Locked(Some(b"v1".to_vec())));
    assert_eq!(b.lock_and_load(&s2, &tb, exp, LIFE).unwrap(), Acquire::Busy);
    // Someone else's unlock, write or destroy-release does not free or bypass our lock.
    b.unlock(&s2, &tb).unwrap();
    assert_eq!(b.lock_and_load(&s2, &tb, exp, LIFE).unwrap(), Acquire::Busy);
    assert_eq!(a.save(&s2, b"v2", ttl, Some(&ta)).unwrap(), Saved::Done);
    assert_eq!(lock_handed_over(&mut b, &s2, &tb, exp, handover), Acquire::Locked(Some(b"v2".to_vec())));
    assert_eq!(b.touch(&s2, ttl, Some(&tb)).unwrap(), Saved::Done);
    assert_eq!(lock_handed_over(&mut a, &s2, &ta, exp, handover), Acquire::Locked(Some(b"v2".to_vec())));
    a.unlock(&s2, &ta).unwrap();
    // A new session can be locked before it exists.
    let s3 = id("conf3");
    assert_eq!(a.lock_and_load(&s3, &ta, exp, LIFE).unwrap(), Acquire::Locked(None));
    assert_eq!(b.lock_and_load(&s3, &tb, exp, LIFE).unwrap(), Acquire::Busy);
    a.unlock(&s3, &ta).unwrap();
    assert_eq!(b.lock_and_load(&s3, &tb, exp, LIFE).unwrap(), Acquire::Locked(None));
    b.unlock(&s3, &tb).unwrap();
    assert!(!a.exists(&s3, LIFE).unwrap(), "locking must not create a session");

    // Destroy removes data and our lock.
    assert!(matches!(a.lock_and_load(&s2, &ta, exp, LIFE).unwrap(), Acquire::Locked(_)));
    a.destroy(&s2, Some(&ta)).unwrap();
    assert!(!b.exists(&s2, LIFE).unwrap());
    assert_eq!(b.lock_and_load(&s2, &tb, exp, LIFE).unwrap(), Acquire::Locked(None));
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
            a.save(&s, b"held", LIFE, None).unwrap();
            assert_eq!(lock_handed_over(a, &s, &ta, exp, handover), Acquire::Locked(Some(b"held".to_vec())), "{ctx}");
            let destroyed = b.destroy(&s, intruder).is_ok();
            let left = if destroyed { None } else { Some(b"held".to_vec()) };
            assert_eq!(b.load(&s, LIFE).unwrap(), left, "{ctx}: destroyed (or refused) as reported");
            assert_eq!(c.lock_and_load(&s, &tc, exp, LIFE).unwrap(), Acquire::Busy, "{ctx}: the holder's lock stays");
            let expect = match end {
                "save" => match a.save(&s, b"mine", LIFE, Some(&ta)) {
                    Ok(Saved::Done) => Some(b"mine".to_vec()),
                    Ok(Saved::LockLost) => panic!("{ctx}: the holder's lock was lost"),
                    Err(_) => {
                        a.unlock(&s, &ta).unwrap();
                        left
                    }
                },
                "touch" => {
                    assert_eq!(a.touch(&s, LIFE, Some(&ta)).unwrap(), Saved::Done, "{ctx}");
                    left
                }
                _ => {
                    a.unlock(&s, &ta).unwrap();
                    left
                }
            };
            assert_eq!(b.load(&s, LIFE).unwrap(), expect, "{ctx}: what the holder left");
            assert_eq!(lock_handed_over(&mut c, &s, &tc, exp, handover), Acquire::Locked(expect.clone()), "{ctx}: then free");
            c.unlock(&s, &tc).unwrap();
            b.destroy(&s, None).unwrap();
        }
    }
}

/// For engines whose locks expire (all but files): a vanished holder's lock is taken over after
/// `expire`, and the old holder's write is then refused.
pub fn expiring_locks(open: impl Fn() -> Box<dyn Store>) {
    let mut a = open();
    let mut b = open();
    let s = id("expiring");
    a.save(&s, b"base", LIFE, None).unwrap();
    let (ta, tb) = (Token::new(), Token::new());
    let short = Duration::from_millis(300);
    assert!(matches!(a.lock_and_load(&s, &ta, short, LIFE).unwrap(), Acquire::Locked(_)));
    assert_eq!(b.lock_and_load(&s, &tb, short, LIFE).unwrap(), Acquire::Busy);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(b.lock_and_load(&s, &tb, short, LIFE).unwrap(), Acquire::Locked(Some(b"base".to_vec())));
    assert_eq!(a.save(&s, b"stale", LIFE, Some(&ta)).unwrap(), Saved::LockLost);
    assert_eq!(a.touch(&s, LIFE, Some(&ta)).unwrap(), Saved::LockLost);
    assert_eq!(b.save(&s, b"newer", LIFE, Some(&tb)).unwrap(), Saved::Done);
    assert_eq!(a.load(&s, LIFE).unwrap().as_deref(), Some(&b"newer"[..]));
    dead_holder_locks(open);
}

/// For engines whose locks outlive their holder (all but files): the holder's token is reported, and
/// `unlock` with it — what a waiter does when that holder died — frees exactly that lock at once.
pub fn dead_holder_locks(open: impl Fn() -> Box<dyn Store>) {
    let mut a = open();
    let mut b = open();
    let s = id("deadholder");
    a.save(&s, b"kept", LIFE, None).unwrap();
    let (ta, tb) = (Token::new(), Token::new());
    let exp = Duration::from_secs(30);
    assert_eq!(b.lock_holder(&s).unwrap(), None, "free");
    assert!(matches!(a.lock_and_load(&s, &ta, exp, LIFE).unwrap(), Acquire::Locked(_)));
    assert_eq!(b.lock_and_load(&s, &tb, exp, LIFE).unwrap(), Acquire::Busy);
    assert_eq!(b.lock_holder(&s).unwrap(), Some(ta.clone()));
    // Another token does not break it; the holder's does.
    b.unlock(&s, &tb).unwrap();
    assert_eq!(b.lock_holder(&s).unwrap(), Some(ta.clone()));
    b.unlock(&s, &ta).unwrap();
    assert_eq!(b.lock_and_load(&s, &tb, exp, LIFE).unwrap(), Acquire::Locked(Some(b"kept".to_vec())));
    assert_eq!(a.lock_holder(&s).unwrap(), Some(tb.clone()));
    // (No write of the broken holder is checked: it is dead. Memcached trusts its own lock for half of
    // lock_expire without asking the server.)
    assert_eq!(b.save(&s, b"newer", LIFE, Some(&tb)).unwrap(), Saved::Done);
    assert_eq!(a.load(&s, LIFE).unwrap().as_deref(), Some(&b"newer"[..]));
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
    assert!(matches!(a.lock_and_load(s, &ta, LIFE, LIFE).unwrap(), Acquire::Locked(_)));
    assert_eq!(b.lock_and_load(s, &tb, LIFE, LIFE).unwrap(), Acquire::Busy);
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = s.clone();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(80));
        let before = Instant::now();
        assert_eq!(a.save(&s2, b"from a", LIFE, Some(&ta)).unwrap(), Saved::Done);
        tx.send((before, Instant::now())).unwrap();
        a
    });
    b.wait_for_release(s, Instant::now() + Duration::from_secs(5), 0).unwrap();
    let woke = Instant::now();
    // The release happens inside save, between these two instants.
    let (saving, released) = rx.recv().unwrap();
    let a = holder.join().unwrap();
    assert!(woke >= saving, "woke before the release");
    let late = woke.saturating_duration_since(released);
    assert!(late < Duration::from_millis(20), "woke {late:?} after the release");
    assert_eq!(b.lock_and_load(s, &tb, LIFE, LIFE).unwrap(), Acquire::Locked(Some(b"from a".to_vec())));
    (a, b, tb)
}
