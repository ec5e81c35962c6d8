#![deny(clippy::missing_trait_methods)]
//! Read-through migration (`session_proxy.migrate_from`): wraps the new store and holds the old one.
//!
//! - Reads (`load`, `lock_and_load`) ask the new store first; a session it lacks is read from the old
//!   store. Its version is the old store's, so the first write of such a session is a create in the
//!   new store (`Expect::Absent`, or `Held(None)` under the lock), then a delete from the old one.
//!   A lazy-write refresh (`touch`) of such a session moves it the same way, with the data read.
//! - `exists` (strict mode) answers true when either store holds the session; `destroy` removes it
//!   from both. When the old store can't be told to (down, or failing), the session is marked gone
//!   in the new store (a record `gone-<40 hex of SHA-256(id)>`, kept for gc_maxlifetime): a later
//!   read that finds the old copy drops it and the mark instead of reading it back, so a logout
//!   made while the old store was down is not undone when it comes back. "Log out everywhere"
//!   (`Users::end`) does the same.
//! - Locking: the lock is taken in the new store, then in the old one, each with the engine's own
//!   lock, so the old handler still running on servers not yet switched excludes this request where
//!   the engines lock alike (PHP files' flock = our files engine's; phpredis' `<key>_LOCK` = our
//!   Redis engine's; php-memcached's `lock.<key>` = our Memcached engine's with the default
//!   lock_placement). When the old lock is busy, the new one is released and the attempt answers
//!   Busy; the wait is then the old store's.
//! - An old store that fails (down, timeout, anything) is dropped for the rest of the request after
//!   one warning (`take_warnings`); the request goes on with the new store alone. The next request
//!   (`Event::Started`) tries again.
//! - The metrics registry counts `old_store_reads` (sessions served from the old store) and
//!   `migrated` (sessions moved into the new store), in the new engine's row.

use std::time::{Duration, Instant};

use crate::id::SessionId;
use crate::lock::Token;
use crate::metrics::{Counter, EngineKind, Registry};
use crate::store::users::{Client, Count, Listed, User, Users};
use crate::store::{Acquire, Busy, Caution, Collect, Engine, Event, Expect, Expiry, Loaded, Pooled, Result, Store, StoreError, Touched, Version, Written};

/// A session read from the old store and not yet moved.
struct FromOld {
    id: SessionId,
    version: Version,
    data: Vec<u8>,
}

pub struct Migrate {
    new: Box<dyn Store>,
    /// The old store's engine (opened lazily, once per request at most when it fails).
    from: Engine,
    old: Option<Box<dyn Store>>,
    /// The old store failed or could not be opened in this request: not tried again until the next.
    old_down: bool,
    /// The session whose lock this handle holds in the old store, with its owner.
    old_locked: Option<(SessionId, Token)>,
    /// The last lock attempt was refused by the old store (so the wait is the old store's).
    busy_in_old: bool,
    from_old: Option<FromOld>,
    warnings: Vec<Caution>,
    counters: Option<(&'static Registry, EngineKind)>,
    /// The session lifetime of the last call that named one: how long a `gone` mark is kept.
    exp: Option<Expiry>,
}

/// The tag of the mark of a session destroyed while the old store kept its copy (`SessionId::marker`).
const GONE: &str = "gone";

/// How long a `gone` mark is kept when no call of this handle named a lifetime yet (a framework's
/// destroy before any read): PHP's default session.gc_maxlifetime.
const GONE_LIFE_UNKNOWN: Expiry = Expiry::new(Duration::from_secs(1440));

impl Migrate {
    pub fn new(new: Box<dyn Store>, from: Engine, counters: Option<(&'static Registry, EngineKind)>) -> Self {
        Migrate {
            new,
            from,
            old: None,
            old_down: false,
            old_locked: None,
            busy_in_old: false,
            from_old: None,
            warnings: Vec::new(),
            counters,
            exp: None,
        }
    }

    fn count(&self, c: Counter) {
        if let Some((r, e)) = self.counters {
            r.add(e, c, 1);
        }
    }

    /// The old store, opened if needed; None when it is down for this request.
    fn old(&mut self) -> Option<&mut Box<dyn Store>> {
        if self.old.is_none() && !self.old_down {
            match crate::store::connect(&self.from) {
                Ok(s) => self.old = Some(s),
                Err(e) => self.fail_old(e),
            }
        }
        self.old.as_mut()
    }

    /// The old store failed: one warning, then the request goes on without it.
    fn fail_old(&mut self, e: StoreError) {
        self.warnings.push(Caution::OldStoreSkipped(e));
        self.old = None;
        self.old_down = true;
        self.old_locked = None;
    }

    /// Runs `f` on the old store; None when it is down or `f` failed (then it is dropped).
    fn on_old<T>(&mut self, f: impl FnOnce(&mut dyn Store) -> Result<T>) -> Option<T> {
        let old = self.old()?;
        match f(old.as_mut()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail_old(e);
                None
            }
        }
    }

    /// A session the new store lacks, read from the old one (remembered for its first write), unless
    /// the new store marks it gone (`purge_gone`): then there is none.
    fn read_old(&mut self, id: &SessionId, loaded: Option<Loaded>, exp: Expiry) -> Result<Option<Loaded>> {
        let Some(l) = loaded else { return Ok(None) };
        if self.purge_gone(id, exp)? {
            return Ok(None);
        }
        self.count(Counter::OldStoreReads);
        self.from_old = Some(FromOld { id: id.clone(), version: l.version, data: l.data.clone() });
        Ok(Some(l))
    }

    /// Whether the new store marks `id` gone: destroyed while the old store kept the copy found
    /// there now. That copy goes (with our lock on it, if this handle holds one), then the mark; a
    /// failure leaves both for a later read.
    fn purge_gone(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        let mark = id.marker(GONE);
        if self.new.load(&mark, exp)?.is_none() {
            return Ok(false);
        }
        let owner = self.old_locked.take_if(|(held, _)| held == id).map(|(_, o)| o);
        if self.destroy_old(id, owner.as_ref()) {
            self.new.destroy(&mark, None)?;
        }
        Ok(true)
    }

    /// Destroys `id` in the old store: false when it could not be told, or left a copy (Memcached
    /// replicas on a server that is down: `Caution::CopiesLeft`).
    fn destroy_old(&mut self, id: &SessionId, owner: Option<&Token>) -> bool {
        self.on_old(|o| o.destroy(id, owner)).is_some() && !self.old_left_copies()
    }

    /// Whether the old store's last call left copies behind (`Caution::CopiesLeft`); its warnings
    /// are passed on.
    fn old_left_copies(&mut self) -> bool {
        let cautions = self.old.as_mut().map(|o| o.take_warnings()).unwrap_or_default();
        let left = cautions.iter().any(|c| matches!(c, Caution::CopiesLeft { .. }));
        self.warnings.extend(cautions);
        left
    }

    /// Marks `id` gone in the new store: its copy in the old store could not be removed.
    fn mark_gone(&mut self, id: &SessionId, exp: Expiry) -> Result<()> {
        let stamp = format!("{:.6}", crate::store::unix_now());
        self.new.save(&id.marker(GONE), stamp.as_bytes(), Expect::Any, None, exp).map(drop)
    }

    /// Releases the old store's lock on `id` if this handle holds it; `delete`: the session too.
    /// False when the old store could not be told (it is down, or failed).
    fn release_old(&mut self, id: &SessionId, delete: bool) -> bool {
        let held = self.old_locked.take_if(|(held, _)| held == id);
        match (held, delete) {
            (Some((_, owner)), true) => self.destroy_old(id, Some(&owner)),
            (None, true) => self.destroy_old(id, None),
            (Some((_, owner)), false) => self.on_old(|o| o.unlock(id, &owner)).is_some(),
            (None, false) => true,
        }
    }

    /// A session moved into the new store keeps its user: the old store's binding (if its engine
    /// keeps an index) is written into the new store's index before the old copy goes, so that "log
    /// out everywhere" still finds it. A failure is a warning, as any binding's is.
    fn carry_binding(&mut self, id: &SessionId, exp: Expiry) {
        let Some(user) = self.on_old(|o| o.users().map_or(Ok(None), |u| u.bound(id, exp))).flatten() else { return };
        let sid = self.new.storage_id(id);
        if let Some(Err(e)) = self.new.users().map(|u| u.bind(&sid, Some(&user), None, exp)) {
            self.warnings.push(Caution::OldStoreSkipped(e));
        }
    }

    /// The session `id` read from the old store at `expect`, if that is what the write refers to.
    fn moving(&mut self, id: &SessionId, expect: Expect) -> bool {
        let Some(f) = self.from_old.as_ref().filter(|f| &f.id == id) else { return false };
        match expect {
            Expect::Version(v) | Expect::Held(Some(v)) => v == f.version,
            Expect::Any => true,
            Expect::Absent | Expect::Held(None) => false,
        }
    }
}

impl Pooled for Migrate {
    fn reusable(&self) -> bool {
        self.new.reusable()
    }

    fn still_valid(&mut self) -> bool {
        if let Some(old) = self.old.as_mut() {
            if !old.still_valid() || !old.reusable() {
                self.old = None;
            }
        }
        self.new.still_valid()
    }
}

impl Collect for Migrate {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        let n = self.new.collector().map_or(Ok(0), |c| c.gc(exp))?;
        let old = self.on_old(|o| o.collector().map_or(Ok(0), |c| c.gc(exp))).unwrap_or(0);
        Ok(n + old)
    }
}

impl Store for Migrate {
    fn describe(&self) -> String {
        self.new.describe()
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        self.exp = Some(exp);
        if let Some(l) = self.new.load(id, exp)? {
            self.from_old = None;
            return Ok(Some(l));
        }
        let old = self.on_old(|o| o.load(id, exp)).flatten();
        self.read_old(id, old, exp)
    }

    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<Acquire> {
        self.busy_in_old = false;
        self.exp = Some(exp);
        let data = match self.new.lock_and_load(id, owner, lock_expire, exp)? {
            Acquire::Busy(b) => return Ok(Acquire::Busy(b)),
            Acquire::Locked(data) => data,
        };
        if self.old_locked.as_ref().is_some_and(|(held, _)| held == id) {
            // session_reset(): still ours in the old store too.
            if data.is_some() {
                return Ok(Acquire::Locked(data));
            }
            let old = self.on_old(|o| o.load(id, exp)).flatten();
            return self.read_old(id, old, exp).map(Acquire::Locked);
        }
        match self.on_old(|o| o.lock_and_load(id, owner, lock_expire, exp)) {
            Some(Acquire::Busy(b)) => {
                // The old handler (or one of ours not yet switched) holds it: wait for it, holding nothing.
                self.new.unlock(id, owner)?;
                self.busy_in_old = true;
                Ok(Acquire::Busy(b))
            }
            Some(Acquire::Locked(old)) => {
                self.old_locked = Some((id.clone(), owner.clone()));
                match data {
                    Some(l) => {
                        self.from_old = None;
                        Ok(Acquire::Locked(Some(l)))
                    }
                    None => self.read_old(id, old, exp).map(Acquire::Locked),
                }
            }
            None => Ok(Acquire::Locked(data)),
        }
    }

    fn wait_for_release(&mut self, id: &SessionId, busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        if self.busy_in_old {
            // An old store down since: the next attempt goes on without it.
            self.on_old(|o| o.wait_for_release(id, busy, deadline, attempt));
            return Ok(());
        }
        self.new.wait_for_release(id, busy, deadline, attempt)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        if self.busy_in_old {
            return Ok(self.on_old(|o| o.lock_holder(id)).flatten());
        }
        self.new.lock_holder(id)
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        self.exp = Some(exp);
        let moving = self.moving(id, expect);
        let expect = match expect {
            // The version read is the old store's: the write creates the session in the new one.
            Expect::Version(_) if moving => Expect::Absent,
            Expect::Held(_) if moving => Expect::Held(None),
            e => e,
        };
        let r = self.new.save(id, data, expect, owner, exp);
        let done = matches!(r, Ok(Written::Done(_)));
        if done && moving {
            self.from_old = None;
            self.count(Counter::Migrated);
            self.carry_binding(id, exp);
        }
        // Moved (or written anew while the old store still had it): the old copy goes, with our lock.
        self.release_old(id, done && moving);
        r
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched> {
        self.exp = Some(exp);
        if let Some(f) = self.from_old.take_if(|f| &f.id == id) {
            // Unchanged data read from the old store: moved now, so it does not stay behind.
            let expect = if owner.is_some() { Expect::Held(Some(f.version)) } else { Expect::Version(f.version) };
            self.from_old = Some(FromOld { id: f.id, version: f.version, data: Vec::new() });
            return match self.save(id, &f.data, expect, owner, exp)? {
                Written::Done(_) | Written::Conflict(_) => Ok(Touched::Done),
                Written::LockLost => Ok(Touched::LockLost),
            };
        }
        let r = self.new.touch(id, owner, exp);
        self.release_old(id, false);
        r
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        let r = self.new.unlock(id, owner);
        if self.old_locked.as_ref().is_some_and(|(held, _)| held == id) {
            self.release_old(id, false);
        } else if self.busy_in_old {
            // Breaking a dead holder's lock in the old store (`lock_holder` asked it).
            self.on_old(|o| o.unlock(id, owner));
        }
        r
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        self.from_old = None;
        let r = self.new.destroy(id, owner);
        if self.release_old(id, true) {
            return r;
        }
        // The old store may keep a copy: no read may fall back to it.
        r.and_then(|()| self.mark_gone(id, self.exp.unwrap_or(GONE_LIFE_UNKNOWN)))
    }

    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        self.exp = Some(exp);
        if self.new.exists(id, exp)? {
            return Ok(true);
        }
        if !self.on_old(|o| o.exists(id, exp)).unwrap_or(false) {
            return Ok(false);
        }
        Ok(!self.purge_gone(id, exp)?)
    }

    fn collector(&mut self) -> Option<&mut dyn Collect> {
        Some(self)
    }

    fn scanner(&mut self) -> Option<&mut dyn crate::store::Scan> {
        self.new.scanner()
    }

    /// None: a read must fall back to the old store and a create move the session, one by one.
    fn bulk(&mut self) -> Option<&mut dyn crate::store::Bulk> {
        None
    }

    fn storage_id(&self, id: &SessionId) -> SessionId {
        self.new.storage_id(id)
    }

    /// The new store's per-user index, with the old store's (if its engine keeps one) read beside
    /// it during the switch: see `impl Users for Migrate`.
    fn users(&mut self) -> Option<&mut dyn Users> {
        if self.new.users().is_some() {
            Some(self)
        } else {
            None
        }
    }

    fn round_trips(&self) -> u64 {
        self.new.round_trips() + self.old.as_ref().map_or(0, |o| o.round_trips())
    }

    fn event(&mut self, e: &Event) {
        if *e == Event::Started {
            // A new request: an old store that was down is tried again, and nothing is remembered.
            self.old_down = false;
            self.from_old = None;
            self.old_locked = None;
            self.busy_in_old = false;
        }
        self.new.event(e);
    }

    fn take_warnings(&mut self) -> Vec<Caution> {
        let mut w = std::mem::take(&mut self.warnings);
        if let Some(o) = self.old.as_mut() {
            w.extend(o.take_warnings());
        }
        w.extend(self.new.take_warnings());
        w
    }
}

/// During the switch a user's sessions are in two indexes: those not yet moved are bound in the old
/// store's. Bindings are written into the new store's; lists and ends cover both, so that "log out
/// everywhere" also ends the sessions that would otherwise be read through later. An old store that
/// is down is skipped with its one warning (as for reads).
impl Users for Migrate {
    fn bound(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<User>> {
        if let Some(u) = self.new.users().map_or(Ok(None), |u| u.bound(id, exp))? {
            return Ok(Some(u));
        }
        Ok(self.on_old(|o| o.users().map_or(Ok(None), |u| u.bound(id, exp))).flatten())
    }

    fn bind(&mut self, id: &SessionId, user: Option<&User>, client: Option<&Client>, exp: Expiry) -> Result<()> {
        self.new.users().map_or(Ok(()), |u| u.bind(id, user, client, exp))
    }

    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>> {
        let mut listed = self.new.users().map_or(Ok(Vec::new()), |u| u.list(user, exp))?;
        let old = self.on_old(|o| o.users().map_or(Ok(Vec::new()), |u| u.list(user, exp))).unwrap_or_default();
        for l in old {
            if !listed.iter().any(|n| n.id == l.id) {
                listed.push(l);
            }
        }
        Ok(listed)
    }

    /// Ends `id` in the new store and in the old one: in its index, or, where its engine keeps none,
    /// by destroying its copy (a copy left by a move whose delete failed). An old store that can't be
    /// told, or leaves a copy, leaves the session marked gone, as `destroy` does.
    fn end(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        let in_new = self.new.users().map_or(Ok(false), |u| u.end(id, exp))?;
        let in_old = self.on_old(|o| match o.users() {
            Some(u) => u.end(id, exp),
            None => o.destroy(id, None).map(|()| false),
        });
        if in_old.is_none() || self.old_left_copies() {
            self.mark_gone(id, exp)?;
        }
        Ok(in_new || in_old.unwrap_or(false))
    }

    fn count_active(&mut self, within: Duration) -> Result<Count> {
        self.new.users().map_or(Ok(Count::NeedsScan), |u| u.count_active(within))
    }

    fn secret(&mut self) -> Result<[u8; 32]> {
        self.new.users().map_or(Ok([0; 32]), |u| u.secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsn::{FilesOptions, SqliteOptions};
    use crate::store::tests::{conformance, id, TempDir};

    const LIFE: Expiry = Expiry::new(Duration::from_secs(600));
    const EXPIRE: Duration = Duration::from_secs(30);

    fn sqlite(dir: &TempDir) -> Engine {
        Engine::Sqlite(SqliteOptions {
            path: dir.path().join("new.sqlite"),
            busy_timeout: Duration::from_secs(5),
            synchronous_full: false,
            private_dir: false,
        })
    }

    fn files(dir: &TempDir) -> Engine {
        let d = dir.path().join("old");
        std::fs::create_dir_all(&d).unwrap();
        Engine::Files(FilesOptions { dir: d, depth: 0, mode: 0o600 })
    }

    fn registry() -> &'static Registry {
        Box::leak(Box::new(Registry::local()))
    }

    fn layered(new: &Engine, old: &Engine, counters: &'static Registry) -> Migrate {
        let m = Migrate::new(crate::store::connect(new).unwrap(), old.clone(), Some((counters, EngineKind::Sqlite)));
        let mut m = m;
        m.event(&Event::Started);
        m
    }

    fn put(s: &mut dyn Store, sid: &SessionId, data: &[u8]) {
        assert!(matches!(s.save(sid, data, Expect::Any, None, LIFE).unwrap(), Written::Done(_)));
    }

    fn data(s: &mut dyn Store, sid: &SessionId) -> Option<Vec<u8>> {
        s.load(sid, LIFE).unwrap().map(|l| l.data)
    }

    fn counted(r: &Registry, c: Counter) -> u64 {
        r.snapshot().engines[EngineKind::Sqlite as usize].get(c)
    }

    #[test]
    fn conformance_over_sqlite_migrating_from_files() {
        let dir = TempDir::new("layer-migrate-conformance");
        let (new, old) = (sqlite(&dir), files(&dir));
        let open = || Box::new(layered(&new, &old, registry())) as Box<dyn Store>;
        // gc of SQLite: one statement (the layer adds the old store's, on an empty directory).
        assert!(!conformance(open));
    }

    #[test]
    fn locked_read_falls_back_and_the_first_write_moves_the_session() {
        let dir = TempDir::new("layer-migrate-move");
        let (new, old) = (sqlite(&dir), files(&dir));
        let mut before = crate::store::connect(&old).unwrap();
        let (a, b) = (id("userA"), id("userB"));
        put(before.as_mut(), &a, b"user|s:1:\"a\";");
        put(before.as_mut(), &b, b"user|s:1:\"b\";");
        let r = registry();
        let mut m = layered(&new, &old, r);
        let t = Token::new();
        let Acquire::Locked(Some(l)) = m.lock_and_load(&a, &t, EXPIRE, LIFE).unwrap() else { panic!("not read from the old store") };
        assert_eq!(l.data, b"user|s:1:\"a\";");
        assert_eq!(counted(r, Counter::OldStoreReads), 1);
        // Not moved by the read alone.
        assert_eq!(data(before.as_mut(), &a).as_deref(), Some(&b"user|s:1:\"a\";"[..]));
        let w = m.save(&a, b"user|s:1:\"a\";n|i:1;", Expect::Held(Some(l.version)), Some(&t), LIFE).unwrap();
        assert!(matches!(w, Written::Done(_)), "{w:?}");
        assert_eq!(counted(r, Counter::Migrated), 1);
        assert_eq!(data(before.as_mut(), &a), None, "deleted from the old store");
        let mut after = crate::store::connect(&new).unwrap();
        assert_eq!(data(after.as_mut(), &a).as_deref(), Some(&b"user|s:1:\"a\";n|i:1;"[..]));
        // Both locks were released by the write: another request takes them at once.
        let mut other = layered(&new, &old, r);
        let t2 = Token::new();
        assert!(matches!(other.lock_and_load(&a, &t2, EXPIRE, LIFE).unwrap(), Acquire::Locked(Some(_))));
        other.unlock(&a, &t2).unwrap();

        // Unlocked reads (locking off / optimistic): the version read is the old store's.
        m.event(&Event::Started);
        let l = m.load(&b, LIFE).unwrap().expect("from the old store");
        assert!(matches!(m.save(&b, b"n|i:2;", Expect::Version(l.version), None, LIFE).unwrap(), Written::Done(_)));
        assert_eq!(data(before.as_mut(), &b), None);
        assert_eq!(data(after.as_mut(), &b).as_deref(), Some(&b"n|i:2;"[..]));
        assert_eq!((counted(r, Counter::OldStoreReads), counted(r, Counter::Migrated)), (2, 2));
        assert!(m.take_warnings().is_empty());
    }

    #[test]
    fn touch_moves_an_unchanged_session() {
        let dir = TempDir::new("layer-migrate-touch");
        let (new, old) = (sqlite(&dir), files(&dir));
        let mut before = crate::store::connect(&old).unwrap();
        let a = id("lazy1");
        put(before.as_mut(), &a, b"k|i:7;");
        let r = registry();
        let mut m = layered(&new, &old, r);
        let t = Token::new();
        assert!(matches!(m.lock_and_load(&a, &t, EXPIRE, LIFE).unwrap(), Acquire::Locked(Some(_))));
        assert_eq!(m.touch(&a, Some(&t), LIFE).unwrap(), Touched::Done);
        assert_eq!(data(before.as_mut(), &a), None);
        assert_eq!(data(crate::store::connect(&new).unwrap().as_mut(), &a).as_deref(), Some(&b"k|i:7;"[..]));
        assert_eq!(counted(r, Counter::Migrated), 1);
    }

    #[test]
    fn exists_in_either_and_destroy_removes_both() {
        let dir = TempDir::new("layer-migrate-destroy");
        let (new, old) = (sqlite(&dir), files(&dir));
        let mut before = crate::store::connect(&old).unwrap();
        let mut after = crate::store::connect(&new).unwrap();
        let (a, b, c) = (id("inold"), id("innew"), id("nowhere"));
        put(before.as_mut(), &a, b"x");
        put(after.as_mut(), &b, b"y");
        put(before.as_mut(), &b, b"stale copy");
        let mut m = layered(&new, &old, registry());
        assert!(m.exists(&a, LIFE).unwrap() && m.exists(&b, LIFE).unwrap());
        assert!(!m.exists(&c, LIFE).unwrap());
        // The new store's copy wins over the old one's.
        assert_eq!(data(&mut m, &b).as_deref(), Some(&b"y"[..]));
        m.destroy(&a, None).unwrap();
        m.destroy(&b, None).unwrap();
        assert_eq!((data(before.as_mut(), &a), data(before.as_mut(), &b), data(after.as_mut(), &b)), (None, None, None));
        assert!(!m.exists(&a, LIFE).unwrap());
    }

    #[test]
    fn a_destroy_the_old_store_refused_is_not_read_back_later() {
        let dir = TempDir::new("layer-migrate-gone");
        let (new, old) = (sqlite(&dir), files(&dir));
        let mut before = crate::store::connect(&old).unwrap();
        let a = id("loggedout");
        put(before.as_mut(), &a, b"user|s:5:\"alice\";");
        // The old handler, still running on a server not yet switched, holds the session's lock: the
        // files engine refuses to delete a file another request holds.
        let th = Token::new();
        assert!(matches!(before.lock_and_load(&a, &th, EXPIRE, LIFE).unwrap(), Acquire::Locked(Some(_))));
        let mut m = layered(&new, &old, registry());
        assert_eq!(data(&mut m, &a).as_deref(), Some(&b"user|s:5:\"alice\";"[..]), "read through");
        m.destroy(&a, None).unwrap();
        let w = m.take_warnings();
        assert!(matches!(&w[..], [Caution::OldStoreSkipped(e)] if e.to_string().contains("locked by another request")), "{w:?}");
        let mut after = crate::store::connect(&new).unwrap();
        assert!(data(after.as_mut(), &a.marker(GONE)).is_some(), "marked gone in the new store");
        before.unlock(&a, &th).unwrap();
        assert!(data(before.as_mut(), &a).is_some(), "the old copy is still there");

        // The next request neither reads it back nor takes it as existing; the old copy goes, then the mark.
        m.event(&Event::Started);
        assert!(!m.exists(&a, LIFE).unwrap(), "strict mode took a destroyed session's id");
        assert_eq!(data(before.as_mut(), &a), None, "the old copy was not removed");
        assert_eq!(data(after.as_mut(), &a.marker(GONE)), None, "the mark outlived the old copy");
        assert_eq!(data(&mut m, &a), None);
        assert!(m.take_warnings().is_empty());

        // Under the lock: the old copy found is dropped with the lock taken on it, and the session
        // is new (its write creates it in the new store and leaves nothing held in the old one).
        let b = id("loggedout2");
        put(before.as_mut(), &b, b"user|s:3:\"bob\";");
        m.event(&Event::Started);
        m.mark_gone(&b, LIFE).unwrap();
        let t = Token::new();
        assert!(matches!(m.lock_and_load(&b, &t, EXPIRE, LIFE).unwrap(), Acquire::Locked(None)));
        assert_eq!(data(before.as_mut(), &b), None);
        assert!(matches!(m.save(&b, b"fresh|b:1;", Expect::Held(None), Some(&t), LIFE).unwrap(), Written::Done(_)));
        assert!(matches!(before.lock_and_load(&b, &Token::new(), EXPIRE, LIFE).unwrap(), Acquire::Locked(None)), "the old lock was left held");
        assert_eq!(data(after.as_mut(), &b).as_deref(), Some(&b"fresh|b:1;"[..]));
    }

    #[test]
    fn a_destroy_while_the_old_store_is_down_marks_the_session_gone() {
        let dir = TempDir::new("layer-migrate-gone-down");
        let new = sqlite(&dir);
        let old = crate::dsn::parse("redis://127.0.0.1:1/0?timeout=0.5", dir.path()).unwrap();
        let mut m = layered(&new, &old, registry());
        let (a, t) = (id("downout"), Token::new());
        assert!(matches!(m.lock_and_load(&a, &t, EXPIRE, LIFE).unwrap(), Acquire::Locked(None)));
        assert!(matches!(m.save(&a, b"user|s:1:\"c\";", Expect::Held(None), Some(&t), LIFE).unwrap(), Written::Done(_)));
        m.event(&Event::Started);
        assert!(m.load(&a, LIFE).unwrap().is_some());
        m.destroy(&a, None).unwrap();
        let mut after = crate::store::connect(&new).unwrap();
        assert_eq!(data(after.as_mut(), &a), None);
        assert!(data(after.as_mut(), &a.marker(GONE)).is_some(), "no mark: the old store's copy could be read back");

        // "Log out everywhere" ends a session the same way.
        let (b, t) = (id("downout2"), Token::new());
        assert!(matches!(m.lock_and_load(&b, &t, EXPIRE, LIFE).unwrap(), Acquire::Locked(None)));
        assert!(matches!(m.save(&b, b"user|s:1:\"c\";", Expect::Held(None), Some(&t), LIFE).unwrap(), Written::Done(_)));
        let user = User::new(b"carol").unwrap();
        m.users().expect("an index").bind(&b, Some(&user), None, LIFE).unwrap();
        assert!(m.users().unwrap().end(&b, LIFE).unwrap());
        assert_eq!(data(after.as_mut(), &b), None);
        assert!(data(after.as_mut(), &b.marker(GONE)).is_some(), "ended without a mark");
    }

    #[test]
    fn log_out_everywhere_destroys_the_copy_of_an_old_store_without_an_index() {
        // Symfony's PdoSessionHandler table keeps no users: a copy a failed move left there would be
        // read back once the new store's session was ended.
        let dir = TempDir::new("layer-migrate-end-symfony");
        let new = sqlite(&dir);
        let (pg, _) = crate::store::pgsql::tests::dsn("&schema=symfony");
        let old = crate::dsn::parse(&format!("pgsql://{pg}"), dir.path()).unwrap();
        let mut before = crate::store::connect(&old).unwrap();
        assert!(before.users().is_none());
        let a = id("sfleftover1");
        put(before.as_mut(), &a, b"user|s:4:\"dave\";");
        let mut after = crate::store::connect(&new).unwrap();
        put(after.as_mut(), &a, b"user|s:4:\"dave\";n|i:2;");
        after.users().unwrap().bind(&a, Some(&User::new(b"dave").unwrap()), None, LIFE).unwrap();
        let mut m = layered(&new, &old, registry());
        assert!(m.users().unwrap().end(&a, LIFE).unwrap());
        assert_eq!((data(after.as_mut(), &a), data(before.as_mut(), &a)), (None, None));
        assert_eq!(data(&mut m, &a), None, "read back from the old store");
        assert!(m.take_warnings().is_empty());
    }

    #[test]
    fn an_old_store_that_leaves_a_copy_marks_the_session_gone() {
        // Memcached replicas over a live server and one that refuses: a delete reaches the live copy
        // only, and says so (Caution::CopiesLeft).
        let dir = TempDir::new("layer-migrate-left");
        let new = sqlite(&dir);
        let port = std::env::var("SP_MEMCACHED_PORT1").expect("SP_MEMCACHED_PORT1 (make test starts memcached)");
        let dsn = format!("memcached://127.0.0.1:{port},127.0.0.1:1?replicas=1&prefix=left{}.", Token::new().as_str());
        let old = crate::dsn::parse(&dsn, dir.path()).unwrap();
        let mut m = layered(&new, &old, registry());
        let mut after = crate::store::connect(&new).unwrap();
        let (a, b) = (id("leftcopy1"), id("leftcopy2"));
        for s in [&a, &b] {
            put(after.as_mut(), s, b"user|s:4:\"hank\";");
        }
        after.users().unwrap().bind(&b, Some(&User::new(b"hank").unwrap()), None, LIFE).unwrap();
        assert!(data(&mut m, &a).is_some());
        m.destroy(&a, None).unwrap();
        assert!(m.users().unwrap().end(&b, LIFE).unwrap());
        for s in [&a, &b] {
            assert_eq!(data(after.as_mut(), s), None);
            assert!(data(after.as_mut(), &s.marker(GONE)).is_some(), "no mark for {s:?}: a copy left on 127.0.0.1:1 could be read back");
        }
        let w = m.take_warnings();
        assert!(w.iter().filter(|c| matches!(c, Caution::CopiesLeft { at } if at == "127.0.0.1:1")).count() >= 2, "{w:?}");
    }

    #[test]
    fn the_old_stores_lock_excludes_and_is_waited_for() {
        let dir = TempDir::new("layer-migrate-lock");
        let (new, old) = (sqlite(&dir), files(&dir));
        let mut holder = crate::store::connect(&old).unwrap();
        let a = id("heldold");
        put(holder.as_mut(), &a, b"v|i:1;");
        let th = Token::new();
        assert!(matches!(holder.lock_and_load(&a, &th, EXPIRE, LIFE).unwrap(), Acquire::Locked(Some(_))));
        let mut m = layered(&new, &old, registry());
        let t = Token::new();
        let Acquire::Busy(busy) = m.lock_and_load(&a, &t, EXPIRE, LIFE).unwrap() else { panic!("the old lock did not exclude") };
        // The new store's lock was let go while waiting: another client of the new store gets it.
        let mut plain = crate::store::connect(&new).unwrap();
        let tp = Token::new();
        assert!(matches!(plain.lock_and_load(&a, &tp, EXPIRE, LIFE).unwrap(), Acquire::Locked(None)));
        plain.unlock(&a, &tp).unwrap();
        // The wait is the old store's (files: woken by the kernel when the flock goes).
        let released = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            holder.unlock(&a, &th).unwrap();
        });
        let started = Instant::now();
        m.wait_for_release(&id("heldold"), &busy, started + Duration::from_secs(5), 0).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "waited to the deadline");
        released.join().unwrap();
        assert!(matches!(m.lock_and_load(&id("heldold"), &t, EXPIRE, LIFE).unwrap(), Acquire::Locked(Some(_))));
        // Ours now excludes the old handler's side.
        let mut later = crate::store::connect(&old).unwrap();
        assert!(matches!(later.lock_and_load(&id("heldold"), &Token::new(), EXPIRE, LIFE).unwrap(), Acquire::Busy(_)));
        m.unlock(&id("heldold"), &t).unwrap();
        assert!(matches!(later.lock_and_load(&id("heldold"), &Token::new(), EXPIRE, LIFE).unwrap(), Acquire::Locked(Some(_))));
    }

    #[test]
    fn an_old_store_that_is_down_costs_one_warning_per_request() {
        let dir = TempDir::new("layer-migrate-down");
        let new = sqlite(&dir);
        // Nothing listens on port 1 of loopback: refused at once.
        let old = crate::dsn::parse("redis://127.0.0.1:1/0?timeout=0.5", dir.path()).unwrap();
        let mut m = layered(&new, &old, registry());
        let (a, t) = (id("down1"), Token::new());
        assert!(matches!(m.lock_and_load(&a, &t, EXPIRE, LIFE).unwrap(), Acquire::Locked(None)));
        assert!(matches!(m.save(&a, b"z", Expect::Held(None), Some(&t), LIFE).unwrap(), Written::Done(_)));
        assert!(m.exists(&a, LIFE).unwrap());
        let w = m.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        let Caution::OldStoreSkipped(e) = &w[0] else { panic!("{w:?}") };
        assert_eq!(e.kind(), crate::store::ErrorKind::Unavailable);
        assert!(e.at().contains("127.0.0.1:1"), "{e:?}");
        // The next request tries again (once).
        m.event(&Event::Started);
        assert_eq!(m.exists(&id("other"), LIFE), Ok(false));
        assert_eq!(m.load(&id("other"), LIFE), Ok(None));
        assert_eq!(m.take_warnings().len(), 1);
    }
}
