//! The words of every diagnostic: the core reports typed problems (`session::Problem`, with the
//! engines' `StoreError`s inside), and this is the one place that turns them into the warnings and
//! notices PHP users read.

use std::fmt;

use crate::session::{Op, Problem};

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::RejectedId(why) => write!(f, "session_proxy: rejected session id: {why}"),
            Problem::Storage { op, id, at, err } => {
                let id = id.as_deref().unwrap_or_default();
                match op {
                    Op::Open => write!(f, "session_proxy: cannot open {err}"),
                    Op::Check => write!(f, "session_proxy: cannot check session {id} in {at}: {err}"),
                    Op::Read => write!(f, "session_proxy: cannot read session {id} from {at}: {err}"),
                    Op::Lock => write!(f, "session_proxy: cannot lock session {id} in {at}: {err}"),
                    Op::WaitForLock => write!(f, "session_proxy: cannot wait for the lock on session {id} in {at}: {err}"),
                    Op::Write { size } => write!(
                        f,
                        "session_proxy: cannot write session {id} ({size} bytes) to {at}: {err}; the stored session is unchanged"
                    ),
                    Op::Touch => write!(f, "session_proxy: cannot update the timestamp of session {id} in {at}: {err}"),
                    Op::Destroy => write!(f, "session_proxy: cannot destroy session {id} in {at}: {err}"),
                    Op::Gc => write!(f, "session_proxy: garbage collection in {at} failed: {err}"),
                    Op::Release => write!(f, "session_proxy: cannot release the lock on session {id} in {at}: {err}"),
                    Op::Index if id.is_empty() => write!(f, "session_proxy: the per-user session index in {at} failed: {err}"),
                    Op::Index => write!(f, "session_proxy: the per-user session index in {at} failed for session {id}: {err}"),
                }
            }
            Problem::LockTimeout { id, at, waited, readonly } => {
                write!(
                    f,
                    "session_proxy: timed out after {} ms (session_proxy.lock_wait_timeout) waiting for the lock on \
                     session {id} held by another request in {at}",
                    waited.as_millis()
                )?;
                if *readonly {
                    f.write_str("; opened read-only, its changes will not be saved")?;
                }
                Ok(())
            }
            Problem::ReadOnlyNotSaved { id } => write!(
                f,
                "session_proxy: session {id} was opened read-only after a lock wait timeout; its changes were not saved"
            ),
            Problem::ReadOnlyNotDestroyed { id } => write!(
                f,
                "session_proxy: session {id} was opened read-only after a lock wait timeout; it was not destroyed"
            ),
            Problem::LockLost { id, lock_expire } => write!(
                f,
                "session_proxy: the lock on session {id} expired after {} s (session_proxy.lock_expire) and another \
                 request took it over; this request's changes were not saved",
                lock_expire.as_secs()
            ),
            Problem::Conflict { id, at } => write!(
                f,
                "session_proxy: session {id} changed in {at} after this request read it (another request wrote it \
                 without holding its lock: one with locking off, or another handler); this request's changes were \
                 not saved"
            ),
            Problem::DestroyedMeanwhile { id } => write!(
                f,
                "session_proxy: session {id} was destroyed by another request after this request read it; its changes \
                 were not saved, so that a logout stays a logout"
            ),
            Problem::MergeGaveUp { id, tries, waited } => write!(
                f,
                "session_proxy: session {id} kept changing under this request (session_proxy.locking=optimistic): \
                 {tries} merges onto newer writes in {} ms did not get through (bounded by \
                 session_proxy.lock_wait_timeout); this request's changes were not saved",
                waited.as_millis()
            ),
            Problem::MergeKeptStored { id, keys } => write!(
                f,
                "session_proxy: session {id}: {keys} key(s) changed by this request were changed by another request \
                 too; the stored values were kept (session_proxy.merge_conflict=first)"
            ),
            // PHP names the function before the message (`SessionProxy\set_user(): …`).
            Problem::BadUser { what: _, why } => write!(f, "session_proxy: invalid user name: {why}"),
            Problem::BadHandle => f.write_str("session_proxy: not a session handle (use one from SessionProxy\\user_sessions())"),
            Problem::NoUserIndex { at } => write!(f, "session_proxy: {at} keeps no per-user session index"),
            Problem::CountNeedsScan { at } => write!(
                f,
                "session_proxy: SessionProxy\\count_active() is not available on {at}: it would have to read every session \
                 (SQLite and PostgreSQL count from an index)"
            ),
            Problem::NoActiveSession { what: _ } => f.write_str("session_proxy: no active session (call session_start() first)"),
            Problem::OldStoreSkipped { at, err } => write!(
                f,
                "session_proxy: the old store of session_proxy.migrate_from failed: {err}; this request goes on with \
                 {at} alone"
            ),
            Problem::MayEvictBindings { at, policy, maxmemory } => write!(
                f,
                "session_proxy: redis {at} evicts keys when it is full (maxmemory-policy {policy}, maxmemory {maxmemory}): \
                 a session's binding to its user can be evicted while the session lives, and then \
                 SessionProxy\\user_sessions() and destroy_user_sessions() miss that session; set maxmemory-policy \
                 noeviction on the sessions' Redis (or maxmemory 0)"
            ),
            Problem::CopiesLeft { at } => write!(
                f,
                "session_proxy: a destroyed session's copy on memcached {at} could not be deleted (the server is down): if \
                 that server comes back with its items, the session can be read again; flush or restart it before it \
                 rejoins"
            ),
            Problem::Unreadable { id, at, err } => write!(
                f,
                "session_proxy: cannot read session {id} from {at}: {err}; this request starts an empty session, and \
                 the stored one is kept as it is (not written over; session_regenerate_id() or session_destroy() \
                 moves on from it)"
            ),
            Problem::NotBound { id, at, err, end_failed } => {
                write!(f, "session_proxy: session {id} was written to {at}, but binding it to its user failed: {err}; ")?;
                match end_failed {
                    None => f.write_str(
                        "so that SessionProxy\\destroy_user_sessions() cannot miss it, the session was ended and this \
                         request's changes were not saved (the user starts a new session)",
                    ),
                    Some(e) => write!(
                        f,
                        "ending it failed too ({e}): the session may be live without its binding, and \
                         SessionProxy\\destroy_user_sessions() would miss it"
                    ),
                }
            }
            Problem::UnreadableNotSaved { id } => write!(
                f,
                "session_proxy: session {id} could not be read, so its changes were not saved over the stored one \
                 (session_regenerate_id() gives a session that saves)"
            ),
            Problem::IdCollision { id, at } => write!(
                f,
                "session_proxy: the session id {id} just generated names a session already stored in {at}; it is \
                 not handed out (a collision of random ids, or a generator that repeats itself: check the system's \
                 random source)"
            ),
        }
    }
}

/// A key of the at-rest layers could not be had: the session does not start (never without the
/// encryption or hashing asked for).
pub fn key_refused(e: &crate::store::layer::keys::KeyError) -> String {
    format!("session_proxy: sessions are refused until this is fixed: {e}")
}
