#![deny(clippy::missing_trait_methods)]
//! The frame of the layers that change the stored bytes and nothing else (compression, encryption):
//! `Transformed<T>` forwards every method and passes the data through `T` on the way down (`encode`,
//! on save) and on the way up (`decode`, on every read, including the stored session a refused
//! write answers with).
//!
//! A read that cannot be decoded is a `StoreError::Unreadable` naming the cause, never bytes handed to
//! PHP; when it was read under a new lock, the lock is released first, and nothing is written over
//! the stored session.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::envelope::AtRestError;
use crate::id::SessionId;
use crate::lock::Token;
use crate::store::{Acquire, Busy, Collect, Event, Expect, Expiry, Loaded, Pooled, Result, Store, StoreError, Touched, Written};

/// What a bytes-changing layer does. `id` is the storage id the engine is given (the hashed id when
/// hash_ids is on).
pub trait Transcode: Send {
    /// Borrowed: stored as given (no copy on the path every default request takes).
    fn encode<'a>(&self, id: &SessionId, data: &'a [u8]) -> std::result::Result<Cow<'a, [u8]>, AtRestError>;
    fn decode(&self, id: &SessionId, stored: Vec<u8>) -> std::result::Result<Vec<u8>, AtRestError>;
}

pub struct Transformed<T> {
    inner: Box<dyn Store>,
    t: T,
}

impl<T: Transcode> Transformed<T> {
    pub fn new(inner: Box<dyn Store>, t: T) -> Self {
        Transformed { inner, t }
    }

    fn corrupt(&self, e: AtRestError) -> StoreError {
        StoreError::new(crate::store::ErrorKind::Unreadable, self.inner.describe(), e.to_string())
    }

    fn decoded(&self, id: &SessionId, l: Option<Loaded>) -> Result<Option<Loaded>> {
        match l {
            None => Ok(None),
            Some(Loaded { data, version }) => match self.t.decode(id, data) {
                Ok(data) => Ok(Some(Loaded { data, version })),
                Err(e) => Err(self.corrupt(e)),
            },
        }
    }
}

impl<T: Transcode> Pooled for Transformed<T> {
    fn reusable(&self) -> bool {
        self.inner.reusable()
    }

    fn still_valid(&mut self) -> bool {
        self.inner.still_valid()
    }
}

impl<T: Transcode> Collect for Transformed<T> {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        self.inner.collector().map_or(Ok(0), |c| c.gc(exp))
    }
}

impl<T: Transcode> Store for Transformed<T> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        let l = self.inner.load(id, exp)?;
        self.decoded(id, l)
    }

    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<Acquire> {
        match self.inner.lock_and_load(id, owner, lock_expire, exp)? {
            Acquire::Locked(l) => match self.decoded(id, l) {
                Ok(l) => Ok(Acquire::Locked(l)),
                Err(e) => {
                    // Unreadable: the request fails, so it must not keep the lock until it expires.
                    let _ = self.inner.unlock(id, owner);
                    Err(e)
                }
            },
            busy => Ok(busy),
        }
    }

    fn wait_for_release(&mut self, id: &SessionId, busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        self.inner.wait_for_release(id, busy, deadline, attempt)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        self.inner.lock_holder(id)
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        let stored = self.t.encode(id, data).map_err(|e| self.corrupt(e))?;
        match self.inner.save(id, &stored, expect, owner, exp)? {
            Written::Conflict(now) => Ok(Written::Conflict(self.decoded(id, now)?)),
            w => Ok(w),
        }
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched> {
        self.inner.touch(id, owner, exp)
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        self.inner.unlock(id, owner)
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        self.inner.destroy(id, owner)
    }

    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        self.inner.exists(id, exp)
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
        self.inner.storage_id(id)
    }

    /// The index holds ids and bindings, never session data: this layer does not change them.
    fn users(&mut self) -> Option<&mut dyn crate::store::users::Users> {
        self.inner.users()
    }

    /// Ids and lifetimes only, no data: as the engine lists them.
    fn scanner(&mut self) -> Option<&mut dyn crate::store::Scan> {
        self.inner.scanner()
    }

    /// None: the engine's batches carry the stored bytes, which this layer must transform.
    fn bulk(&mut self) -> Option<&mut dyn crate::store::Bulk> {
        None
    }

    fn take_warnings(&mut self) -> Vec<crate::store::Caution> {
        self.inner.take_warnings()
    }
}
