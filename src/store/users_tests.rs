//! Behaviour every engine's per-user index must show (`Users`), run against each engine that keeps
//! one (`users_conformance`), alone and under the metrics layer.

use std::time::Duration;

use super::tests::id;
use super::users::{Client, Count, User};
use super::{Acquire, Expect, Expiry, Store, Written};
use crate::lock::Token;

const LIFE: Duration = Duration::from_secs(3600);

fn ex(d: Duration) -> Expiry {
    Expiry::new(d)
}

fn user(s: &[u8]) -> User {
    User::new(s).unwrap()
}

fn write(s: &mut Box<dyn Store>, sid: &str, data: &[u8], life: Duration) {
    assert!(matches!(s.save(&id(sid), data, Expect::Any, None, ex(life)).unwrap(), Written::Done(_)));
}

/// The ids of `u`'s listed sessions, sorted.
fn ids(s: &mut Box<dyn Store>, u: &User, life: Duration) -> Vec<String> {
    let mut v: Vec<String> = s.users().unwrap().list(u, ex(life)).unwrap().into_iter().map(|l| l.id.as_str().to_string()).collect();
    v.sort();
    v
}

/// `tag` keeps the ids of parallel runs (and of other engines on one server) apart. `count`: whether
/// the engine counts active sessions from an index (else it must say it needs a scan).
pub fn users_conformance(open: impl Fn() -> Box<dyn Store>, tag: &str, count: bool) {
    let (mut a, mut b) = (open(), open());
    let alice = user(format!("alice-{tag}").as_bytes());
    let bob = user(format!("bob-{tag}").as_bytes());
    let sid = |n: &str| format!("{tag}u{n}");
    let e = ex(LIFE);
    // Three sessions of alice, one of bob, one unbound.
    for n in ["1", "2", "3", "4", "5"] {
        write(&mut a, &sid(n), format!("n|i:{n};").as_bytes(), LIFE);
    }
    let t0 = super::unix_now();
    for n in ["1", "2", "3"] {
        a.users().unwrap().bind(&id(&sid(n)), Some(&alice), None, e).unwrap();
    }
    let client = Client { ip: "192.0.2.7".into(), agent: "curl/8".into() };
    a.users().unwrap().bind(&id(&sid("4")), Some(&bob), Some(&client), e).unwrap();
    assert_eq!(ids(&mut b, &alice, LIFE), [sid("1"), sid("2"), sid("3")], "another handle sees the index");
    assert_eq!(ids(&mut b, &bob, LIFE), [sid("4")]);
    let listed = b.users().unwrap().list(&bob, e).unwrap();
    assert_eq!(listed[0].client.as_ref(), Some(&client), "a tracked client is listed");
    assert!((listed[0].created - t0).abs() < 60.0 && (listed[0].last_active - t0).abs() < 60.0, "{listed:?}");
    assert_eq!(b.users().unwrap().list(&alice, e).unwrap()[0].client, None, "no client unless tracked");
    assert_eq!(b.users().unwrap().bound(&id(&sid("2")), e).unwrap(), Some(alice.clone()));
    assert_eq!(b.users().unwrap().bound(&id(&sid("5")), e).unwrap(), None);
    // The data is untouched by the index (other handlers read it).
    assert_eq!(b.load(&id(&sid("1")), e).unwrap().unwrap().data, b"n|i:1;");
    // Rebinding moves the session; unbinding removes it.
    a.users().unwrap().bind(&id(&sid("3")), Some(&bob), None, e).unwrap();
    assert_eq!(ids(&mut b, &alice, LIFE), [sid("1"), sid("2")]);
    assert_eq!(ids(&mut b, &bob, LIFE), [sid("3"), sid("4")]);
    a.users().unwrap().bind(&id(&sid("3")), None, None, e).unwrap();
    assert_eq!(ids(&mut b, &bob, LIFE), [sid("4")]);
    assert_eq!(b.users().unwrap().bound(&id(&sid("3")), e).unwrap(), None);
    // A plain destroy (logout) leaves the list.
    a.destroy(&id(&sid("2")), None).unwrap();
    assert_eq!(ids(&mut b, &alice, LIFE), [sid("1")]);
    // Ending a session another request holds locked: gone, and the holder's late write (as the
    // session layer sends it: Held with the version read) does not bring it back.
    let holder = Token::new();
    let Acquire::Locked(Some(l)) = b.lock_and_load(&id(&sid("1")), &holder, Duration::from_secs(30), e).unwrap() else { panic!("locks") };
    assert!(a.users().unwrap().end(&id(&sid("1")), e).unwrap());
    assert!(!a.exists(&id(&sid("1")), e).unwrap());
    let late = b.save(&id(&sid("1")), b"n|i:99;", Expect::Held(Some(l.version)), Some(&holder), e).unwrap();
    assert!(matches!(late, Written::LockLost | Written::Conflict(None)), "{late:?}");
    assert_eq!(a.load(&id(&sid("1")), e).unwrap(), None, "the late write did not revive it");
    assert!(ids(&mut b, &alice, LIFE).is_empty());
    assert!(!a.users().unwrap().end(&id(&sid("1")), e).unwrap(), "ending it again: it was gone");
    // An expired session is not listed (its entry is pruned or collected).
    let short = Duration::from_secs(1);
    write(&mut a, &sid("6"), b"x|i:1;", short);
    a.users().unwrap().bind(&id(&sid("6")), Some(&alice), None, ex(short)).unwrap();
    assert_eq!(ids(&mut b, &alice, LIFE), [sid("6")]);
    std::thread::sleep(Duration::from_millis(2100));
    assert!(ids(&mut b, &alice, short).is_empty(), "expired sessions are not listed");
    // Hostile names are stored safely and never meet one another.
    let evil: Vec<User> = [&b"../../etc/passwd"[..], b"*", b"a\0b\xff", &[b'x'; 1024], b"PHPREDIS_SESSION:x"].iter().map(|u| user(u)).collect();
    write(&mut a, &sid("7"), b"x|i:7;", LIFE);
    for u in &evil {
        a.users().unwrap().bind(&id(&sid("7")), Some(u), None, e).unwrap();
        assert_eq!(ids(&mut b, u, LIFE), [sid("7")], "{u:?}");
    }
    for u in &evil[..evil.len() - 1] {
        assert!(ids(&mut b, u, LIFE).is_empty(), "{u:?}");
    }
    // The secret is one per installation, the same for every handle.
    let s1 = a.users().unwrap().secret().unwrap();
    assert_eq!(s1, open().users().unwrap().secret().unwrap());
    assert_ne!(s1, [0; 32]);
    match a.users().unwrap().count_active(Duration::from_secs(600)).unwrap() {
        Count::Sessions(n) => assert!(count && n >= 3, "{n}"),
        Count::NeedsScan => assert!(!count, "this engine counts from an index"),
    }
    for n in ["3", "4", "5", "7"] {
        a.destroy(&id(&sid(n)), None).unwrap();
    }
}
