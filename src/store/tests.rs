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
pub fn conformance(open: impl Fn() -> Box<dyn Store>) {
    conformance_with(open, Handover::Immediate);
}

/// `conformance` for a store that sends a write's lock release without waiting for its answer
/// (Memcached with the lock on another server than the session): another client may find the lock
/// still held for a moment after `save`/`touch` returned, and must get it within a second.
pub fn conformance_deferred_release(open: impl Fn() -> Box<dyn Store>) {
    conformance_with(open, Handover::Prompt);
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

fn conformance_with(open: impl Fn() -> Box<dyn Store>, handover: Handover) {
    let (mut a, mut b) = conformance_common(&open, handover);
    let ttl = LIFE;
    let s1 = id("conf1");

    // Expiry: data older than max_lifetime reads as absent, and gc removes it.
    let s4 = id("conf4");
    a.save(&s4, b"old", ttl, None).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(b.load(&s4, Duration::from_secs(1)).unwrap(), None);
    assert!(!b.exists(&s4, Duration::from_secs(1)).unwrap());
    assert!(b.gc(Duration::from_secs(1)).unwrap() >= 1);
    assert_eq!(b.load(&s4, LIFE).unwrap(), None);
    assert!(b.exists(&s1, LIFE).unwrap() || b.load(&s1, LIFE).unwrap().is_none());
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
    assert_eq!(b.gc(Duration::from_secs(1)).unwrap(), 0);
    assert_eq!(b.load(&s5, LIFE).unwrap().as_deref(), Some(&b"kept"[..]), "touch released the lock, kept data");
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
    (a, b)
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
