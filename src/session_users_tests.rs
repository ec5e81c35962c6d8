//! The per-user index rules through `Request` (issue 13), on SQLite and files.

use std::time::Duration;

use super::*;
use crate::dsn::{Engine, FilesOptions, SqliteOptions};
use crate::store::tests::TempDir;

const LIFE: Duration = Duration::from_secs(1440);

fn engines(dir: &TempDir) -> Vec<Engine> {
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    vec![
        Engine::Sqlite(SqliteOptions { path: dir.path().join("s.sqlite"), busy_timeout: Duration::from_secs(5), synchronous_full: false, private_dir: false }),
        Engine::Files(FilesOptions { dir: files, depth: 0, mode: 0o600 }),
    ]
}

fn settings(locking: Locking) -> Settings {
    Settings { locking, lock_wait: Duration::from_millis(2000), ..Settings::default() }
}

fn open(engine: &Engine, s: &Settings) -> Request {
    Request::open(Stack::bare(engine.clone()), s.clone(), LIFE).unwrap()
}

/// One request of session `id`: reads, binds to `user` when given, writes `data`.
fn visit(engine: &Engine, s: &Settings, id: &str, user: Option<&str>, data: &[u8]) {
    let mut r = open(engine, s);
    r.read(id.as_bytes()).unwrap();
    if let Some(u) = user {
        r.set_user(u.as_bytes()).unwrap();
    }
    r.write(id.as_bytes(), data).unwrap();
    let d = r.close();
    assert!(d.is_empty(), "{d:?}");
}

fn data_of(engine: &Engine, id: &str) -> Vec<u8> {
    let mut r = open(engine, &settings(Locking::Off));
    let d = r.read(id.as_bytes()).unwrap();
    r.close();
    d
}

fn listed(engine: &Engine, user: &str) -> Vec<UserSession> {
    let mut r = open(engine, &settings(Locking::Off));
    let l = r.user_sessions(user.as_bytes()).unwrap();
    r.close();
    l
}

#[test]
fn three_jars_listed_with_the_current_flag_and_the_others_logged_out() {
    let dir = TempDir::new("users-jars");
    for engine in engines(&dir) {
        let s = settings(Locking::On);
        for jar in ["jar1", "jar2", "jar3"] {
            visit(&engine, &s, jar, Some("alice"), b"n|i:1;");
        }
        visit(&engine, &s, "jarbob", Some("bob"), b"n|i:1;");
        // Listed from jar2's request: three, jar2 current; handles are not ids.
        let mut r = open(&engine, &s);
        r.read(b"jar2").unwrap();
        let l = r.user_sessions(b"alice").unwrap();
        assert_eq!(l.len(), 3, "{l:?}");
        assert_eq!(l.iter().filter(|x| x.current).count(), 1);
        assert!(l.iter().all(|x| !x.handle.contains("jar")), "{l:?}");
        // Log out the other devices, keeping this one.
        assert_eq!(r.destroy_user_sessions(b"alice", true).unwrap(), 2);
        r.write(b"jar2", b"n|i:2;").unwrap();
        assert!(r.close().is_empty());
        assert_eq!(data_of(&engine, "jar1"), b"", "jar1 gets an empty session");
        assert_eq!(data_of(&engine, "jar3"), b"");
        assert_eq!(data_of(&engine, "jar2"), b"n|i:2;");
        assert_eq!(listed(&engine, "alice").len(), 1);
        assert_eq!(listed(&engine, "bob").len(), 1, "another user's sessions are untouched");
        // One by handle.
        let h = listed(&engine, "bob").remove(0).handle;
        let mut r = open(&engine, &s);
        assert_eq!(r.destroy_session_handle(h.as_bytes()), Ok(true));
        assert_eq!(r.destroy_session_handle(h.as_bytes()), Ok(false), "gone already");
        assert_eq!(r.destroy_session_handle(b"nonsense"), Err(Failed));
        assert!(matches!(&r.take_diags()[..], [Diag { problem: Problem::BadHandle, .. }]));
        r.close();
        assert_eq!(data_of(&engine, "jarbob"), b"");
        // Without keep_current, all of them.
        let mut r = open(&engine, &s);
        r.read(b"jar2").unwrap();
        assert_eq!(r.destroy_user_sessions(b"alice", false).unwrap(), 1);
        r.close();
        assert!(listed(&engine, "alice").is_empty());
    }
}

#[test]
fn user_key_binds_from_the_data_and_unbinds_when_it_goes() {
    let dir = TempDir::new("users-key");
    for engine in engines(&dir) {
        let s = Settings { user_key: Some("uid".into()), ..settings(Locking::On) };
        visit(&engine, &s, "k1", None, b"uid|s:5:\"carol\";n|i:1;");
        visit(&engine, &s, "k2", None, b"uid|i:42;");
        assert_eq!(listed(&engine, "carol").len(), 1);
        assert_eq!(listed(&engine, "42").len(), 1);
        // set_user wins over the key.
        visit(&engine, &s, "k2", Some("dave"), b"uid|i:42;");
        assert!(listed(&engine, "42").is_empty());
        assert_eq!(listed(&engine, "dave").len(), 1);
        visit(&engine, &s, "k1", None, b"n|i:2;");
        assert!(listed(&engine, "carol").is_empty(), "the key removed: unbound");
        // A timestamp update (lazy_write) applies a set_user too.
        let mut r = open(&engine, &s);
        r.read(b"k1").unwrap();
        r.set_user(b"erin").unwrap();
        r.update_timestamp(b"k1").unwrap();
        r.close();
        assert_eq!(listed(&engine, "erin").len(), 1);
    }
}

/// A binding is written only when it changed: with track_client, the client recorded is the one
/// of the request that bound it, not of later requests that kept the binding.
#[test]
fn an_unchanged_binding_is_not_written_again() {
    let dir = TempDir::new("users-unchanged");
    for engine in engines(&dir) {
        let s = Settings { track_client: true, ..settings(Locking::On) };
        let with = |ip: &str| {
            let mut r = open(&engine, &s);
            r.set_client(Some(Client { ip: ip.into(), agent: "ua".into() }));
            r
        };
        let mut r = with("192.0.2.1");
        r.read(b"uc1").unwrap();
        r.set_user(b"frank").unwrap();
        r.write(b"uc1", b"n|i:1;").unwrap();
        r.close();
        for (i, same_user) in [(2, true), (3, false)] {
            let mut r = with(&format!("192.0.2.{i}"));
            r.read(b"uc1").unwrap();
            if same_user {
                r.set_user(b"frank").unwrap();
            }
            r.write(b"uc1", format!("n|i:{i};").as_bytes()).unwrap();
            r.close();
        }
        let l = listed(&engine, "frank");
        assert_eq!(l[0].client.as_ref().map(|c| c.ip.as_str()), Some("192.0.2.1"), "{l:?}");
    }
}

/// A request inside a session (holding its lock, or optimistic) when the session is ended: its late
/// write does not bring it back.
#[test]
fn ended_sessions_stay_ended() {
    let dir = TempDir::new("users-ended");
    for engine in engines(&dir) {
        for locking in [Locking::On, Locking::Optimistic] {
            let s = settings(locking);
            let id = format!("end{locking:?}");
            visit(&engine, &s, &id, Some("gina"), b"n|i:1;");
            let mut inside = open(&engine, &s);
            assert_eq!(inside.read(id.as_bytes()).unwrap(), b"n|i:1;");
            let mut admin = open(&engine, &settings(Locking::Off));
            assert_eq!(admin.destroy_user_sessions(b"gina", false).unwrap(), 1, "{locking:?}");
            admin.close();
            inside.write(id.as_bytes(), b"n|i:2;cart|i:1;").unwrap();
            let d = inside.close();
            assert!(matches!(&d[..], [Diag { level: Level::Notice, problem: Problem::DestroyedMeanwhile { .. } }]), "{locking:?}: {d:?}");
            assert_eq!(data_of(&engine, &id), b"", "{locking:?}: not revived");
            assert!(listed(&engine, "gina").is_empty());
            // The lock is free for the next request.
            let mut next = open(&engine, &settings(Locking::On));
            assert_eq!(next.read(id.as_bytes()).unwrap(), b"");
            next.close();
        }
    }
}

/// session_regenerate_id: the session that replaces a bound one is bound to the same user (the
/// skin carries the binding from the old request to the new one), with or without deleting the old.
#[test]
fn regenerate_keeps_the_binding() {
    let dir = TempDir::new("users-regen");
    for engine in engines(&dir) {
        let s = settings(Locking::On);
        for (old, new, delete) in [("rg1", "rg1new", true), ("rg2", "rg2new", false)] {
            visit(&engine, &s, old, Some("hank"), b"n|i:1;");
            // A later request, which does not call set_user, regenerates.
            let mut r = open(&engine, &s);
            r.read(old.as_bytes()).unwrap();
            let carried = r.binding_to_carry();
            if delete {
                r.destroy(old.as_bytes()).unwrap();
            } else {
                r.write(old.as_bytes(), b"n|i:1;").unwrap();
            }
            r.close();
            let mut n = open(&engine, &s);
            n.inherit(carried);
            n.read(new.as_bytes()).unwrap();
            n.write(new.as_bytes(), b"n|i:1;").unwrap();
            n.close();
        }
        let mut ids: Vec<bool> = listed(&engine, "hank").iter().map(|l| l.current).collect();
        ids.sort();
        assert_eq!(ids.len(), 3, "rg1new, rg2 and rg2new");
        // Unbound sessions carry nothing.
        let mut r = open(&engine, &s);
        r.read(b"plain").unwrap();
        assert_eq!(r.binding_to_carry(), None);
        r.close();
    }
}

#[test]
fn hostile_user_names_are_refused_or_stored_safely() {
    let dir = TempDir::new("users-hostile");
    for engine in engines(&dir) {
        let s = settings(Locking::On);
        let mut r = open(&engine, &s);
        r.read(b"hx").unwrap();
        assert_eq!(r.set_user(b""), Err(Failed));
        assert_eq!(r.set_user(&vec![b'a'; 1 << 20]), Err(Failed));
        assert_eq!(r.user_sessions(b""), Err(Failed));
        let d = r.take_diags();
        assert!(d.iter().all(|d| matches!(d.problem, Problem::BadUser { .. })) && d.len() == 3, "{d:?}");
        r.close();
        for name in [&b"../../etc/passwd"[..], b"\0\xff\n|;", b"sess_hx", b"*"] {
            let mut r = open(&engine, &s);
            r.read(b"hx").unwrap();
            r.set_user(name).unwrap();
            r.write(b"hx", b"n|i:1;").unwrap();
            assert!(r.close().is_empty());
            let mut q = open(&engine, &s);
            assert_eq!(q.user_sessions(name).unwrap().len(), 1);
            q.close();
        }
        assert_eq!(data_of(&engine, "hx"), b"n|i:1;", "the session itself is as written");
    }
    // Nothing outside the store's directory, and nothing but our files in it.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("files")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| n.starts_with("sess_") || n == ".sp-users"), "{names:?}");
}

#[test]
fn count_active_answers_where_an_index_can() {
    let dir = TempDir::new("users-count");
    let engines = engines(&dir);
    let s = settings(Locking::On);
    for id in ["c1", "c2"] {
        for e in &engines {
            visit(e, &s, id, None, b"n|i:1;");
        }
    }
    let mut r = open(&engines[0], &s);
    assert_eq!(r.count_active(Duration::from_secs(60)), Ok(2));
    r.close();
    let mut r = open(&engines[1], &s);
    assert_eq!(r.count_active(Duration::from_secs(60)), Err(Failed));
    assert!(matches!(&r.take_diags()[..], [Diag { problem: Problem::CountNeedsScan { .. }, .. }]));
}

/// With hash_ids on, the index keeps working on hashed ids only: listed with the current flag,
/// ended from another request (and a late write inside one does not revive it), and a session
/// bound before the switch keeps its binding when it is moved under its hash. The engine's index
/// itself (read without the layer) holds no raw id.
#[test]
fn the_index_works_under_hashed_ids_and_holds_none_of_the_ids() {
    use crate::store::layer::{keys::Secret, Layers};
    let dir = TempDir::new("users-hashed");
    let hashed = Layers { hash_ids: Some(Secret::new([5; 32])), ..Layers::NONE };
    let key = Secret::new([5; 32]);
    for engine in engines(&dir) {
        for locking in [Locking::On, Locking::Optimistic] {
            let s = settings(locking);
            let tag = format!("{locking:?}").to_lowercase();
            let open_h = || Request::open(Stack { engine: engine.clone(), layers: hashed.clone() }, s.clone(), LIFE).unwrap();
            let visit_h = |id: &str, user: Option<&str>| {
                let mut r = open_h();
                r.read(id.as_bytes()).unwrap();
                if let Some(u) = user {
                    r.set_user(u.as_bytes()).unwrap();
                }
                r.write(id.as_bytes(), b"n|i:1;").unwrap();
                let d = r.close();
                assert!(d.is_empty(), "{d:?}");
            };
            let ivy = format!("ivy{tag}");
            let (j1, j2, j3, old) = (format!("hj1{tag}"), format!("hj2{tag}"), format!("hj3{tag}"), format!("hjold{tag}"));
            // Bound before hash_ids was turned on, under its raw id.
            visit(&engine, &s, &old, Some(&ivy), b"n|i:1;");
            // Read (and moved) after the switch, by a request that does not bind.
            visit_h(&old, None);
            for j in [&j1, &j2, &j3] {
                visit_h(j, Some(&ivy));
            }
            // The engine's own index, without the layer: hashed ids only.
            let mut bare = crate::store::open(&Stack::bare(engine.clone())).unwrap();
            let mut raw_listed: Vec<String> =
                bare.users().unwrap().list(&User::new(ivy.as_bytes()).unwrap(), Expiry::new(LIFE)).unwrap().into_iter().map(|l| l.id.as_str().to_string()).collect();
            raw_listed.sort();
            let mut want: Vec<String> = [&j1, &j2, &j3, &old].iter().map(|j| crate::store::layer::hashid::hashed(&key, &SessionId::parse(j.as_bytes()).unwrap()).as_str().to_string()).collect();
            want.sort();
            assert_eq!(raw_listed, want, "{locking:?}: the moved session kept its binding, and no raw id is indexed");
            drop(bare);
            // Listed from j2: four, j2 current.
            let mut r = open_h();
            r.read(j2.as_bytes()).unwrap();
            let l = r.user_sessions(ivy.as_bytes()).unwrap();
            assert_eq!((l.len(), l.iter().filter(|x| x.current).count()), (4, 1), "{locking:?}: {l:?}");
            // j3 is inside a request while its user is logged out elsewhere.
            let mut inside = open_h();
            assert_eq!(inside.read(j3.as_bytes()).unwrap(), b"n|i:1;");
            assert_eq!(r.destroy_user_sessions(ivy.as_bytes(), true).unwrap(), 3, "{locking:?}");
            r.write(j2.as_bytes(), b"n|i:2;").unwrap();
            assert!(r.close().is_empty());
            inside.write(j3.as_bytes(), b"n|i:9;").unwrap();
            let d = inside.close();
            assert!(matches!(&d[..], [Diag { problem: Problem::DestroyedMeanwhile { .. }, .. }]), "{locking:?}: {d:?}");
            for (j, want) in [(&j1, &b""[..]), (&j3, b""), (&old, b""), (&j2, b"n|i:2;")] {
                let mut r = open_h();
                assert_eq!(r.read(j.as_bytes()).unwrap(), want, "{locking:?}: {j}");
                r.close();
            }
        }
    }
}

/// During a switch (`migrate_from`), a user's sessions not yet moved are bound in the old store's
/// index: they are listed and ended with the rest ("log out everywhere" must not leave one to be
/// read through later), and a session moved by its first write keeps its binding.
#[test]
fn the_index_covers_both_stores_during_a_migration() {
    use crate::store::layer::Layers;
    let dir = TempDir::new("users-migrate");
    let [new, old] = <[Engine; 2]>::try_from(engines(&dir)).unwrap();
    let s = settings(Locking::On);
    let switched = Stack { engine: new.clone(), layers: Layers { migrate_from: Some(Box::new(old.clone())), ..Layers::NONE } };
    let req = || Request::open(switched.clone(), s.clone(), LIFE).unwrap();
    // Logged in on the old store, twice.
    visit(&old, &s, "mig1", Some("maya"), b"n|i:1;");
    visit(&old, &s, "mig2", Some("maya"), b"n|i:1;");
    // After the switch: mig1 has a request (moved by its write, without set_user), mig3 logs in.
    let mut r = req();
    assert_eq!(r.read(b"mig1").unwrap(), b"n|i:1;");
    r.write(b"mig1", b"n|i:2;").unwrap();
    assert!(r.close().is_empty());
    assert_eq!(data_of(&old, "mig1"), b"", "moved out of the old store");
    assert_eq!(listed(&new, "maya").len(), 1, "the moved session kept its binding in the new store");
    let mut r = req();
    r.read(b"mig3").unwrap();
    r.set_user(b"maya").unwrap();
    r.write(b"mig3", b"n|i:1;").unwrap();
    r.close();
    // Listed from mig3: all three, mig3 current; logging out the others ends mig2 in the old store.
    let mut r = req();
    r.read(b"mig3").unwrap();
    let l = r.user_sessions(b"maya").unwrap();
    assert_eq!((l.len(), l.iter().filter(|x| x.current).count()), (3, 1), "{l:?}");
    assert_eq!(r.destroy_user_sessions(b"maya", true).unwrap(), 2);
    r.write(b"mig3", b"n|i:2;").unwrap();
    assert!(r.close().is_empty());
    assert_eq!(data_of(&old, "mig2"), b"", "not left in the old store to be read through");
    let mut r = req();
    assert_eq!(r.read(b"mig2").unwrap(), b"");
    assert_eq!(r.read(b"mig1").unwrap(), b"");
    r.close();
    assert_eq!(listed(&new, "maya").len(), 1);
}

/// Makes the engine's binding fail while its sessions still write: SQLite refuses any change of
/// `user_id` (a trigger), the files engine finds a plain file where its index directory belongs.
/// Undone by `mend_binding`.
fn break_binding(engine: &Engine) {
    match engine {
        Engine::Sqlite(o) => {
            let c = rusqlite::Connection::open(&o.path).unwrap();
            c.execute_batch("CREATE TRIGGER no_binding BEFORE UPDATE OF user_id ON sessions BEGIN SELECT RAISE(ABORT, 'binding refused by a test'); END;").unwrap();
        }
        Engine::Files(o) => {
            let d = o.dir.join(".sp-users");
            if d.exists() {
                std::fs::rename(&d, o.dir.join("sp-users.kept")).unwrap();
            }
            std::fs::write(&d, b"not a directory").unwrap();
        }
        _ => unreachable!(),
    }
}

fn mend_binding(engine: &Engine) {
    match engine {
        Engine::Sqlite(o) => rusqlite::Connection::open(&o.path).unwrap().execute_batch("DROP TRIGGER no_binding").unwrap(),
        Engine::Files(o) => {
            std::fs::remove_file(o.dir.join(".sp-users")).unwrap();
            let kept = o.dir.join("sp-users.kept");
            if kept.exists() {
                std::fs::rename(kept, o.dir.join(".sp-users")).unwrap();
            }
        }
        _ => unreachable!(),
    }
}

/// A login whose binding fails is not left logged in without its user's index knowing it (where
/// destroy_user_sessions would miss it): the session is ended and the write fails, with a warning
/// naming the cause. An unbinding that fails only warns (the session stays listed, so it can still
/// be ended). Before this rule, the session was written and left unbound.
#[test]
fn a_session_whose_binding_fails_is_ended_not_left_unbound() {
    let dir = TempDir::new("users-bindfail");
    for engine in engines(&dir) {
        for locking in [Locking::On, Locking::Optimistic, Locking::Off] {
            let s = settings(locking);
            let (old, new) = (format!("anon{locking:?}"), format!("new{locking:?}"));
            visit(&engine, &s, &old, None, b"cart|i:1;");
            break_binding(&engine);
            // An existing anonymous session logs in, and a new one is made logged in.
            for id in [&old, &new] {
                let mut r = open(&engine, &s);
                r.read(id.as_bytes()).unwrap();
                r.set_user(b"mallory").unwrap();
                assert_eq!(r.write(id.as_bytes(), b"cart|i:1;login|s:7:\"mallory\";"), Err(Failed), "{engine:?} {locking:?}");
                let d = r.close();
                assert!(
                    matches!(&d[..], [Diag { level: Level::Warning, problem: Problem::NotBound { end_failed: None, .. } }]),
                    "{engine:?} {locking:?}: {d:?}"
                );
                assert_eq!(data_of(&engine, id), b"", "{engine:?} {locking:?} {id}: not left logged in and unbound");
            }
            mend_binding(&engine);
            assert!(listed(&engine, "mallory").is_empty());
            // Once the index works again, the login goes through and is listed.
            visit(&engine, &s, &new, Some("mallory"), b"login|s:7:\"mallory\";");
            assert_eq!(listed(&engine, "mallory").len(), 1, "{engine:?} {locking:?}");
            // A failed unbinding (user_key removed) warns and keeps the session, which stays listed.
            let sk = Settings { user_key: Some("login".into()), ..settings(locking) };
            visit(&engine, &sk, &old, None, b"login|s:7:\"mallory\";");
            assert_eq!(listed(&engine, "mallory").len(), 2);
            break_binding(&engine);
            let mut r = open(&engine, &sk);
            r.read(old.as_bytes()).unwrap();
            r.write(old.as_bytes(), b"cart|i:2;").unwrap();
            let d = r.close();
            assert!(matches!(&d[..], [Diag { level: Level::Warning, problem: Problem::Storage { op: Op::Index, .. } }]), "{d:?}");
            assert_eq!(data_of(&engine, &old), b"cart|i:2;");
            mend_binding(&engine);
            let mut admin = open(&engine, &settings(Locking::Off));
            assert_eq!(admin.destroy_user_sessions(b"mallory", false).unwrap(), 2, "{engine:?} {locking:?}");
            admin.close();
        }
    }
}

/// user_key on sessions whose data already names their user but that were never bound (written
/// before the directive was set, or by another handler in a migration): their next write, or
/// timestamp update, binds them, so that destroy_user_sessions() finds them. Before, an unchanged
/// value counted as an unchanged binding, and such a session stayed unbound for good.
#[test]
fn user_key_binds_a_session_whose_data_named_its_user_before() {
    let dir = TempDir::new("users-key-old");
    for engine in engines(&dir) {
        let plain = settings(Locking::On);
        let s = Settings { user_key: Some("uid".into()), ..settings(Locking::On) };
        visit(&engine, &plain, "old1", None, b"uid|s:4:\"gail\";n|i:1;");
        visit(&engine, &plain, "old2", None, b"uid|s:4:\"gail\";n|i:1;");
        assert!(listed(&engine, "gail").is_empty());
        // A write with the key unchanged, and a timestamp update of unchanged data.
        visit(&engine, &s, "old1", None, b"uid|s:4:\"gail\";n|i:2;");
        let mut r = open(&engine, &s);
        r.read(b"old2").unwrap();
        r.update_timestamp(b"old2").unwrap();
        assert!(r.close().is_empty());
        assert_eq!(listed(&engine, "gail").len(), 2, "{engine:?}");
        let mut admin = open(&engine, &settings(Locking::Off));
        assert_eq!(admin.destroy_user_sessions(b"gail", false).unwrap(), 2);
        admin.close();
        assert_eq!(data_of(&engine, "old1"), b"");
    }
}
