#![deny(clippy::missing_trait_methods)]
//! The hashed-ids layer: the engine stores and locks every session under HMAC-SHA256(key, id) in
//! hex (64 characters of the id alphabet, so every engine takes it as it takes an id), never under
//! the id, which is a bearer secret. gc and the engine's expiry are unaffected.
//!
//! Sessions written before hash_ids was turned on are read through: a read that finds nothing
//! under the hashed id looks under the raw id, and a session found there is moved (written under
//! the hashed id, only if nothing is there yet, then deleted under the raw id), so nobody is
//! logged out by the switch. `exists` answers for either; `destroy` deletes both.

use std::time::{Duration, Instant};

use super::keys::{hex, Secret};
use crate::id::SessionId;
use crate::lock::Token;
use crate::store::{Acquire, Busy, Collect, Event, Expect, Expiry, Loaded, Pooled, Result, Store, Touched, Written};

pub struct HashIds {
    inner: Box<dyn Store>,
    key: Secret,
    /// The last id hashed and its hash: a request's calls all name one session, and an HMAC is the
    /// layer's whole cost.
    last: Option<(SessionId, SessionId)>,
}

/// The storage id of `id` under `key`.
pub fn hashed(key: &Secret, id: &SessionId) -> SessionId {
    SessionId::parse(hex(&key.mac(id.as_str().as_bytes())).as_bytes()).expect("hex is in the id alphabet")
}

impl HashIds {
    pub fn new(inner: Box<dyn Store>, key: Secret) -> Self {
        HashIds { inner, key, last: None }
    }

    fn h(&mut self, id: &SessionId) -> SessionId {
        match &self.last {
            Some((raw, h)) if raw == id => h.clone(),
            _ => {
                let h = hashed(&self.key, id);
                self.last = Some((id.clone(), h.clone()));
                h
            }
        }
    }

    /// The session under the raw id, moved under `to` (the hashed id). None: there is none, or
    /// another request moved or wrote it first (then the caller's own read stands).
    fn move_legacy(&mut self, raw: &SessionId, to: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        let Some(old) = self.inner.load(raw, exp)? else { return Ok(None) };
        match self.inner.save(to, &old.data, Expect::Absent, None, exp)? {
            Written::Done(version) => {
                self.carry_binding(raw, to, exp)?;
                self.inner.destroy(raw, None)?;
                Ok(Some(Loaded { data: old.data, version }))
            }
            _ => Ok(None),
        }
    }

    /// A session moved from its raw id to `to` keeps its user: bound under `to` before the raw one
    /// goes, so that it never drops out of its user's list ("log out everywhere" must find it). If
    /// that fails, the moved copy is removed again and the raw one stays, for the next request to
    /// move; the error is the caller's.
    fn carry_binding(&mut self, raw: &SessionId, to: &SessionId, exp: Expiry) -> Result<()> {
        let Some(index) = self.inner.users() else { return Ok(()) };
        let r = match index.bound(raw, exp) {
            Ok(Some(user)) => index.bind(to, Some(&user), None, exp),
            other => other.map(|_| ()),
        };
        if r.is_err() {
            let _ = self.inner.destroy(to, None);
        }
        r
    }
}

impl Pooled for HashIds {
    fn reusable(&self) -> bool {
        self.inner.reusable()
    }

    fn still_valid(&mut self) -> bool {
        self.inner.still_valid()
    }
}

impl Collect for HashIds {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        self.inner.collector().map_or(Ok(0), |c| c.gc(exp))
    }
}

impl Store for HashIds {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        let h = self.h(id);
        match self.inner.load(&h, exp)? {
            Some(l) => Ok(Some(l)),
            None => match self.move_legacy(id, &h, exp)? {
                Some(l) => Ok(Some(l)),
                // Lost a race to move it: what the winner stored.
                None => self.inner.load(&h, exp),
            },
        }
    }

    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<Acquire> {
        let h = self.h(id);
        let got = self.inner.lock_and_load(&h, owner, lock_expire, exp)?;
        if got != Acquire::Locked(None) {
            return Ok(got);
        }
        let old = match self.inner.load(id, exp) {
            Ok(Some(old)) => old,
            Ok(None) => return Ok(got),
            Err(e) => {
                let _ = self.inner.unlock(&h, owner);
                return Err(e);
            }
        };
        // Moved as a write under our lock (which releases it), then locked again: the one way to
        // write while holding the lock that every engine takes. Another request may take the lock
        // in between; then this attempt is Busy and the next one reads the moved session.
        if let Written::Done(_) = self.inner.save(&h, &old.data, Expect::Held(None), Some(owner), exp)? {
            self.carry_binding(id, &h, exp)?;
            self.inner.destroy(id, None)?;
        }
        self.inner.lock_and_load(&h, owner, lock_expire, exp)
    }

    fn wait_for_release(&mut self, id: &SessionId, busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        let h = self.h(id);
        self.inner.wait_for_release(&h, busy, deadline, attempt)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        let h = self.h(id);
        self.inner.lock_holder(&h)
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        let h = self.h(id);
        self.inner.save(&h, data, expect, owner, exp)
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched> {
        let h = self.h(id);
        self.inner.touch(&h, owner, exp)
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        let h = self.h(id);
        self.inner.unlock(&h, owner)
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        let h = self.h(id);
        self.inner.destroy(&h, owner)?;
        // A session never read since the switch is still under the raw id: a logout deletes it too.
        self.inner.destroy(id, None)
    }

    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        let h = self.h(id);
        Ok(self.inner.exists(&h, exp)? || self.inner.exists(id, exp)?)
    }

    fn collector(&mut self) -> Option<&mut dyn Collect> {
        if self.inner.collector().is_some() {
            Some(self)
        } else {
            None
        }
    }

    fn round_trips(&self) -> u64 {
        self.inner.round_trips()
    }

    fn event(&mut self, e: &Event) {
        self.inner.event(e)
    }

    fn storage_id(&self, id: &SessionId) -> SessionId {
        let h = match &self.last {
            Some((raw, h)) if raw == id => h.clone(),
            _ => hashed(&self.key, id),
        };
        self.inner.storage_id(&h)
    }

    /// The engine's per-user index, which records and lists hashed ids only: the session layer
    /// hands it `storage_id`s, and a session moved from its raw id keeps its binding
    /// (`carry_binding`). Handles are keyed hashes of the hashed id.
    fn users(&mut self) -> Option<&mut dyn crate::store::users::Users> {
        self.inner.users()
    }

    /// None: the engine lists hashed ids, which name no session above this layer (the command-line
    /// tool copies such a store through an engine without the layer).
    fn scanner(&mut self) -> Option<&mut dyn crate::store::Scan> {
        None
    }

    /// None: the engine's batches take stored (hashed) ids, which only this layer may make.
    fn bulk(&mut self) -> Option<&mut dyn crate::store::Bulk> {
        None
    }

    fn take_warnings(&mut self) -> Vec<crate::store::Caution> {
        self.inner.take_warnings()
    }
}
