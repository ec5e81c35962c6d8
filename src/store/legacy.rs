//! TRANSITIONAL (issue 11): the version-1 engine contract and an adapter that serves it as version 2,
//! so that every engine keeps working while it is ported. An engine that is ported implements
//! `super::Store` itself and drops out of this file; the file goes when the last one has.
//!
//! The adapter's versions are a hash of the bytes, and its expectations are checked with a read
//! before the write (not atomically): good enough for the sequential conformance tests, not for
//! production CAS. No new code may use it.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{Busy, Collect, Expect, Expiry, Loaded, Pooled, Result, StoreError, Touched, Version, Written};
use crate::id::SessionId;
use crate::lock::Token;

#[derive(Debug, PartialEq, Eq)]
pub enum Acquire {
    Locked(Option<Vec<u8>>),
    Busy,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    Done,
    LockLost,
}

/// The version-1 contract (see git history for its documentation).
pub trait Store: Send {
    fn describe(&self) -> String;
    fn load(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<Option<Vec<u8>>>;
    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, expire: Duration, max_lifetime: Duration) -> anyhow::Result<Acquire>;
    fn wait_for_release(&mut self, _id: &SessionId, deadline: Instant, attempt: u32) -> anyhow::Result<()> {
        super::back_off(deadline, attempt);
        Ok(())
    }
    fn save(&mut self, id: &SessionId, data: &[u8], ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved>;
    fn touch(&mut self, id: &SessionId, ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved>;
    fn unlock(&mut self, id: &SessionId, owner: &Token) -> anyhow::Result<()>;
    fn lock_holder(&mut self, _id: &SessionId) -> anyhow::Result<Option<Token>> {
        Ok(None)
    }
    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> anyhow::Result<()>;
    fn exists(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<bool>;
    fn gc(&mut self, max_lifetime: Duration) -> anyhow::Result<u64>;
    fn reusable(&self) -> bool {
        true
    }
    fn still_valid(&mut self) -> bool {
        true
    }
    /// Whether `lock_holder` reports every holder (files: flock, no).
    fn records_holders(&self) -> bool {
        true
    }
    /// Whether gc does anything (version 2 makes it a capability).
    fn collects(&self) -> bool {
        true
    }
}

/// A version-1 engine served as version 2.
pub struct Legacy<S>(pub S);

pub fn boxed<S: Store + 'static>(s: anyhow::Result<S>, at: impl FnOnce() -> String) -> Result<Box<dyn super::Store>> {
    match s {
        Ok(s) => Ok(Box::new(Legacy(s))),
        Err(e) => Err(StoreError::Unavailable { at: at(), detail: format!("{e:#}") }),
    }
}

fn version(data: &[u8]) -> Version {
    let h = Sha256::digest(data);
    Version::new(u128::from_be_bytes(h[..16].try_into().expect("16 bytes")))
}

fn loaded(data: Vec<u8>) -> Loaded {
    Loaded { version: version(&data), data }
}

impl<S: Store> Legacy<S> {
    fn err(&self, e: anyhow::Error) -> StoreError {
        let detail = format!("{e:#}");
        let kind = if detail.contains("too large") { super::ErrorKind::TooLarge } else { super::ErrorKind::Backend };
        StoreError::new(kind, self.0.describe(), detail)
    }
}

impl<S: Store> Pooled for Legacy<S> {
    fn reusable(&self) -> bool {
        self.0.reusable()
    }
    fn still_valid(&mut self) -> bool {
        self.0.still_valid()
    }
}

impl<S: Store> Collect for Legacy<S> {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        self.0.gc(exp.lifetime).map_err(|e| self.err(e))
    }
}

impl<S: Store> super::Store for Legacy<S> {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        self.0.load(id, exp.lifetime).map(|d| d.map(loaded)).map_err(|e| self.err(e))
    }
    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<super::Acquire> {
        match self.0.lock_and_load(id, owner, lock_expire, exp.lifetime) {
            Ok(Acquire::Locked(d)) => Ok(super::Acquire::Locked(d.map(loaded))),
            Ok(Acquire::Busy) => Ok(super::Acquire::Busy(Busy::default())),
            Err(e) => Err(self.err(e)),
        }
    }
    fn wait_for_release(&mut self, id: &SessionId, _busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        self.0.wait_for_release(id, deadline, attempt).map_err(|e| self.err(e))
    }
    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        self.0.lock_holder(id).map_err(|e| self.err(e))
    }
    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        // Under a lock, the version-1 engines check ownership themselves (Memcached: its CAS).
        if !matches!(expect, Expect::Any | Expect::Held(_)) {
            // Check and write under one process-wide mutex: atomic within a process (the suite's
            // concurrent creates), not across processes — one more reason this adapter is temporary.
            static CAS: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
            let _one = CAS.lock();
            if let Some(o) = owner {
                let holder = self.0.lock_holder(id).map_err(|e| self.err(e))?;
                if self.0.records_holders() && holder.as_ref() != Some(o) {
                    return Ok(Written::LockLost);
                }
            }
            let now = self.0.load(id, exp.lifetime).map_err(|e| self.err(e))?.map(loaded);
            let ok = match (&expect, &now) {
                (Expect::Absent, None) => true,
                (Expect::Version(v), Some(l)) => *v == l.version,
                _ => false,
            };
            if !ok {
                if let Some(o) = owner {
                    self.0.unlock(id, o).map_err(|e| self.err(e))?;
                }
                return Ok(Written::Conflict(now));
            }
            return self.write(id, data, owner, exp);
        }
        self.write(id, data, owner, exp)
    }
    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched> {
        match self.0.touch(id, exp.lifetime, owner) {
            Ok(Saved::Done) => Ok(Touched::Done),
            Ok(Saved::LockLost) => Ok(Touched::LockLost),
            Err(e) => Err(self.err(e)),
        }
    }
    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        self.0.unlock(id, owner).map_err(|e| self.err(e))
    }
    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        self.0.destroy(id, owner).map_err(|e| self.err(e))
    }
    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        self.0.exists(id, exp.lifetime).map_err(|e| self.err(e))
    }
    fn collector(&mut self) -> Option<&mut dyn Collect> {
        if self.0.collects() {
            Some(self)
        } else {
            None
        }
    }
    fn round_trips(&self) -> u64 {
        0
    }
    fn event(&mut self, _e: &super::Event) {}
}

impl<S: Store> Legacy<S> {
    fn write(&mut self, id: &SessionId, data: &[u8], owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        match self.0.save(id, data, exp.lifetime, owner) {
            Ok(Saved::Done) => Ok(Written::Done(version(data))),
            Ok(Saved::LockLost) => Ok(Written::LockLost),
            Err(e) => Err(self.err(e)),
        }
    }
}
