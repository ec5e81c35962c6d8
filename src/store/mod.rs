//! The storage contract every engine implements, and the factory that turns a parsed DSN into one.
//!
//! An engine knows bytes, keys, expiry and its own way of locking one session; it knows nothing of PHP
//! and nothing of the request life cycle (that is `session::Request`). Locking is part of the contract
//! because doing it well is engine-specific: `lock_and_load` and `save` are each one atomic step so a
//! network engine can do each in one round trip.

use std::time::{Duration, Instant};

use crate::id::SessionId;
use crate::lock::Token;

mod engine;
pub use engine::Engine;
pub mod files;
pub mod memcached;
pub mod redis;
pub mod sqlite;

/// The result of one attempt to take a session's lock.
#[derive(Debug, PartialEq, Eq)]
pub enum Acquire {
    /// The lock is ours; the data read under it (None: no such session, or expired).
    Locked(Option<Vec<u8>>),
    /// Another owner holds a live lock.
    Busy,
}

/// What became of a write or a timestamp refresh made under a lock.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    /// Applied; the lock (if any) is released.
    Done,
    /// Our lock expired and another request took it: nothing was written.
    LockLost,
}

pub trait Store: Send {
    /// Where this store lives, for messages (`sqlite:///path`, `files:///dir`); never contains secrets.
    fn describe(&self) -> String;

    /// Reads a live session without locking.
    fn load(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<Option<Vec<u8>>>;

    /// One attempt to take `id`'s lock for `owner` and read the session under it, as one atomic step.
    /// A lock whose holder vanished must be free after `expire` at the latest.
    fn lock_and_load(
        &mut self,
        id: &SessionId,
        owner: &Token,
        expire: Duration,
        max_lifetime: Duration,
    ) -> anyhow::Result<Acquire>;

    /// Waits until `id`'s lock may have been released, returning no later than `deadline`.
    /// `attempt` counts the waits so far. The default backs off from 1 ms to 16 ms; engines that
    /// can be told of a release (a notification, a blocking primitive) override it.
    fn wait_for_release(&mut self, _id: &SessionId, deadline: Instant, attempt: u32) -> anyhow::Result<()> {
        back_off(deadline, attempt);
        Ok(())
    }

    /// Writes `data` with a lifetime of `ttl`. With `owner`, the write happens only while `owner` still
    /// holds the lock, and the lock is released in the same step.
    fn save(&mut self, id: &SessionId, data: &[u8], ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved>;

    /// Refreshes the expiry of unchanged data (lazy_write). Same lock rules as `save`.
    fn touch(&mut self, id: &SessionId, ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved>;

    /// Releases `owner`'s lock without writing; a lock held by someone else is left alone. That makes it
    /// a compare-and-delete: with the token `lock_holder` reported, it breaks exactly that holder's lock
    /// (and not one another request took since), which is how a dead holder's lock is freed.
    fn unlock(&mut self, id: &SessionId, owner: &Token) -> anyhow::Result<()>;

    /// The token of the request holding `id`'s lock, when the lock records one; asked while waiting,
    /// so that a holder that died on this host frees the lock at once (`Token::holder_is_dead`).
    /// None: free, held without a token of ours (another handler's lock), or the engine's locks die
    /// with their process anyway (files: flock).
    fn lock_holder(&mut self, _id: &SessionId) -> anyhow::Result<Option<Token>> {
        Ok(None)
    }

    /// Deletes the session and the lock `owner` holds on it.
    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> anyhow::Result<()>;

    /// Whether a live session exists (strict mode, id collision checks).
    fn exists(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<bool>;

    /// Deletes sessions idle for longer than `max_lifetime`, in bounded batches; returns how many.
    fn gc(&mut self, max_lifetime: Duration) -> anyhow::Result<u64>;

    /// False once the store saw an error that makes reusing it doubtful; the pool then drops it.
    fn reusable(&self) -> bool {
        true
    }

    /// Asked by the pool before an idle store is reused: false when the storage it is bound to is
    /// gone or was replaced (a deleted or swapped database file), so the pool reconnects instead.
    fn still_valid(&mut self) -> bool {
        true
    }
}

/// Opens a store for a parsed DSN. Errors name the path or host and the cause.
pub fn connect(engine: &Engine) -> anyhow::Result<Box<dyn Store>> {
    Ok(match engine {
        Engine::Sqlite(o) => Box::new(sqlite::SqliteStore::open(o)?),
        Engine::Files(o) => Box::new(files::FilesStore::open(o)?),
        Engine::Memcached(o) => Box::new(memcached::MemcachedStore::open(o)?),
        Engine::Redis(o) => Box::new(redis::RedisStore::open(o)?),
    })
}

/// The default wait for a lock's release: sleeps 1 ms doubling to 16 ms, never past `deadline`.
pub(crate) fn back_off(deadline: Instant, attempt: u32) {
    let step = Duration::from_millis(1u64 << attempt.min(4));
    std::thread::sleep(step.min(deadline.saturating_duration_since(Instant::now())));
}

/// Seconds since the Unix epoch, as stored by the engines.
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
pub(crate) mod tests;
